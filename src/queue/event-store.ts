import { Job, type JobsOptions } from 'bullmq';
import { Cluster, type Redis } from 'ioredis';
import { compressSync, uncompressSync } from 'lz4-napi';
import type { Envelope } from '../bitbucket/envelope.js';
import type { Config, Platform } from '../config/types.js';
import { NotDurableYet } from '../errors/index.js';
import { ClusterNodes } from './cluster-nodes.js';
import { DurableLane } from './durable-lane.js';
import { decodeMeta } from './event-meta.js';
import { JOB_KEY_NAMES } from './job-key-names.js';
import type { Keys } from './keys.js';
import type { LocalHandoff } from './local-handoff.js';
import { LuaScript } from './lua-script.js';
import type { TargetQueues } from './queues.js';
import { connectionOptions, type RedisClient } from './redis-connection.js';
import { batchWrites } from './write-batching.js';

const APPEND_SCRIPT = LuaScript.fromFile('append-event');

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
  /** The W3C traceparent of the ingress request's span, when tracing was on: delivery spans link to it. */
  traceparent?: string | undefined;
  /** Why the event is quarantined (stored, not routed, until an operator releases it); absent when it is not. */
  quarantine?: string;
  /** Epoch ms it was stored with all its delivery jobs (one script). */
  acceptedAt?: number;
  /** Where the fan-out is with it: `received` until decided (every script that writes the meta sets it). */
  state: EventState;
  /** A `duplicate`'s original: the stored event whose every change this one repeats. */
  duplicateOf?: string;
  /** When the fan-out decided (ms). */
  routedAt?: number;
  /** SHA-256 of the body (base64url) as the ingress hashed it: on a received event, for the fan-out. */
  bodyHash?: string;
}

/**
 * `received`: acknowledged (202), not routed yet; `routed`: its delivery jobs exist (none when no route
 * matched); `quarantined`: held for its shape (docs/inbound.md); `duplicate`: a second hook's copy of a stored
 * event's changes, not delivered.
 */
export type EventState = 'received' | 'routed' | 'quarantined' | 'duplicate';

/** What the ingress appends to the inbox: the request as Bitbucket sent it, nothing parsed. */
export interface ReceivedEvent {
  id: string;
  sourceId: string;
  platform: Platform;
  eventKey: string;
  deliveryId: string;
  /** SHA-256 of the body, base64url: the replay guard's key and the inbox shard. */
  bodyHash: string;
  receivedAt: number;
  /** The original Bitbucket headers that targets get back (never Authorization). */
  headers: Record<string, string>;
  body: Buffer;
  clientIp?: string;
  traceparent?: string | undefined;
}

export type AppendResult = { state: 'received' } | { state: 'duplicate'; id: string };

/** A received event as the fan-out would read it back: decoded, and the hash's raw fields it copies on a cluster. */
export interface ReceivedCopy {
  event: StoredEvent;
  fields: Record<string, Buffer>;
}

/** The `meta` field of an event hash: written received by the ingress, rewritten routed by the fan-out. */
export interface EventMeta {
  sourceId: string;
  receivedAt: number;
  envelope: Envelope;
  targets: string[];
  clientIp?: string;
  traceparent?: string;
}

/**
 * A received event's envelope before the fan-out has read its body: what the headers say. Every reader of an
 * event sees the same shape before and after routing (no repository, no refs until then).
 */
export function receivedEnvelope(e: {
  platform: Platform;
  eventKey: string;
  deliveryId: string;
  headers: Record<string, string>;
}): Envelope {
  const hookId = e.headers['x-hook-uuid'];
  const attempt = e.headers['x-attempt-number'];
  return {
    platform: e.platform,
    eventKey: e.eventKey,
    deliveryId: e.deliveryId,
    ...(hookId ? { hookId } : {}),
    ...(attempt && /^\d{1,3}$/.test(attempt) ? { attempt: Number(attempt) } : {}),
    repository: null,
    refs: [],
    commits: [],
  };
}

// Below this size compressing saves too little to be worth the CPU.
const COMPRESS_MIN_BYTES = 1024;

/** What the route script needs of a target's queue, worked out once per queue. */
export interface JobQueueTarget {
  keys: string[];
  /** The target's job options as BullMQ stores them, without the per-job `jobId`. */
  opts: Record<string, unknown>;
}

/**
 * Appends a received event to its shard's inbox in one atomic script call (append-event.lua), and, when
 * `redis.durability` asks for it, waits until the write is replicated or fsynced before the caller answers.
 * Reads events back for the worker and ops.
 */
export class EventStore {
  private readonly client: Redis;
  /**
   * The connection the store script goes over when no lane is needed: the commit connection, which a lane uses
   * too without a cluster, so a write takes one path whatever `redis.durability` says. Never the connection
   * BullMQ's Queue objects share: a lane's WAIT holds up every command behind it on its connection.
   */
  private readonly writer: Redis;
  /** Per target, per shard. */
  private readonly jobQueues = new Map<string, JobQueueTarget[]>();
  /**
   * With `durability: fsync|replicated` the store script, the marker and the WAIT/WAITAOF all go over one
   * connection (a lane, see durable-lane.ts): a wait on another connection could reach another server (a
   * failover, a restart) than the write did, and vouch for nothing. Without a cluster that is the commit
   * connection; on a cluster, one plain connection per primary, picked by the event's slot. With `fast` there
   * is no wait and the script uses the commit connection all the same (see `writer`).
   */
  private readonly lane: DurableLane;
  private readonly nodes: ClusterNodes | undefined;
  private readonly nodeLanes = new Map<Redis, DurableLane>();
  /** Set when this process runs a fan-out: each received event is handed to it as written (local-handoff.ts). */
  receivedHandoff: LocalHandoff<ReceivedCopy> | undefined;
  /** Set when this process runs delivery workers: the fan-out hands each routed event to them. */
  routedHandoff: LocalHandoff<StoredEvent> | undefined;

  constructor(
    client: RedisClient,
    private readonly keys: Keys,
    private readonly config: Config,
    queues: TargetQueues,
    jobOptions: ReadonlyMap<string, JobsOptions> = new Map(),
    commitClient: RedisClient = client,
  ) {
    this.client = client as Redis;
    this.writer = commitClient as Redis;
    this.lane = this.newLane(commitClient as Redis);
    this.nodes =
      client instanceof Cluster
        ? new ClusterNodes(client, connectionOptions(config, 'producer', 'producer-node'))
        : undefined;
    for (const targetId of queues.targetIds) {
      const shardQueues = queues.ofTarget(targetId);
      // BullMQ's own normalisation (defaults, backoff shape) and encoding of the options, as Queue.add would
      // store them: the same for every shard of the target, so worked out once. `jobId` is added per job;
      // BullMQ keeps it under its own name, last.
      const opts: Record<string, unknown> = {
        ...Job.optsAsJSON(new Job(shardQueues[0]!, 'x', {}, { ...jobOptions.get(targetId) }).opts),
      };
      this.jobQueues.set(
        targetId,
        shardQueues.map((_queue, shard) => ({
          keys: JOB_KEY_NAMES.map((name) => this.keys.queueKey(targetId, name, shard)),
          opts,
        })),
      );
    }
  }

  /**
   * The ingress's one call: dedupe on the delivery id and the body's hash, then the received event, its index
   * entry, its dedupe keys and its inbox entry (append-event.lua). `duplicate`: a dedupe key is held by a
   * stored event (nothing written); `received`: stored, and durable as configured once this resolves. Throws
   * NotDurableYet when the write is on the primary but not confirmed durable in time.
   */
  async append(event: ReceivedEvent): Promise<AppendResult> {
    const compress = event.body.length >= COMPRESS_MIN_BYTES;
    // LZ4, synchronous: on Bitbucket-sized bodies it costs a fifth of zlib's deflate at level 1 for output
    // about 1.3× deflate's; zlib's async API is worse still (a stream per call). Measured in `npm run bench`.
    const body = compress ? compressSync(event.body) : event.body;
    const envelope = receivedEnvelope(event);
    const meta: EventMeta = {
      sourceId: event.sourceId,
      receivedAt: event.receivedAt,
      envelope,
      targets: [],
      ...(event.clientIp ? { clientIp: event.clientIp } : {}),
      ...(event.traceparent ? { traceparent: event.traceparent } : {}),
    };
    // The id names the event's shard (always 0 without a cluster): its repository's, as the ingress saw it.
    const shard = this.keys.shardOfId(event.id);
    const keys = [
      this.keys.event(event.id),
      this.keys.eventIndexOf(shard),
      this.keys.dedupeDelivery(event.sourceId, event.deliveryId, shard),
      this.keys.dedupeBody(event.sourceId, event.bodyHash, shard),
      this.keys.inbox(shard),
    ];
    const headers = JSON.stringify(event.headers);
    const encoding = compress ? 'lz4' : 'identity';
    const args: (string | number | Buffer)[] = [
      event.id,
      event.receivedAt,
      this.config.retention.events + this.config.retention.deadLetters,
      JSON.stringify(meta),
      headers,
      encoding,
      body,
      Math.ceil(this.config.ingress.dedupe.deliveryIdWindow / 1000),
      event.bodyHash,
    ];
    const lane = this.config.redis.durability === 'fast' ? undefined : this.laneFor(keys[0]!);
    // A node connection is opened on first use, and the commit connection may still be connecting just after
    // start (a cluster client learns the slot map first): the write waits for it (bounded) rather than failing.
    await (lane ?? this.lane).ready();
    const epoch = lane?.epoch ?? 0;
    let reply: [string, string];
    const conn = lane?.conn ?? this.writer;
    batchWrites(conn);
    try {
      reply = (await APPEND_SCRIPT.run(conn, keys, args)) as [string, string];
    } catch (err) {
      // A slot moved (resharding, failover) under a node connection: the retry uses the refreshed map.
      if (/^(MOVED|ASK) /.test((err as Error).message)) this.nodes?.refresh();
      throw err;
    }
    // Handed over before the durability wait: the inbox entry is readable from the script's return, and the
    // fan-out routes the same event whether this request ends 202 or 503.
    if (reply[0] !== 'duplicate') this.handOver(event, envelope, headers, encoding, body);
    // A copy is answered 200 only once durable too: its original may have been answered 503 for want of
    // durability, or stored by another instance a moment ago.
    if (lane) await lane.awaitDurable(epoch, this.keys.durabilityMark(shard));
    return reply[0] === 'duplicate' ? { state: 'duplicate', id: reply[1] } : { state: 'received' };
  }

  /** What decode() makes of the hash append-event.lua wrote, field for field, for this process's fan-out. */
  private handOver(
    event: ReceivedEvent,
    envelope: Envelope,
    headers: string,
    encoding: string,
    body: Buffer,
  ): void {
    if (!this.receivedHandoff) return;
    this.receivedHandoff.put(
      event.id,
      {
        event: {
          id: event.id,
          sourceId: event.sourceId,
          receivedAt: event.receivedAt,
          envelope,
          targets: [],
          clientIp: event.clientIp || undefined,
          ...(event.traceparent ? { traceparent: event.traceparent } : {}),
          headers: { ...event.headers },
          body: event.body,
          acceptedAt: event.receivedAt,
          state: 'received',
          bodyHash: event.bodyHash,
        },
        fields: { hdr: Buffer.from(headers), enc: Buffer.from(encoding), body },
      },
      event.body.length + body.length + headers.length,
    );
  }

  /** What the fan-out's route script needs of a target's queue in a shard (its BullMQ keys and options). */
  jobQueue(targetId: string, shard: number): JobQueueTarget | undefined {
    return this.jobQueues.get(targetId)?.[shard];
  }

  /** The lane for a durable write of `key`: the commit connection, or on a cluster its slot's primary. */
  private laneFor(key: string): DurableLane {
    if (!this.nodes) return this.lane;
    const conn = this.nodes.forKey(key);
    if (!conn) throw new NotDurableYet('the cluster slot map is not known yet');
    let lane = this.nodeLanes.get(conn);
    if (!lane) {
      lane = this.newLane(conn);
      this.nodeLanes.set(conn, lane);
    }
    return lane;
  }

  private newLane(conn: Redis): DurableLane {
    return new DurableLane(
      conn,
      (c, marker) => this.waitForDurability(c, marker),
      this.config.redis.commandTimeout,
    );
  }

  close(): void {
    this.nodes?.close();
  }

  /** Set by checkDurability() whenever the connection becomes ready: whether the server has WAITAOF. */
  waitAof = false;
  /** Whether checkDurability() has passed against the server behind the current connection. */
  durabilityChecked = false;

  /**
   * One round on one connection: `replicated` waits for replicas, `fsync` for the local AOF fsync. WAIT and
   * WAITAOF cover the writes of the connection that sends them; the marker written first carries the round's
   * writes along with it (and, for a copy, an original another instance wrote).
   */
  private async waitForDurability(c: Redis, marker: string): Promise<void> {
    const { durability, replicas, commandTimeout: commandTimeoutMs } = this.config.redis;
    if (durability === 'fast') return;
    // Fail closed: an unverified server must not let 2xx claim a durability it may not give.
    if (durability === 'fsync' && !this.durabilityChecked)
      throw new Error('redis durability not verified yet');
    await c.set(marker, String(Date.now()));
    if (durability === 'replicated') {
      const got = (await c.wait(replicas, commandTimeoutMs)) as number;
      if (got < replicas) throw new Error(`only ${got} of ${replicas} replicas acknowledged the write`);
    } else if (this.waitAof) {
      const [local] = (await c.call('WAITAOF', 1, 0, commandTimeoutMs)) as number[];
      if (local !== 1) throw new Error('the AOF fsync was not confirmed in time');
    }
  }

  /** An event by the id the ingress answered with; on a cluster it may have moved to its routed record. */
  async read(id: string): Promise<StoredEvent | null> {
    const fields = await this.client.hgetallBuffer(this.keys.event(id));
    if (fields.meta) return this.decode(id, fields);
    const routedAs = this.keys.shards > 1 ? await this.client.get(this.keys.routedAs(id)) : null;
    return routedAs && routedAs !== id ? this.read(routedAs) : null;
  }

  /** An event from its hash's fields as stored (null when it has expired). */
  decode(id: string, fields: Record<string, Buffer>): StoredEvent | null {
    if (!fields.meta) return null;
    const meta = decodeMeta(fields.meta);
    // Stored but unreadable: an error, not an expired event (the fan-out would acknowledge it as gone).
    if (!meta) throw new Error(`event ${id}: its meta cannot be read`);
    if (fields.rep) {
      const refs = meta.envelope.refs;
      meta.envelope.repeatedRefs = repeatedIndices(fields.rep.toString('utf8')).flatMap(
        (i) => refs[i]?.name ?? [],
      );
    }
    const enc = fields.enc?.toString('utf8');
    const raw = fields.body ?? Buffer.alloc(0);
    return {
      id,
      sourceId: meta.sourceId,
      receivedAt: meta.receivedAt,
      envelope: meta.envelope,
      targets: meta.targets,
      clientIp: meta.clientIp,
      ...(meta.traceparent ? { traceparent: meta.traceparent } : {}),
      headers: JSON.parse(fields.hdr?.toString('utf8') ?? '{}'),
      body: decode(enc, raw),
      ...(fields.ok ? { acceptedAt: Number(fields.ok.toString('utf8')) } : {}),
      ...(fields.q ? { quarantine: fields.q.toString('utf8') } : {}),
      state: (fields.state?.toString('utf8') ?? 'received') as EventState,
      ...(fields.duplicateOf ? { duplicateOf: fields.duplicateOf.toString('utf8') } : {}),
      ...(fields.routedAt ? { routedAt: Number(fields.routedAt.toString('utf8')) } : {}),
      ...(fields.bodyHash ? { bodyHash: fields.bodyHash.toString('utf8') } : {}),
    };
  }
}

/** The route script's `1,3` (1-based) as `[0, 2]`. */
export function repeatedIndices(list: string): number[] {
  return list === '' ? [] : list.split(',').map((n) => Number(n) - 1);
}

/** Bodies are stored `lz4`-compressed, or as received (`identity`) when too small to be worth it. */
function decode(enc: string | undefined, raw: Buffer): Buffer {
  return enc === 'lz4' ? uncompressSync(raw) : raw;
}
