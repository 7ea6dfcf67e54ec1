import type { Keys } from './keys.js';
import type { RedisClient } from './redis-connection.js';

/**
 * Small per-target attempt aggregates for the console's targets page: per minute (kept two hours) and per hour
 * (kept a day and an hour), each a hash of `ok`, `fail` and latency-bucket counts. Percentiles are read from the
 * buckets, so they are "at most this bucket's bound", which is what an ops page needs.
 */
export const LATENCY_BOUNDS_MS = [25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000] as const;

const MINUTE_MS = 60_000;
const HOUR_MS = 3_600_000;
const KEEP_MINUTES_MS = 2 * HOUR_MS;
const KEEP_HOURS_MS = 25 * HOUR_MS;

export function latencyBucket(ms: number): number {
  const i = LATENCY_BOUNDS_MS.findIndex((bound) => ms <= bound);
  return i < 0 ? LATENCY_BOUNDS_MS.length : i;
}

/** How often a process writes the attempts it counted: the targets page is at most this much behind. */
const FLUSH_EVERY_MS = 1000;

/**
 * Counts attempts in memory and adds them to the minute and hour hashes once a second: the targets page is
 * an ops aggregate, and a MULTI of six writes per delivery cost more CPU than the rest of settling it (the
 * e2e bench's profile). A crash loses at most the last second's counts; a failed write keeps them for the
 * next flush.
 */
export class AttemptCounter {
  /** Per stats key: how long it is kept, and the increments per field not written yet. */
  private pending = new Map<string, { keep: number; fields: Map<string, number> }>();
  private readonly timer: NodeJS.Timeout;
  private flushing: Promise<void> | undefined;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    flushEveryMs = FLUSH_EVERY_MS,
  ) {
    this.timer = setInterval(() => void this.flush(), flushEveryMs);
    this.timer.unref();
  }

  /** One attempt's outcome (`ok`: the target accepted it) and duration, counted in its minute and hour. */
  count(targetId: string, attempt: { at: number; ms?: number; ok: boolean }): void {
    const outcome = attempt.ok ? 'ok' : 'fail';
    const bucket = attempt.ms === undefined ? undefined : `b${latencyBucket(attempt.ms)}`;
    for (const [key, keep] of [
      [this.keys.targetStats(targetId, 'm', Math.floor(attempt.at / MINUTE_MS)), KEEP_MINUTES_MS],
      [this.keys.targetStats(targetId, 'h', Math.floor(attempt.at / HOUR_MS)), KEEP_HOURS_MS],
    ] as const) {
      this.add(key, keep, outcome, 1);
      if (bucket) this.add(key, keep, bucket, 1);
    }
  }

  /** Writes what was counted: per key one MULTI (its increments and expiry), keys in parallel. */
  flush(): Promise<void> {
    if (this.flushing || this.pending.size === 0) return this.flushing ?? Promise.resolve();
    const batch = this.pending;
    this.pending = new Map();
    this.flushing = Promise.all(
      [...batch].map(async ([key, { keep, fields }]) => {
        const multi = this.redis.multi();
        for (const [field, by] of fields) multi.hincrby(key, field, by);
        multi.pexpire(key, keep);
        try {
          await multi.exec();
        } catch {
          for (const [field, by] of fields) this.add(key, keep, field, by);
        }
      }),
    )
      .then(() => undefined)
      .finally(() => {
        this.flushing = undefined;
      });
    return this.flushing;
  }

  /** Stops the timer and writes what is left (a clean shutdown loses no counts). */
  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flushing;
    await this.flush();
  }

  private add(key: string, keep: number, field: string, by: number): void {
    let entry = this.pending.get(key);
    if (!entry) {
      entry = { keep, fields: new Map() };
      this.pending.set(key, entry);
    }
    entry.fields.set(field, (entry.fields.get(field) ?? 0) + by);
  }
}

export interface AttemptSummary {
  attempts: number;
  successRate: number | null;
  /** Upper bound (ms) of the bucket holding the percentile; `null` without attempts, Infinity above the last. */
  p50Ms: number | null;
  p95Ms: number | null;
}

export function summarise(hashes: Record<string, string>[]): AttemptSummary {
  let ok = 0;
  let fail = 0;
  const buckets = new Array<number>(LATENCY_BOUNDS_MS.length + 1).fill(0);
  for (const h of hashes) {
    ok += Number(h.ok ?? 0);
    fail += Number(h.fail ?? 0);
    for (let i = 0; i < buckets.length; i++) buckets[i]! += Number(h[`b${i}`] ?? 0);
  }
  const timed = buckets.reduce((a, b) => a + b, 0);
  const percentile = (p: number): number | null => {
    if (timed === 0) return null;
    let seen = 0;
    for (let i = 0; i < buckets.length; i++) {
      seen += buckets[i]!;
      if (seen >= p * timed) return LATENCY_BOUNDS_MS[i] ?? Number.POSITIVE_INFINITY;
    }
    return Number.POSITIVE_INFINITY;
  };
  return {
    attempts: ok + fail,
    successRate: ok + fail === 0 ? null : ok / (ok + fail),
    p50Ms: percentile(0.5),
    p95Ms: percentile(0.95),
  };
}

/** The last hour (sixty minute buckets) and the last day (twenty-four hour buckets) of a target. */
export async function readAttemptSummaries(
  redis: RedisClient,
  keys: Keys,
  targetId: string,
  now = Date.now(),
): Promise<{ hour: AttemptSummary; day: AttemptSummary }> {
  const minute = Math.floor(now / MINUTE_MS);
  const hour = Math.floor(now / HOUR_MS);
  const p = redis.pipeline();
  for (let i = 0; i < 60; i++) p.hgetall(keys.targetStats(targetId, 'm', minute - i));
  for (let i = 0; i < 24; i++) p.hgetall(keys.targetStats(targetId, 'h', hour - i));
  const answers = ((await p.exec()) ?? []).map(([, v]) => (v ?? {}) as Record<string, string>);
  return { hour: summarise(answers.slice(0, 60)), day: summarise(answers.slice(60)) };
}
