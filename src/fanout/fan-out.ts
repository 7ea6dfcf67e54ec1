import { createHash, randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { apiAuthorization } from '../bitbucket-api/commit-message.js';
import type { SourceConfig } from '../config/types.js';
import { UnknownKeyCounter } from '../ingress/unknown-keys.js';
import type { Logger } from '../log.js';
import type { EventMeta, ReceivedCopy, StoredEvent } from '../queue/event-store.js';
import { LocalHandoff } from '../queue/local-handoff.js';
import { createRedis, type RedisClient } from '../queue/redis-connection.js';
import { StaticLoopRules } from '../relay/loop-rules.js';
import type { Runtime } from '../runtime.js';
import { contentDedupeKeys } from './content-dedupe.js';
import { type Decision, decide } from './decide.js';
import { FAN_OUT_GROUP, type InboxEvent, type RouteOutcome, RouteWriter } from './route-writer.js';

export interface FanOutOptions {
  /** Inbox entries read per XREADGROUP. */
  batch?: number;
  /** How long one XREADGROUP waits for new entries (ms); also how soon a stop is noticed. */
  blockMs?: number;
  /** This consumer's name in the group; unique per process by default. */
  consumer?: string;
}

const DEFAULTS = { batch: 64, blockMs: 1000 };
/** A failed read or write (Redis away) is tried again after this pause. */
const RETRY_PAUSE_MS = 500;

type StreamEntries = [string, string[]][];

/**
 * The fan-out stage (worker role): reads each shard's inbox with a consumer group, and for each received
 * event parses, validates, normalises, content-dedupes and routes it, then writes its delivery jobs, its
 * decision and the acknowledgement in one script (route-writer.ts). Several processes share the group; an
 * entry a dead consumer held is claimed after `worker.inboxTakeover`. Deciding twice is harmless: the script of an
 * event already decided only acknowledges.
 */
export class FanOut {
  private readonly opts: Required<FanOutOptions>;
  /**
   * An entry read by a consumer and not acknowledged for this long (ms) is taken over (XAUTOCLAIM): its
   * consumer died between read and acknowledge (`worker.inboxTakeover`).
   */
  private readonly claimIdleMs: number;
  private readonly writerConn: RedisClient;
  private readonly readers: RedisClient[] = [];
  private readonly writer: RouteWriter;
  private readonly loopRules: StaticLoopRules;
  private readonly sources: Map<string, SourceConfig>;
  private readonly unknownKeys: UnknownKeyCounter;
  private readonly warnedNoMessage = new Set<string>();
  /** What this process's ingress received, as it wrote it: read here instead of from Redis. */
  private readonly handoff: LocalHandoff<ReceivedCopy>;
  private readonly log: Logger;
  private running = false;
  private loops: Promise<void>[] = [];

  constructor(
    private readonly runtime: Runtime,
    options: FanOutOptions = {},
  ) {
    this.opts = {
      ...DEFAULTS,
      consumer: `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`,
      ...options,
    };
    this.claimIdleMs = runtime.config.worker.inboxTakeover;
    this.log = runtime.log.child({ role: 'fan-out' });
    this.writerConn = createRedis(runtime.config, 'worker', 'fan-out', { autoPipelining: true });
    this.writerConn.on('error', () => {});
    this.writer = new RouteWriter(this.writerConn, runtime.keys, runtime.config, runtime.store);
    this.loopRules = new StaticLoopRules(runtime.config.loop);
    this.sources = new Map(runtime.config.sources.map((s) => [s.id, s]));
    this.unknownKeys = new UnknownKeyCounter(runtime.metrics);
    this.handoff = new LocalHandoff({
      count: (result) => runtime.metrics.localHandoff.inc({ stage: 'received', result }),
    });
  }

  get consumer(): string {
    return this.opts.consumer;
  }

  start(): this {
    this.running = true;
    this.runtime.store.receivedHandoff = this.handoff;
    for (let shard = 0; shard < this.runtime.keys.shards; shard++) {
      // XREADGROUP blocks its connection: one per shard, apart from the writes.
      const reader = createRedis(this.runtime.config, 'worker', `fan-out-${shard}`);
      reader.on('error', () => {});
      this.readers.push(reader);
      this.loops.push(this.loop(shard, reader));
    }
    return this;
  }

  /**
   * Stops reading and lets a batch being decided finish, within a bound: a batch cut short (Redis away, or
   * too slow) leaves its entries pending, and another consumer claims them.
   */
  async close(boundMs = 2000): Promise<void> {
    this.running = false;
    if (this.runtime.store.receivedHandoff === this.handoff) this.runtime.store.receivedHandoff = undefined;
    // A blocked XREADGROUP returns within blockMs; disconnecting ends it at once.
    for (const reader of this.readers) reader.disconnect();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled(this.loops),
      new Promise((r) => {
        timer = setTimeout(r, boundMs);
      }),
    ]);
    clearTimeout(timer);
    this.writerConn.disconnect();
  }

  private async loop(shard: number, reader: RedisClient): Promise<void> {
    const inbox = this.runtime.keys.inbox(shard);
    let groupReady = false;
    let lastClaim = 0;
    let lastError = '';
    while (this.running) {
      try {
        if (!groupReady) groupReady = await ensureGroup(reader, inbox);
        if (Date.now() - lastClaim >= this.claimIdleMs / 2) {
          lastClaim = Date.now();
          await this.claim(shard, reader);
        }
        const read = (await reader.xreadgroup(
          'GROUP',
          FAN_OUT_GROUP,
          this.opts.consumer,
          'COUNT',
          this.opts.batch,
          'BLOCK',
          this.opts.blockMs,
          'STREAMS',
          inbox,
          '>',
        )) as [string, StreamEntries][] | null;
        if (read?.[0]) await this.process(shard, read[0][1]);
        lastError = '';
      } catch (err) {
        if (!this.running) break;
        const message = (err as Error).message;
        // NOGROUP: the inbox was deleted (a flush, a new Redis): make the group again.
        if (message.startsWith('NOGROUP')) groupReady = false;
        if (message !== lastError) this.log.warn({ err: message, shard }, 'fan-out: inbox read failed');
        lastError = message;
        await new Promise((r) => setTimeout(r, RETRY_PAUSE_MS));
      }
    }
  }

  /** Entries a dead consumer read and never acknowledged, taken over and decided here. */
  private async claim(shard: number, reader: RedisClient): Promise<void> {
    let cursor = '0-0';
    do {
      const [next, entries] = (await reader.xautoclaim(
        this.runtime.keys.inbox(shard),
        FAN_OUT_GROUP,
        this.opts.consumer,
        this.claimIdleMs,
        cursor,
        'COUNT',
        this.opts.batch,
      )) as [string, StreamEntries];
      const live = entries.filter((e) => Array.isArray(e[1]));
      if (live.length > 0) {
        this.log.info(
          { shard, entries: live.length },
          'fan-out: took over entries of a consumer that stopped',
        );
        await this.process(shard, live);
      }
      cursor = next;
    } while (cursor !== '0-0' && this.running);
  }

  /**
   * Decides a batch of inbox entries: one read of the events this process's ingress did not hand over, then
   * one script per event.
   */
  async process(shard: number, entries: StreamEntries): Promise<RouteOutcome[]> {
    const ids = entries.map(([, fields]) => fields[fields.indexOf('id') + 1] ?? '');
    const handed = ids.map((id) => this.handoff.take(id));
    const pipeline = this.writerConn.pipeline();
    for (const [i, id] of ids.entries()) if (!handed[i]) pipeline.hgetallBuffer(this.runtime.keys.event(id));
    const read = pipeline.length > 0 ? ((await pipeline.exec()) ?? []) : [];
    let next = 0;
    return Promise.all(
      entries.map(([entry], i) => {
        const id = ids[i]!;
        const copy = handed[i];
        if (copy) return this.decideOne(shard, { id, entry, fields: copy.fields }, copy.event);
        const [err, fields] = read[next++] ?? [];
        if (err) return Promise.reject(err);
        return this.decideOne(shard, { id, entry, fields: fields as Record<string, Buffer> });
      }),
    );
  }

  /**
   * `handed`: the event as this process's ingress wrote it; else it is decoded from the fields read. Decoded
   * here, in the entry's own promise, so that an unreadable event fails alone and the rest of its batch is
   * decided.
   */
  private async decideOne(shard: number, event: InboxEvent, handed?: StoredEvent): Promise<RouteOutcome> {
    const stored = handed ?? this.runtime.store.decode(event.id, event.fields);
    if (!stored) {
      await this.writer.drop(shard, event.entry);
      return { state: 'gone' };
    }
    // Decided and marked before (another consumer's entry, claimed after its acknowledgement was lost).
    if (stored.state !== 'received') {
      await this.writer.drop(shard, event.entry);
      return { state: 'decided', previous: stored.state };
    }
    const source = this.sources.get(stored.sourceId);
    const decision: Decision = decide(stored, {
      router: this.runtime.router,
      loopRules: this.loopRules,
      source,
    });
    const routedShard =
      decision.quarantine === undefined
        ? this.runtime.keys.shardOf(stored.sourceId, decision.envelope.repository)
        : shard;
    // The ingress hashed the body already (its replay guard) and kept the hash with the received event.
    const bodyHash = stored.bodyHash ?? createHash('sha256').update(stored.body).digest('base64url');
    const content =
      decision.quarantine === undefined
        ? contentDedupeKeys(this.runtime.keys, this.runtime.config.ingress.dedupe, {
            sourceId: stored.sourceId,
            envelope: decision.envelope,
            bodyHash,
            shard: routedShard,
          })
        : [];
    const meta: Omit<EventMeta, 'targets'> = {
      sourceId: stored.sourceId,
      receivedAt: stored.receivedAt,
      envelope: decision.envelope,
      ...(stored.clientIp ? { clientIp: stored.clientIp } : {}),
      ...(stored.traceparent ? { traceparent: stored.traceparent } : {}),
    };
    const outcome = await this.writer.write(event, meta, decision, routedShard, content, stored);
    this.account(stored.sourceId, event.id, stored.receivedAt, decision, outcome, source);
    return outcome;
  }

  /** Metrics and the decision's log line (info when ops may want to see it, debug for a plain routing). */
  private account(
    sourceId: string,
    eventId: string,
    receivedAt: number,
    decision: Decision,
    outcome: RouteOutcome,
    source: SourceConfig | undefined,
  ): void {
    if (outcome.state === 'decided' || outcome.state === 'gone') return;
    const m = this.runtime.metrics;
    m.fanOutLag.observe((Date.now() - receivedAt) / 1000);
    m.fanOutEvents.inc({ source: sourceId, decision: outcome.state });
    const eventKey = decision.envelope.eventKey;
    if (decision.unknownKey) this.unknownKeys.count(sourceId, eventKey);
    const line = {
      eventId,
      source: sourceId,
      eventKey,
      outcome: outcome.state,
      ...(decision.unknownKey ? { unknownKey: true } : {}),
    };
    if (outcome.state === 'duplicate') {
      m.ingressDuplicates.inc({ source: sourceId });
      this.log.info({ ...line, duplicateOf: outcome.duplicateOf }, 'fan-out');
      return;
    }
    if (outcome.state === 'quarantined') {
      m.ingressQuarantined.inc({ source: sourceId });
      this.log.info({ ...line, quarantine: decision.quarantine }, 'fan-out');
      return;
    }
    const routed = {
      ...line,
      targets: decision.targets.length,
      ...(outcome.routedId !== eventId ? { routedId: outcome.routedId } : {}),
    };
    if (decision.unknownKey) this.log.info(routed, 'fan-out');
    else this.log.debug(routed, 'fan-out');
    // Older Data Center servers send refs only: with API access the worker reads the message, else say so once.
    if (decision.messageMissing) {
      m.commitMessageMissing.inc({ source: sourceId });
      if (source && !apiAuthorization(source) && !this.warnedNoMessage.has(sourceId)) {
        this.warnedNoMessage.add(sourceId);
        this.log.warn(
          { source: sourceId },
          'pushes of this source carry no commit message: skip markers cannot apply (set sources[].api)',
        );
      }
    }
  }
}

/** Creates the inbox's consumer group (and the stream) unless it exists; from the start, so nothing is skipped. */
async function ensureGroup(redis: RedisClient, inbox: string): Promise<boolean> {
  try {
    await redis.xgroup('CREATE', inbox, FAN_OUT_GROUP, '0', 'MKSTREAM');
  } catch (err) {
    if (!(err as Error).message.startsWith('BUSYGROUP')) throw err;
  }
  return true;
}

/** The fan-out of a worker process (the `worker` and `start` roles). */
export function startFanOut(runtime: Runtime, options: FanOutOptions = {}): FanOut {
  return new FanOut(runtime, options).start();
}
