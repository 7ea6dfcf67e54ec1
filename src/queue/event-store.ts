import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { createIORedisClient, Job, type JobsOptions, type Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Envelope } from '../bitbucket/envelope.js';
import type { Config } from '../config/types.js';
import { type DeliveryJobData, deliveryJobId, idempotencyKey } from './job-types.js';
import type { Keys } from './keys.js';
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
}

export type ClaimResult = { state: 'new' } | { state: 'pending' | 'done'; id: string };

export interface DedupeKeys {
  delivery: string;
  content?: string;
}

// Below this size deflate saves too little to be worth the CPU.
const COMPRESS_MIN_BYTES = 1024;

const CLAIM_SCRIPT = `
for i = 1, #KEYS do
  local v = redis.call('GET', KEYS[i])
  if v then return v end
end
for i = 1, #KEYS do
  redis.call('SET', KEYS[i], 'p:' .. ARGV[1], 'PX', ARGV[2])
end
return false`;

const RELEASE_SCRIPT = `
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == 'p:' .. ARGV[1] then redis.call('DEL', KEYS[i]) end
end
return 1`;

type ScriptedRedis = Redis & {
  hrClaim(n: number, ...args: (string | number)[]): Promise<string | null>;
  hrRelease(n: number, ...args: (string | number)[]): Promise<number>;
};

export class EventStore {
  private readonly client: ScriptedRedis;

  constructor(
    client: RedisClient,
    private readonly keys: Keys,
    private readonly config: Config,
    private readonly queues: ReadonlyMap<string, Queue>,
    private readonly jobOptions: ReadonlyMap<string, JobsOptions> = new Map(),
  ) {
    this.client = client as ScriptedRedis;
    if (typeof this.client.hrClaim !== 'function') {
      this.client.defineCommand('hrClaim', { lua: CLAIM_SCRIPT });
      this.client.defineCommand('hrRelease', { lua: RELEASE_SCRIPT });
    }
  }

  private dedupeList(d: DedupeKeys): string[] {
    return d.content ? [d.delivery, d.content] : [d.delivery];
  }

  /**
   * Reserve the dedupe keys for a new event. A key already held answers who holds it: `done` is a duplicate of
   * a stored event, `pending` is the same delivery being stored by a concurrent request (retry later). The
   * reservation is short so that a crash between claim and commit cannot block Bitbucket's retry for long.
   */
  async claim(d: DedupeKeys, eventId: string): Promise<ClaimResult> {
    const list = this.dedupeList(d);
    const ttl = this.config.redis.commandTimeoutMs * 2 + 1000;
    const held = await this.client.hrClaim(list.length, ...list, eventId, ttl);
    if (!held) return { state: 'new' };
    return { state: held.startsWith('d:') ? 'done' : 'pending', id: held.slice(2) };
  }

  /** Give a reservation back after a failed commit, so Bitbucket's retry is not taken for a duplicate. */
  async release(d: DedupeKeys, eventId: string): Promise<void> {
    const list = this.dedupeList(d);
    await this.client.hrRelease(list.length, ...list, eventId);
  }

  /**
   * Store the event and one delivery job per target in one MULTI/EXEC: all of them exist, or none. Only after
   * this resolves may the ingress answer 2xx.
   */
  async commit(event: StoredEvent, d: DedupeKeys): Promise<void> {
    // BullMQ's adapter around the same connection: its transactions accept BullMQ's job scripts.
    // biome-ignore lint/suspicious/noExplicitAny: BullMQ types ioredis from its own copy of the type declarations
    const multi = createIORedisClient(this.client as any).multi();
    const key = this.keys.event(event.id);
    const compress = event.body.length >= COMPRESS_MIN_BYTES;
    multi.hset(key, {
      meta: JSON.stringify({
        sourceId: event.sourceId,
        receivedAt: event.receivedAt,
        envelope: event.envelope,
        targets: event.targets,
        clientIp: event.clientIp,
      }),
      hdr: JSON.stringify(event.headers),
      enc: compress ? 'deflate-raw' : 'identity',
      body: compress ? deflateRawSync(event.body, { level: 1 }) : event.body,
    });
    multi.pexpire(key, this.config.retention.eventsMs + this.config.retention.deadLettersMs);
    multi.zadd(this.keys.eventIndex, event.receivedAt, event.id);
    multi.set(d.delivery, `d:${event.id}`, 'EX', this.config.ingress.dedupe.deliveryIdSeconds);
    if (d.content) multi.set(d.content, `d:${event.id}`, 'EX', this.config.ingress.dedupe.contentSeconds);
    const adds: Promise<string>[] = [];
    for (const targetId of event.targets) {
      const queue = this.queues.get(targetId);
      if (!queue) throw new Error(`no queue for target ${targetId}`);
      const data: DeliveryJobData = { e: event.id, t: targetId, k: idempotencyKey(event.id, targetId) };
      const jobId = deliveryJobId(event.id, targetId);
      // Queued on the MULTI: the command is sent with EXEC and its result comes back in `results`.
      adds.push(
        new Job(
          queue,
          event.envelope.eventKey,
          data,
          { ...this.jobOptions.get(targetId), jobId },
          jobId,
        ).addJob(multi),
      );
    }
    await Promise.all(adds);
    const results = await multi.exec();
    if (!results) throw new Error('transaction aborted');
    for (const [err, value] of results) {
      if (err) throw err;
      if (typeof value === 'number' && value < 0) throw new Error(`job add failed with code ${value}`);
    }
    if (this.config.redis.durability === 'replicated') await this.waitForReplicas();
  }

  /** `durability: replicated`: the write must reach a replica before the 202. */
  async waitForReplicas(): Promise<void> {
    const wanted = this.config.redis.replicas;
    const got = (await this.client.wait(wanted, this.config.redis.commandTimeoutMs)) as number;
    if (got < wanted) throw new Error(`only ${got} of ${wanted} replicas acknowledged the write`);
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
    };
  }
}
