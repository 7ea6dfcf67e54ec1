import { RelayError } from '../errors/index.js';
import { type AttemptSummary, readAttemptSummaries } from '../queue/target-stats.js';
import type { AdminDeps } from './admin-deps.js';

export interface TargetHealth {
  id: string;
  type: string;
  lastHour: AttemptSummary;
  lastDay: AttemptSummary;
  /** Deliveries not yet finished: waiting, delayed (retries), paused, active. */
  queued: { waiting: number; delayed: number; active: number; paused: number };
  oldestWaitingAt: string | null;
  circuit: { state: 'closed' | 'open'; openUntil?: string; consecutiveFailures: number };
  rateLimit: { max: number; durationMs: number } | null;
  concurrency: number;
  /** Paused by an operator (every shard's queue). */
  paused: boolean;
}

/** What the targets page shows per target, and pausing/resuming a target on every shard. */
export class Targets {
  constructor(private readonly deps: AdminDeps) {}

  private config(id: string) {
    const target = this.deps.config.targets.find((t) => t.id === id);
    if (!target) throw new RelayError('NOT_FOUND', `no such target: ${id}`);
    return target;
  }

  async health(id: string): Promise<TargetHealth> {
    const target = this.config(id);
    const queues = this.deps.queues.ofTarget(id);
    const [summaries, counts, oldest, circuit, paused] = await Promise.all([
      readAttemptSummaries(this.deps.redis, this.deps.keys, id),
      Promise.all(queues.map((q) => q.getJobCounts('wait', 'prioritized', 'delayed', 'active', 'paused'))),
      Promise.all(queues.map((q) => q.getJobs(['paused', 'wait', 'prioritized'], 0, 0, true))),
      this.deps.redis.hmget(this.deps.keys.circuit(id), 'openUntil', 'fails'),
      Promise.all(queues.map((q) => q.isPaused())),
    ]);
    const sum = (k: string) => counts.reduce((a, c) => a + (c[k] ?? 0), 0);
    const oldestTs = oldest
      .flat()
      .map((j) => j?.timestamp)
      .filter((t): t is number => typeof t === 'number')
      .sort((a, b) => a - b)[0];
    const openUntil = Number(circuit[0] ?? 0);
    return {
      id,
      type: target.type,
      lastHour: summaries.hour,
      lastDay: summaries.day,
      queued: {
        waiting: sum('wait') + sum('prioritized'),
        delayed: sum('delayed'),
        active: sum('active'),
        paused: sum('paused'),
      },
      oldestWaitingAt: oldestTs ? new Date(oldestTs).toISOString() : null,
      circuit:
        openUntil > Date.now()
          ? {
              state: 'open',
              openUntil: new Date(openUntil).toISOString(),
              consecutiveFailures: Number(circuit[1] ?? 0),
            }
          : { state: 'closed', consecutiveFailures: Number(circuit[1] ?? 0) },
      // The API keeps its unit in the name: clients read durationMs.
      rateLimit: target.rateLimit
        ? { max: target.rateLimit.max, durationMs: target.rateLimit.duration }
        : null,
      concurrency: target.concurrency,
      paused: paused.some(Boolean),
    };
  }

  all(): Promise<TargetHealth[]> {
    return Promise.all(this.deps.config.targets.map((t) => this.health(t.id)));
  }

  /**
   * BullMQ's queue pause on every shard: workers take no new job of the target, waiting and due retries stay in
   * the queue (nothing is dropped), a delivery already in flight finishes.
   */
  async pause(id: string): Promise<void> {
    this.config(id);
    await Promise.all(this.deps.queues.ofTarget(id).map((q) => q.pause()));
  }

  async resume(id: string): Promise<void> {
    this.config(id);
    await Promise.all(this.deps.queues.ofTarget(id).map((q) => q.resume()));
  }
}
