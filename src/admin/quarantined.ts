import type { Job } from 'bullmq';
import { RelayError } from '../errors/index.js';
import { decodeMeta, encodeMeta } from '../queue/event-meta.js';
import { deliveryJobOptions } from '../queue/job-options.js';
import { type DeliveryJobData, deliveryJobId, idempotencyKey } from '../relay/job-types.js';
import { eventGuard, jobGuard, StaticLoopRules } from '../relay/loop-rules.js';
import { Router } from '../relay/routing.js';
import type { AdminDeps } from './admin-deps.js';
import { matchesEvent } from './event-match.js';
import { type EventMeta, type EventSummary, eventSummary } from './event-view.js';
import type { Filter } from './filters.js';

/** A signed event stored but held back for its shape: a member of its shard's quarantine index. */
export interface Quarantined extends Partial<EventSummary> {
  id: string;
  quarantinedAt: string;
  /** The first unexpected field and the type it should have had (never a value). */
  reason?: string;
  expired: boolean;
}

interface Loaded {
  id: string;
  score: number;
  meta: EventMeta | null;
  reason: string | null;
}

const EVENT_ID = /^[0-9a-f-]{36}$/;
const BATCH = 500;

function view(l: Loaded): Quarantined {
  return {
    id: l.id,
    quarantinedAt: new Date(l.score).toISOString(),
    ...(l.reason ? { reason: l.reason } : {}),
    ...(l.meta ? eventSummary(l.meta) : {}),
    expired: l.meta === null,
  };
}

/** Whether the filter asks something of the events themselves: then pages are read in batches and judged. */
function byMeta(f: Filter): boolean {
  return Boolean(
    f.source ||
      f.repo ||
      f.eventKey ||
      f.target ||
      f.branch ||
      f.commit ||
      f.actor ||
      f.deliveryId ||
      f.eventId ||
      (f.state && f.state !== 'quarantined'),
  );
}

function matches(l: Loaded, f: Filter): boolean {
  // A quarantined event has no targets and no delivery state yet: a target or another state matches none.
  if (f.target || (f.state && f.state !== 'quarantined')) return false;
  return matchesEvent(l.id, l.meta, f);
}

/**
 * Ops on quarantined events. Pages are read from the per-shard indexes (sorted by arrival, newest first); only
 * the page's events are loaded, unless a filter needs their envelopes (source, repo, event key), then the
 * index is read in batches until the page is full.
 */
export class QuarantinedEvents {
  private readonly router: Router;
  private readonly loopRules: StaticLoopRules;

  constructor(private readonly deps: AdminDeps) {
    this.router = new Router(deps.config);
    this.loopRules = new StaticLoopRules(deps.config.loop);
  }

  private indexes(): string[] {
    return Array.from({ length: this.deps.keys.shards }, (_, s) => this.deps.keys.quarantinedOf(s));
  }

  private async load(id: string, score: number): Promise<Loaded> {
    const [meta, ok, reason] = await this.deps.redis.hmgetBuffer(this.deps.keys.event(id), 'meta', 'ok', 'q');
    return { id, score, meta: ok ? decodeMeta(meta) : null, reason: reason?.toString('utf8') ?? null };
  }

  /** Up to `count` index entries of one shard within the filter's time range, from `start`, newest first. */
  private async entries(index: string, f: Filter, start: number, count: number) {
    const raw = await this.deps.redis.zrevrangebyscore(
      index,
      f.until === undefined ? '+inf' : `(${f.until}`,
      f.since ?? '-inf',
      'WITHSCORES',
      'LIMIT',
      start,
      count,
    );
    const out: { id: string; score: number }[] = [];
    for (let i = 0; i < raw.length; i += 2) out.push({ id: raw[i]!, score: Number(raw[i + 1]) });
    return out;
  }

  async list(f: Filter, limit: number, offset: number) {
    const want = offset + limit + 1;
    const perShard = await Promise.all(
      this.indexes().map(async (index) => {
        if (!byMeta(f)) {
          return (await this.entries(index, f, 0, want)).map((e) => ({ ...e, loaded: undefined }));
        }
        const found: { id: string; score: number; loaded: Loaded }[] = [];
        for (let start = 0; found.length < want; start += BATCH) {
          const batch = await this.entries(index, f, start, BATCH);
          const loaded = await Promise.all(batch.map((e) => this.load(e.id, e.score)));
          for (const l of loaded) if (matches(l, f)) found.push({ id: l.id, score: l.score, loaded: l });
          if (batch.length < BATCH) break;
        }
        return found;
      }),
    );
    const merged = perShard.flat().sort((a, b) => b.score - a.score || (a.id < b.id ? 1 : -1));
    const page = await Promise.all(
      merged.slice(offset, offset + limit).map((e) => e.loaded ?? this.load(e.id, e.score)),
    );
    const total = byMeta(f)
      ? undefined
      : (
          await Promise.all(
            this.indexes().map((index) =>
              this.deps.redis.zcount(
                index,
                f.since ?? '-inf',
                f.until === undefined ? '+inf' : `(${f.until}`,
              ),
            ),
          )
        ).reduce((a, b) => a + b, 0);
    return {
      quarantined: page.map(view),
      ...(total === undefined ? {} : { total }),
      nextOffset: merged.length > offset + limit ? offset + limit : null,
    };
  }

  async get(id: string): Promise<Loaded> {
    const index = this.deps.keys.quarantinedOf(this.deps.keys.shardOfId(id));
    const score = EVENT_ID.test(id) ? await this.deps.redis.zscore(index, id) : null;
    if (score === null) throw new RelayError('NOT_FOUND', 'no such quarantined event');
    return this.load(id, Number(score));
  }

  /**
   * Deliver as if it had just arrived well formed: routed now, one delivery job per target with the usual id,
   * Idempotency-Key and loop-guard inputs (BullMQ keeps one job per id, so two operators releasing at once
   * make one delivery); then the event records its targets and leaves the index.
   */
  async release(l: Loaded): Promise<{ id: string; targets: string[] }> {
    if (!l.meta) throw new RelayError('CONFLICT', 'the event has expired; nothing left to deliver');
    const { targets } = this.router.match(l.meta.sourceId, l.meta.envelope);
    const { sourceId, envelope, receivedAt } = l.meta;
    const source = this.deps.config.sources.find((s) => s.id === sourceId);
    const guard = source
      ? eventGuard(this.loopRules, envelope, source, receivedAt)
      : jobGuard(this.loopRules, envelope, sourceId, receivedAt);
    for (const targetId of targets) {
      const queue = this.deps.queues.forEvent(targetId, l.id);
      const target = this.deps.config.targets.find((t) => t.id === targetId);
      if (!queue || !target) throw new RelayError('CONFLICT', `target ${targetId} is not configured`);
      const data: DeliveryJobData = {
        eventId: l.id,
        targetId,
        idempotencyKey: idempotencyKey(l.id, targetId),
        loopGuard: guard,
      };
      await (queue as { add(name: string, data: DeliveryJobData, opts: object): Promise<Job> }).add(
        l.meta.envelope.eventKey,
        data,
        { ...deliveryJobOptions(this.deps.config, target), jobId: deliveryJobId(l.id, targetId) },
      );
    }
    await this.settle(l, { ...l.meta, targets }, `released ${new Date().toISOString()}`, 'routed');
    return { id: l.id, targets };
  }

  /** Never delivered; the event stays readable (for the audit trail) until its retention ends. */
  async discard(l: Loaded): Promise<{ id: string }> {
    await this.settle(l, l.meta, `discarded ${new Date().toISOString()}`);
    return { id: l.id };
  }

  /**
   * Out of the index, the outcome on the event (`qd`), its reason kept as `qr`, and, when released, its state
   * `routed` (its jobs exist now); one slot, one MULTI.
   */
  private async settle(l: Loaded, meta: EventMeta | null, outcome: string, state?: 'routed'): Promise<void> {
    const key = this.deps.keys.event(l.id);
    const tx = this.deps.redis
      .multi()
      .zrem(this.deps.keys.quarantinedOf(this.deps.keys.shardOfId(l.id)), l.id);
    if (meta) {
      tx.hset(key, 'meta', encodeMeta(JSON.stringify(meta)), 'qd', outcome, 'qr', l.reason ?? '');
      if (state) tx.hset(key, 'state', state);
      tx.hdel(key, 'q');
    }
    await tx.exec();
  }
}
