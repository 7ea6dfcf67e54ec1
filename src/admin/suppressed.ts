import type { Job } from 'bullmq';
import { explain } from '../delivery/explain.js';
import { RelayError } from '../errors/index.js';
import type { TargetState } from '../queue/delivery-state.js';
import { deliveryJobOptions } from '../queue/job-options.js';
import { type DeliveryJobData, idempotencyKey } from '../relay/job-types.js';
import type { AdminDeps } from './admin-deps.js';
import { matchesEvent } from './event-match.js';
import { type EventMeta, eventSummary, readEventParts } from './event-view.js';
import type { Filter } from './filters.js';
import { type IndexPosition, indexAll, indexPage, walkIndex } from './index-pages.js';

/** A delivery the loop guard held back: a member `<eventId>.<targetId>` of the suppressed ZSET. */
export interface Suppressed {
  id: string;
  eventId: string;
  target: string;
  suppressedAt: string;
  reason?: string;
  /** Why, in a sentence (from the rule's evidence). */
  explanation?: string;
  source?: string;
  eventKey?: string;
  repository?: string | null;
  refs?: string[];
  receivedAt?: string;
  /** The head commit's first line: a skip marker is read there. */
  commitMessage?: string;
  actor?: string;
  expired: boolean;
}

interface Loaded {
  id: string;
  eventId: string;
  target: string;
  score: number;
  meta: EventMeta | null;
  state: TargetState | null;
}

const MEMBER = /^([A-Za-z0-9-]{1,64})\.([A-Za-z0-9_-]{1,64})$/;
const MAX_RELEASE_SUFFIX = 1000;

function view(l: Loaded): Suppressed {
  return {
    id: l.id,
    eventId: l.eventId,
    target: l.target,
    suppressedAt: new Date(l.score).toISOString(),
    ...(l.state?.reason ? { reason: l.state.reason } : {}),
    ...(l.state?.evidence ? { explanation: explain(l.state.evidence) } : {}),
    ...(l.meta
      ? {
          ...eventSummary(l.meta),
          ...(l.meta.envelope.headCommit?.message
            ? { commitMessage: l.meta.envelope.headCommit.message.split('\n')[0]!.slice(0, 200) }
            : {}),
          ...(l.meta.envelope.actor?.name ? { actor: l.meta.envelope.actor.name } : {}),
        }
      : {}),
    expired: l.meta === null,
  };
}

function matches(l: Loaded, f: Filter): boolean {
  if (f.target && l.target !== f.target) return false;
  if (f.reason && !(l.state?.reason ?? '').includes(f.reason)) return false;
  // An expired event is judged by when it was suppressed.
  if (!l.meta && (f.since !== undefined || f.until !== undefined)) {
    if (f.since !== undefined && l.score < f.since) return false;
    if (f.until !== undefined && l.score >= f.until) return false;
    return matchesEvent(l.eventId, null, { ...f, since: undefined, until: undefined });
  }
  return matchesEvent(l.eventId, l.meta, f);
}

export class SuppressedDeliveries {
  constructor(private readonly deps: AdminDeps) {}

  private async load(member: string, score: number): Promise<Loaded | null> {
    const m = MEMBER.exec(member);
    if (!m) return null;
    const [, eventId, target] = m as unknown as [string, string, string];
    const { meta, states } = await readEventParts(this.deps, eventId, [target]);
    return { id: member, eventId, target, score, meta, state: states.get(target) ?? null };
  }

  private walk(after?: IndexPosition) {
    return walkIndex(this.deps.redis, this.deps.keys.suppressed, (m, s) => this.load(m, s), after);
  }

  /** Newest suppression first. */
  find(f: Filter): Promise<Loaded[]> {
    return indexAll(this.walk(), (l) => matches(l, f));
  }

  /** One page read from the index (`total`: every suppressed delivery, whatever the filter). */
  async list(f: Filter, limit: number, after?: IndexPosition) {
    const [page, total] = await Promise.all([
      indexPage(this.walk(after), (l) => matches(l, f), limit),
      this.deps.redis.zcard(this.deps.keys.suppressed),
    ]);
    return { suppressed: page.items.map(view), total, ...(page.next ? { next: page.next } : {}) };
  }

  /** Drop it from the list for good: nothing is delivered; the event keeps its `suppressed` state. */
  async discard(l: Loaded): Promise<{ id: string }> {
    await this.deps.redis.zrem(this.deps.keys.suppressed, l.id);
    return { id: l.id };
  }

  async get(id: string): Promise<Loaded> {
    const score = MEMBER.test(id) ? await this.deps.redis.zscore(this.deps.keys.suppressed, id) : null;
    if (score === null) throw new RelayError('NOT_FOUND', 'no such suppressed delivery');
    return (await this.load(id, Number(score)))!;
  }

  /**
   * Deliver now, as agreed with the workers: a new job with the delivery's own Idempotency-Key and trigger
   * `release` (the worker skips the loop guard for it), then out of the suppressed set. The job id counts up
   * so an earlier release job still kept by retention does not swallow this one, while two operators
   * releasing at the same moment land on the same id and BullMQ keeps one.
   */
  async release(l: Loaded): Promise<{ id: string; jobId: string }> {
    const queue = this.deps.queues.forEvent(l.target, l.eventId);
    const target = this.deps.config.targets.find((t) => t.id === l.target);
    if (!queue || !target) throw new RelayError('CONFLICT', `target ${l.target} is no longer configured`);
    if (!l.meta) throw new RelayError('CONFLICT', 'the event has expired; nothing left to deliver');
    let jobId = '';
    for (let n = 1; n <= MAX_RELEASE_SUFFIX; n++) {
      jobId = `${l.eventId}.${l.target}.release-${n}`;
      if (!(await queue.getJob(jobId))) break;
    }
    const data: DeliveryJobData = {
      eventId: l.eventId,
      targetId: l.target,
      idempotencyKey: idempotencyKey(l.eventId, l.target),
      trigger: 'release',
    };
    await (queue as { add(name: string, data: DeliveryJobData, opts: object): Promise<Job> }).add(
      l.meta.envelope.eventKey,
      data,
      { ...deliveryJobOptions(this.deps.config, target), jobId },
    );
    await this.deps.redis.zrem(this.deps.keys.suppressed, l.id);
    return { id: l.id, jobId };
  }
}
