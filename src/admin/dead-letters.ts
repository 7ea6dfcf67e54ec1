import { randomUUID } from 'node:crypto';
import type { Job } from 'bullmq';
import { RelayError } from '../errors/index.js';
import { unindexDeadLetter } from '../queue/dead-letter-index.js';
import { type AttemptRecord, recordAttempt, type TargetState } from '../queue/delivery-state.js';
import type { DeliveryJobData } from '../relay/job-types.js';
import type { AdminDeps } from './admin-deps.js';
import { matchesEvent } from './event-match.js';
import { type AttemptView, attemptViews, type EventMeta, readEventParts } from './event-view.js';
import { type Filter, matchesStatus, statusClass } from './filters.js';
import { type IndexPosition, indexAll, indexPage, walkIndex } from './index-pages.js';

/**
 * Dead letters are the jobs in BullMQ's failed set of each target queue; the event hash holds the delivery's
 * `dead` state (attempts, reason, response excerpt). This module lists, replays and purges them.
 */
export interface DeadLetter {
  id: string;
  eventId: string;
  target: string;
  source?: string;
  eventKey?: string;
  repository?: string | null;
  receivedAt?: string;
  failedAt?: string;
  attemptsMade: number;
  status?: number;
  statusClass?: string;
  reason?: string;
  trigger?: string;
  /** True once the event (payload) has expired: such a dead letter can be purged but not replayed. */
  expired: boolean;
}

export interface DeadLetterDetail extends DeadLetter {
  idempotencyKey: string;
  excerpt?: string;
  attempts: AttemptView[];
}

interface Loaded {
  job: Job<DeliveryJobData>;
  meta: EventMeta | null;
  state: TargetState | null;
}

/** A dead letter as the index knows it: enough for lists and filters, without its BullMQ job. */
export interface Indexed {
  id: string;
  eventId: string;
  target: string;
  failedAt: number;
  meta: EventMeta | null;
  state: TargetState | null;
}

export type DeadLetterCursor = IndexPosition;

// `<eventId>.<targetId>`, or `<eventId>.<targetId>.release-<n>` for a released suppressed delivery that failed.
const DEAD_ID = /^([A-Za-z0-9-]{1,64})\.([A-Za-z0-9_-]{1,64})(?:\.[A-Za-z0-9_-]{1,64})?$/;

/** The last attempt; when the worker left no attempt, the status read back from the recorded reason. */
function lastAttempt(
  state: TargetState | null,
  failedReason?: string,
): Pick<AttemptRecord, 'status' | 'error'> | undefined {
  const a = state?.attempts.at(-1);
  if (a) return a;
  const reason = state?.reason ?? failedReason ?? '';
  const m = /\b([1-5]\d\d)\b/.exec(reason);
  if (m) return { status: Number(m[1]) };
  return reason ? { error: reason } : undefined;
}

function summaryOf(i: Indexed, job?: Job<DeliveryJobData>): DeadLetter {
  const { meta, state } = i;
  const last = lastAttempt(state, job?.failedReason);
  const reason = state?.reason ?? job?.failedReason;
  return {
    id: i.id,
    eventId: i.eventId,
    target: i.target,
    ...(meta
      ? {
          source: meta.sourceId,
          eventKey: meta.envelope.eventKey,
          repository: meta.envelope.repository,
          receivedAt: new Date(meta.receivedAt).toISOString(),
        }
      : {}),
    failedAt: new Date(job?.finishedOn ?? i.failedAt).toISOString(),
    attemptsMade: job?.attemptsMade ?? state?.attempts.at(-1)?.number ?? 0,
    ...(last?.status !== undefined ? { status: last.status } : {}),
    ...(statusClass(last) ? { statusClass: statusClass(last) } : {}),
    ...(reason ? { reason } : {}),
    ...(job?.data.trigger ? { trigger: job.data.trigger } : {}),
    expired: meta === null,
  };
}

function detail(l: Loaded): DeadLetterDetail {
  const i: Indexed = {
    id: String(l.job.id),
    eventId: l.job.data.eventId,
    target: l.job.data.targetId,
    failedAt: l.job.finishedOn ?? 0,
    meta: l.meta,
    state: l.state,
  };
  return {
    ...summaryOf(i, l.job),
    idempotencyKey: l.job.data.idempotencyKey,
    ...(l.state?.excerpt ? { excerpt: l.state.excerpt } : {}),
    attempts: attemptViews(l.state),
  };
}

function matches(i: Indexed, f: Filter): boolean {
  if (f.target && i.target !== f.target) return false;
  if (!matchesEvent(i.eventId, i.meta, f)) return false;
  if (f.status && !matchesStatus(f.status, lastAttempt(i.state))) return false;
  if (f.reason && !(i.state?.reason ?? '').includes(f.reason)) return false;
  return true;
}

export class DeadLetters {
  constructor(private readonly deps: AdminDeps) {}

  private async load(job: Job<DeliveryJobData>): Promise<Loaded> {
    const { meta, states } = await readEventParts(this.deps, job.data.eventId, [job.data.targetId]);
    return { job, meta, state: states.get(job.data.targetId) ?? null };
  }

  private walk(after?: DeadLetterCursor) {
    return walkIndex(this.deps.redis, this.deps.keys.deadLetters, (id, at) => this.indexed(id, at), after);
  }

  private async indexed(id: string, failedAt: number): Promise<Indexed | null> {
    const m = DEAD_ID.exec(id);
    if (!m) return null;
    const [, eventId, target] = m as unknown as [string, string, string];
    const { meta, states } = await readEventParts(this.deps, eventId, [target]);
    return { id, eventId, target, failedAt, meta, state: states.get(target) ?? null };
  }

  /** Every dead letter matching the filter, newest first (bulk actions and their preview). */
  find(f: Filter): Promise<Indexed[]> {
    return indexAll(this.walk(), (i) => matches(i, f));
  }

  /** How many dead letters there are in all (the index's size; a filter does not narrow it). */
  count(): Promise<number> {
    return this.deps.redis.zcard(this.deps.keys.deadLetters);
  }

  async list(
    f: Filter,
    limit: number,
    after?: DeadLetterCursor,
  ): Promise<{ deadLetters: DeadLetter[]; total: number; next?: DeadLetterCursor }> {
    const [page, total] = await Promise.all([
      indexPage(this.walk(after), (i) => matches(i, f), limit),
      this.count(),
    ]);
    return {
      deadLetters: page.items.map((i) => summaryOf(i)),
      total,
      ...(page.next ? { next: page.next } : {}),
    };
  }

  /** The failed job behind a dead-letter id (`<eventId>.<targetId>`), or a 404/409. */
  async get(id: string): Promise<Loaded> {
    const m = DEAD_ID.exec(id);
    if (!m) throw new RelayError('NOT_FOUND', 'no such dead letter');
    const [, eventId, target] = m as unknown as [string, string, string];
    const queue = this.deps.queues.forEvent(target, eventId);
    const job = queue ? ((await queue.getJob(id)) as Job<DeliveryJobData> | undefined) : undefined;
    if (!job) {
      // Gone from the queue (retention, a purge elsewhere): its index entry goes too.
      await unindexDeadLetter(this.deps.redis, this.deps.keys, id);
      throw new RelayError('NOT_FOUND', 'no such dead letter');
    }
    if (!(await job.isFailed()))
      throw new RelayError('CONFLICT', 'the delivery is not a dead letter (not failed)');
    return this.load(job);
  }

  async show(id: string): Promise<DeadLetterDetail> {
    return detail(await this.get(id));
  }

  /**
   * Replay as agreed with the workers: mark the job a `replay` (the worker then gives it no automatic
   * retries, so a failing replay lands back here) and move it from failed to wait. The Idempotency-Key stays,
   * unless `fresh`, for targets that must treat it as a new build.
   */
  async replay(l: Loaded, fresh: boolean): Promise<{ id: string; idempotencyKey: string }> {
    if (!l.meta)
      throw new RelayError('CONFLICT', 'the event has expired; the dead letter can only be purged');
    const { job } = l;
    const key = fresh ? `${job.data.eventId}.${job.data.targetId}.${randomUUID()}` : job.data.idempotencyKey;
    // A replay skips the loop guard: its inputs go, the rest of the delivery's data stays.
    const { loopGuard: _guard, ...data } = job.data;
    await job.updateData({ ...data, idempotencyKey: key, trigger: 'replay' });
    try {
      await job.retry('failed');
    } catch (err) {
      throw new RelayError('CONFLICT', 'the delivery left the dead letters meanwhile', { cause: err });
    }
    await unindexDeadLetter(this.deps.redis, this.deps.keys, String(job.id));
    return { id: String(job.id), idempotencyKey: key };
  }

  /** Remove the failed job; the event keeps a `dead` state that says who purged it. */
  async purge(l: Loaded, by: string): Promise<void> {
    await l.job.remove();
    await unindexDeadLetter(this.deps.redis, this.deps.keys, String(l.job.id));
    const previous = l.state;
    await recordAttempt(this.deps.redis, this.deps.keys.event(l.job.data.eventId), l.job.data.targetId, {
      state: 'dead',
      reason: `${previous?.reason ?? l.job.failedReason ?? 'dead'}; purged by ${by}`,
      ...(previous?.excerpt ? { excerpt: previous.excerpt } : {}),
    });
  }
}
