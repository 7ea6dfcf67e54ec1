import { randomUUID } from 'node:crypto';
import type { Job } from 'bullmq';
import { RelayError } from '../errors.js';
import { type AttemptRecord, recordAttempt, type TargetState } from '../queue/delivery-state.js';
import type { DeliveryJobData } from '../queue/job-types.js';
import type { AdminDeps } from './admin-deps.js';
import { type AttemptView, attemptViews, type EventMeta, readEventParts } from './event-view.js';
import { type Filter, globMatch, matchesStatus, statusClass } from './filters.js';

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

const PAGE = 200;
// `<eventId>.<targetId>`, or `<eventId>.<targetId>.release-<n>` for a released suppressed delivery that failed.
const DEAD_ID = /^[A-Za-z0-9-]{1,64}\.[A-Za-z0-9_-]{1,64}(?:\.[A-Za-z0-9_-]{1,64})?$/;

/** The last attempt; when the worker left no record, the status read back from BullMQ's failedReason. */
function lastAttempt(l: Loaded): Pick<AttemptRecord, 'status' | 'error'> | undefined {
  const a = l.state?.attempts.at(-1);
  if (a) return a;
  const reason = l.job.failedReason ?? '';
  const m = /\b([1-5]\d\d)\b/.exec(reason);
  if (m) return { status: Number(m[1]) };
  return reason ? { error: reason } : undefined;
}

function summary(l: Loaded): DeadLetter {
  const { job, meta, state } = l;
  const last = lastAttempt(l);
  return {
    id: String(job.id),
    eventId: job.data.e,
    target: job.data.t,
    ...(meta
      ? {
          source: meta.sourceId,
          eventKey: meta.envelope.eventKey,
          repository: meta.envelope.repository,
          receivedAt: new Date(meta.receivedAt).toISOString(),
        }
      : {}),
    ...(job.finishedOn ? { failedAt: new Date(job.finishedOn).toISOString() } : {}),
    attemptsMade: job.attemptsMade,
    ...(last?.status !== undefined ? { status: last.status } : {}),
    ...(statusClass(last) ? { statusClass: statusClass(last) } : {}),
    ...(state?.reason || job.failedReason ? { reason: state?.reason ?? job.failedReason } : {}),
    ...(job.data.trigger ? { trigger: job.data.trigger } : {}),
    expired: meta === null,
  };
}

function detail(l: Loaded): DeadLetterDetail {
  return {
    ...summary(l),
    idempotencyKey: l.job.data.k,
    ...(l.state?.excerpt ? { excerpt: l.state.excerpt } : {}),
    attempts: attemptViews(l.state),
  };
}

function matches(l: Loaded, f: Filter): boolean {
  const { meta } = l;
  if (f.source && meta?.sourceId !== f.source) return false;
  if (f.repo && !globMatch(f.repo, meta?.envelope.repository)) return false;
  if (f.eventKey && !globMatch(f.eventKey, meta?.envelope.eventKey)) return false;
  if (f.since !== undefined && !(meta && meta.receivedAt >= f.since)) return false;
  if (f.until !== undefined && !(meta && meta.receivedAt < f.until)) return false;
  if (f.status && !matchesStatus(f.status, lastAttempt(l))) return false;
  if (f.reason && !(l.state?.reason ?? l.job.failedReason ?? '').includes(f.reason)) return false;
  return true;
}

export class DeadLetters {
  constructor(private readonly deps: AdminDeps) {}

  private async load(job: Job<DeliveryJobData>): Promise<Loaded> {
    const { meta, states } = await readEventParts(this.deps, job.data.e, [job.data.t]);
    return { job, meta, state: states.get(job.data.t) ?? null };
  }

  /** Every dead letter matching the filter, newest failure first; `shard`: one shard's queue only. */
  async find(f: Filter, shard?: number): Promise<Loaded[]> {
    const out: Loaded[] = [];
    const targets = f.target ? [f.target] : this.deps.queues.targetIds;
    const queues =
      shard === undefined
        ? targets.flatMap((t) => this.deps.queues.ofTarget(t))
        : targets.flatMap((t) => this.deps.queues.get(t, shard) ?? []);
    for (const queue of queues) {
      for (let start = 0; ; start += PAGE) {
        const jobs = (await queue.getFailed(start, start + PAGE - 1)) as Job<DeliveryJobData>[];
        const loaded = await Promise.all(jobs.filter((j) => j?.data?.e).map((j) => this.load(j)));
        out.push(...loaded.filter((l) => matches(l, f)));
        if (jobs.length < PAGE) break;
      }
    }
    return out.sort(
      (a, b) =>
        (b.job.finishedOn ?? 0) - (a.job.finishedOn ?? 0) || String(b.job.id).localeCompare(String(a.job.id)),
    );
  }

  async list(
    f: Filter,
    limit: number,
    after?: { f: number; id: string },
  ): Promise<{ deadLetters: DeadLetter[]; total: number; next?: { f: number; id: string } }> {
    const all = await this.find(f);
    let from = 0;
    if (after) {
      from = all.findIndex(
        (l) =>
          (l.job.finishedOn ?? 0) < after.f ||
          ((l.job.finishedOn ?? 0) === after.f && String(l.job.id) < after.id),
      );
      if (from < 0) from = all.length;
    }
    const page = all.slice(from, from + limit);
    const lastJob = page.at(-1)?.job;
    const more = from + limit < all.length;
    return {
      deadLetters: page.map(summary),
      total: all.length,
      ...(more && lastJob ? { next: { f: lastJob.finishedOn ?? 0, id: String(lastJob.id) } } : {}),
    };
  }

  /** The failed job behind a dead-letter id (`<eventId>.<targetId>`), or a 404/409. */
  async get(id: string): Promise<Loaded> {
    if (!DEAD_ID.test(id)) throw new RelayError('NOT_FOUND', 'no such dead letter');
    const [eventId, target] = id.split('.') as [string, string];
    const queue = this.deps.queues.forEvent(target, eventId);
    const job = queue ? ((await queue.getJob(id)) as Job<DeliveryJobData> | undefined) : undefined;
    if (!job) throw new RelayError('NOT_FOUND', 'no such dead letter');
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
    const k = fresh ? `${job.data.e}.${job.data.t}.${randomUUID()}` : job.data.k;
    // A replay skips the loop guard: its inputs (`g`) go, the rest of the delivery's data stays.
    const { g: _guard, ...data } = job.data;
    await job.updateData({ ...data, k, trigger: 'replay' });
    try {
      await job.retry('failed');
    } catch (err) {
      throw new RelayError('CONFLICT', 'the delivery left the dead letters meanwhile', { cause: err });
    }
    return { id: String(job.id), idempotencyKey: k };
  }

  /** Remove the failed job; the event keeps a `dead` state that says who purged it. */
  async purge(l: Loaded, by: string): Promise<void> {
    await l.job.remove();
    const previous = l.state;
    await recordAttempt(this.deps.redis, this.deps.keys.event(l.job.data.e), l.job.data.t, {
      state: 'dead',
      reason: `${previous?.reason ?? l.job.failedReason ?? 'dead'}; purged by ${by}`,
      ...(previous?.excerpt ? { excerpt: previous.excerpt } : {}),
    });
  }
}
