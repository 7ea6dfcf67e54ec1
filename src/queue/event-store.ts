import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { createIORedisClient, Job, type JobsOptions, type Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Envelope } from '../bitbucket/envelope.js';
import type { Config } from '../config/types.js';
import { type DeliveryJobData, deliveryJobId, idempotencyKey } from './job-types.js';
import type { Keys } from './keys.js';
import { isNoScript, LuaScript } from './lua-script.js';
import type { RedisClient } from './redis-connection.js';

/** An event as stored once in Redis, beside the delivery jobs that point at it. */
export interface StoredEvent {
  id: string;
  sourceId: string;
  receivedAt: number;
  envelope: Envelope;
  /** The original Bitbucket headers that targets get back (never Authorization). */
  headers: Record<string, string>;
  body: Buffer;
  targets: string[];
  clientIp?: string;
  /** Epoch ms when all its delivery jobs were committed; absent: never acknowledged (a failed or torn write). */
  acceptedAt?: number;
}

/** The event is stored on the primary but not yet as durable as `redis.durability` asks: answer 503, keep it. */
export class NotDurableYet extends Error {}

export type ClaimResult = { state: 'new' } | { state: 'pending' | 'done'; id: string };

/** A dedupe key, the tag its value must carry to make a copy ('' = any), and how long it is kept. */
export interface DedupeKey {
  key: string;
  tag: string;
  ttlSeconds: number;
}

// Below this size deflate saves too little to be worth the CPU.
const COMPRESS_MIN_BYTES = 1024;

/*
 * Storing an event is two steps so that a duplicate costs one round trip and a new event two:
 *  1. `hrReserve` (one Lua call): if a dedupe key is held by a committed event, answer `done`; if it is held by
 *     a request still committing, `pending`; otherwise write the event hash, index it and take the dedupe keys.
 *  2. a MULTI/EXEC with every delivery job of the event and `hrMarkOk`, which sets the event's `ok` field only
 *     when all its job hashes exist. `ok` is what makes a dedupe key mean "stored": an event without it was
 *     never acknowledged, and a later copy takes its claim over once the claim is older than the commit can
 *     take. MULTIs of concurrent requests are batched per event-loop turn (one transaction, many events).
 * Keys built inside the scripts (the holder's event hash, job hashes) keep this single-Redis/Sentinel only;
 * Redis Cluster would need the event, its dedupe keys and its jobs under one hash tag.
 */
// Dedupe values are `tag|holder|ms`. Time comes from Redis (TIME), not from the ingress hosts' clocks, so
// clock skew between instances cannot make a live claim look stale.
const RESERVE_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i = 3, #KEYS do
  local v = redis.call('GET', KEYS[i])
  if v then
    local a = string.find(v, '|', 1, true)
    local b = string.find(v, '|', a + 1, true)
    if string.sub(v, 1, a - 1) == ARGV[8 + (i - 3) * 2 + 1] then
      local holder = string.sub(v, a + 1, b - 1)
      if redis.call('HEXISTS', ARGV[7] .. holder, 'ok') == 1 then return {'done', holder} end
      if now - tonumber(string.sub(v, b + 1)) < tonumber(ARGV[3]) then return {'pending', holder} end
    end
  end
end
redis.call('HSET', KEYS[1], 'meta', ARGV[5], 'hdr', ARGV[6], 'enc', ARGV[9 + (#KEYS - 2) * 2], 'body', ARGV[10 + (#KEYS - 2) * 2])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
for i = 3, #KEYS do
  local tag = ARGV[8 + (i - 3) * 2 + 1]
  redis.call('SET', KEYS[i], tag .. '|' .. ARGV[1] .. '|' .. now, 'EX', ARGV[8 + (i - 3) * 2 + 2])
end
return false`;

const MARK_OK_SCRIPT = `
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 0 then return 0 end
end
redis.call('HSET', KEYS[1], 'ok', ARGV[1])
return 1`;

const RELEASE_SCRIPT = `
if redis.call('HEXISTS', KEYS[1], 'ok') == 1 then return 0 end
local mine = '|' .. ARGV[1] .. '|'
for i = 3, #KEYS do
  local v = redis.call('GET', KEYS[i])
  if v and string.find(v, mine, 1, true) then redis.call('DEL', KEYS[i]) end
end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1`;

interface PendingCommit {
  event: StoredEvent;
  resolve(): void;
  reject(err: Error): void;
}

export class EventStore {
  private readonly client: Redis;
  private batch: PendingCommit[] = [];
  private readonly reserveScript = new LuaScript(RESERVE_SCRIPT);
  private readonly markOkScript = new LuaScript(MARK_OK_SCRIPT);
  private readonly releaseScript = new LuaScript(RELEASE_SCRIPT);
  /** SHAs loaded into the server behind the commit connection (emptied on every reconnection). */
  private readonly loaded = new Set<string>();

  /**
   * Transactions and durability waits run on a connection of their own: WAIT and WAITAOF block the connection
   * that sends them, and on the shared one a lagging replica would stall every request's reserve. A wait there
   * still covers the reserve writes, which Redis applied (and replicates) before the transaction.
   */
  private readonly commitClient: Redis;

  constructor(
    client: RedisClient,
    private readonly keys: Keys,
    private readonly config: Config,
    private readonly queues: ReadonlyMap<string, Queue>,
    private readonly jobOptions: ReadonlyMap<string, JobsOptions> = new Map(),
    commitClient: RedisClient = client,
  ) {
    this.client = client as Redis;
    this.commitClient = commitClient as Redis;
    this.commitClient.on('ready', () => this.loaded.clear());
  }

  /** How long a claim by a request that has not committed yet blocks a copy of the same delivery. */
  private get claimStaleMs(): number {
    return this.config.redis.commandTimeoutMs * 2 + 1000;
  }

  /**
   * Step 1: dedupe check and event write in one call. `done`: a copy of a stored event; `pending`: the same
   * delivery is being stored by a concurrent request (retry later); `new`: written, now commit it.
   */
  async reserve(event: StoredEvent, dedupe: DedupeKey[]): Promise<ClaimResult> {
    const compress = event.body.length >= COMPRESS_MIN_BYTES;
    // Synchronous on purpose: zlib's async API builds a stream per call and costs the event loop 3× more CPU
    // than compressing a Bitbucket-sized body in place (measured: ~620 µs vs ~180 µs per 54 KB body).
    const body = compress ? deflateRawSync(event.body, { level: 1 }) : event.body;
    const meta = JSON.stringify({
      sourceId: event.sourceId,
      receivedAt: event.receivedAt,
      envelope: event.envelope,
      targets: event.targets,
      clientIp: event.clientIp,
    });
    const held = (await this.reserveScript.run(
      this.client,
      [this.keys.event(event.id), this.keys.eventIndex, ...dedupe.map((d) => d.key)],
      [
        event.id,
        event.receivedAt,
        this.claimStaleMs,
        this.config.retention.eventsMs + this.config.retention.deadLettersMs,
        meta,
        JSON.stringify(event.headers),
        this.keys.event(''),
        '',
        ...dedupe.flatMap((d) => [d.tag, d.ttlSeconds]),
        compress ? 'deflate-raw' : 'identity',
        body,
      ],
    )) as [string, string] | null;
    if (!held) return { state: 'new' };
    return { state: held[0] === 'done' ? 'done' : 'pending', id: held[1] };
  }

  /** Undo a reservation whose commit failed, so Bitbucket's retry is not taken for a duplicate. */
  async release(event: StoredEvent, dedupe: DedupeKey[]): Promise<void> {
    await this.releaseScript.run(
      this.client,
      [this.keys.event(event.id), this.keys.eventIndex, ...dedupe.map((d) => d.key)],
      [event.id],
    );
  }

  /**
   * Step 2: every delivery job of the event and its `ok` mark in one MULTI/EXEC (all jobs or none). Only after
   * this resolves may the ingress answer 2xx. Concurrent commits share one transaction per event-loop turn.
   */
  commit(event: StoredEvent): Promise<void> {
    return new Promise((resolve, reject) => {
      this.batch.push({ event, resolve, reject });
      if (this.batch.length === 1) setImmediate(() => void this.flush());
    });
  }

  /** The commit connection may still be connecting (just started, or reconnecting): wait for it, bounded. */
  private commitReady(): Promise<void> {
    if (this.commitClient.status === 'ready') return Promise.resolve();
    return new Promise((resolve, reject) => {
      const done = (err?: Error) => {
        clearTimeout(timer);
        this.commitClient.off('ready', onReady);
        if (err) reject(err);
        else resolve();
      };
      const onReady = () => done();
      const timer = setTimeout(
        () => done(new Error('redis commit connection not ready')),
        this.config.redis.commandTimeoutMs,
      );
      this.commitClient.once('ready', onReady);
    });
  }

  private async flush(): Promise<void> {
    const batch = this.batch;
    this.batch = [];
    try {
      await this.commitReady();
    } catch (err) {
      for (const p of batch) p.reject(err as Error);
      return;
    }
    // BullMQ's adapter around the same connection: its transactions accept BullMQ's job scripts.
    // biome-ignore lint/suspicious/noExplicitAny: BullMQ types ioredis from its own copy of the type declarations
    const multi = createIORedisClient(this.commitClient as any).multi() as any;
    // BullMQ sends its job script through `runCommand`; send it by SHA (see LuaScript), loading scripts the
    // server may not have at the head of the transaction.
    const scripts = (
      this.client as unknown as {
        scriptsSet: Record<string, { lua: string; sha: string; numberOfKeys: number | null }>;
      }
    ).scriptsSet;
    const toLoad = new Map<string, string>();
    const need = (sha: string, lua: string) => {
      if (!this.loaded.has(sha)) toLoad.set(sha, lua);
    };
    need(this.markOkScript.sha, this.markOkScript.lua);
    for (const name of Object.keys(scripts))
      if (name.startsWith('addStandardJob')) need(scripts[name]!.sha, scripts[name]!.lua);
    for (const lua of toLoad.values()) multi.script('LOAD', lua);
    const bySha = {
      runCommand(name: string, args: unknown[]) {
        const script = scripts[name];
        if (!script) throw new Error(`unknown BullMQ script ${name}`);
        const flat = args.flat();
        if (typeof script.numberOfKeys === 'number') multi.evalsha(script.sha, script.numberOfKeys, ...flat);
        else multi.evalsha(script.sha, ...flat);
        return bySha;
      },
    };
    const spans: number[] = [];
    const adds: Promise<unknown>[] = [];
    try {
      for (const { event } of batch) {
        const jobKeys: string[] = [];
        for (const targetId of event.targets) {
          const queue = this.queues.get(targetId);
          if (!queue) throw new Error(`no queue for target ${targetId}`);
          const data: DeliveryJobData = { e: event.id, t: targetId, k: idempotencyKey(event.id, targetId) };
          const jobId = deliveryJobId(event.id, targetId);
          const job = new Job(
            queue,
            event.envelope.eventKey,
            data,
            { ...this.jobOptions.get(targetId), jobId },
            jobId,
          );
          // Queued on the MULTI: sent with EXEC, its result comes back in the EXEC reply.
          // biome-ignore lint/suspicious/noExplicitAny: only runCommand of the transaction is used by addJob
          adds.push(job.addJob(bySha as any));
          jobKeys.push(queue.toKey(jobId));
        }
        multi.evalsha(
          this.markOkScript.sha,
          1 + jobKeys.length,
          this.keys.event(event.id),
          ...jobKeys,
          Date.now(),
        );
        spans.push(event.targets.length + 1);
      }
      await Promise.all(adds);
      const all: [Error | null, unknown][] | null = await multi.exec();
      if (!all) throw new Error('transaction aborted');
      const loads = all.slice(0, toLoad.size);
      if (loads.every(([err]) => !err)) for (const sha of toLoad.keys()) this.loaded.add(sha);
      const results = all.slice(toLoad.size);
      // A server whose script cache was flushed under a live connection: load again next time.
      if (results.some(([err]) => isNoScript(err))) this.loaded.clear();
      // Redis does not roll back a transaction when one command fails while it runs: judge each event by its
      // own slice, and take the jobs of a failed one back out (best effort) before its claims are released.
      const stored: PendingCommit[] = [];
      let at = 0;
      batch.forEach((p, i) => {
        const slice = results.slice(at, at + spans[i]!);
        at += spans[i]!;
        const failed = slice.find(([err]) => err)?.[0];
        if (!failed && slice[slice.length - 1]?.[1] === 1) {
          stored.push(p);
          return;
        }
        for (const targetId of p.event.targets) {
          this.queues
            .get(targetId)
            ?.remove(deliveryJobId(p.event.id, targetId))
            .catch(() => {});
        }
        p.reject(failed ?? new Error('delivery jobs missing after commit'));
      });
      if (stored.length === 0) return;
      try {
        await this.waitForDurability();
      } catch (err) {
        for (const p of stored) p.reject(new NotDurableYet((err as Error).message));
        return;
      }
      for (const p of stored) p.resolve();
    } catch (err) {
      for (const p of batch) p.reject(err as Error);
    }
  }

  /** Set by checkDurability() whenever the connection becomes ready: whether the server has WAITAOF. */
  waitAof = false;
  /** Whether checkDurability() has passed against the server behind the current connection. */
  durabilityChecked = false;

  /**
   * One wait per batch, after EXEC: `replicated` waits for replicas, `fsync` for the local AOF fsync. WAIT and
   * WAITAOF cover the writes of this connection only: `afterWrite` first writes a marker, so a copy answered
   * from an event another instance stored is covered too (the replication stream is ordered).
   */
  async waitForDurability(opts: { afterWrite?: boolean } = {}): Promise<void> {
    const { durability, replicas, commandTimeoutMs } = this.config.redis;
    if (durability === 'fast') return;
    // Fail closed: an unverified server must not let 2xx claim a durability it may not give.
    if (durability === 'fsync' && !this.durabilityChecked)
      throw new Error('redis durability not verified yet');
    const c = this.commitClient;
    if (opts.afterWrite) await c.set(`${this.keys.prefix}:durability-mark`, String(Date.now()));
    if (durability === 'replicated') {
      const got = (await c.wait(replicas, commandTimeoutMs)) as number;
      if (got < replicas) throw new Error(`only ${got} of ${replicas} replicas acknowledged the write`);
    } else if (this.waitAof) {
      const [local] = (await c.call('WAITAOF', 1, 0, commandTimeoutMs)) as number[];
      if (local !== 1) throw new Error('the AOF fsync was not confirmed in time');
    }
  }

  async read(id: string): Promise<StoredEvent | null> {
    const fields = await this.client.hgetallBuffer(this.keys.event(id));
    if (!fields.meta) return null;
    const meta = JSON.parse(fields.meta.toString('utf8'));
    const enc = fields.enc?.toString('utf8');
    const raw = fields.body ?? Buffer.alloc(0);
    return {
      id,
      sourceId: meta.sourceId,
      receivedAt: meta.receivedAt,
      envelope: meta.envelope,
      targets: meta.targets,
      clientIp: meta.clientIp,
      headers: JSON.parse(fields.hdr?.toString('utf8') ?? '{}'),
      body: enc === 'deflate-raw' ? inflateRawSync(raw) : raw,
      ...(fields.ok ? { acceptedAt: Number(fields.ok.toString('utf8')) } : {}),
    };
  }
}
