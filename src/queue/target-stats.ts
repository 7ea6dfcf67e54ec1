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

/** One attempt's outcome (`ok`: the target accepted it) and duration, counted in its minute and hour. */
export async function countAttempt(
  redis: RedisClient,
  keys: Keys,
  targetId: string,
  attempt: { at: number; ms?: number; ok: boolean },
): Promise<void> {
  const minute = keys.targetStats(targetId, 'm', Math.floor(attempt.at / MINUTE_MS));
  const hour = keys.targetStats(targetId, 'h', Math.floor(attempt.at / HOUR_MS));
  const outcome = attempt.ok ? 'ok' : 'fail';
  const m = redis.multi();
  for (const [key, keep] of [
    [minute, KEEP_MINUTES_MS],
    [hour, KEEP_HOURS_MS],
  ] as const) {
    m.hincrby(key, outcome, 1);
    if (attempt.ms !== undefined) m.hincrby(key, `b${latencyBucket(attempt.ms)}`, 1);
    m.pexpire(key, keep);
  }
  await m.exec();
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
