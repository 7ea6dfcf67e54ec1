import type { RetryPolicy } from '../config/types.js';

/**
 * Delay before retry number `retry` (1 = the first retry). An explicit schedule is used as written (its last
 * entry repeats); otherwise exponential with full jitter (AWS's "full jitter": uniform in [0, cap]), which
 * spreads a burst of failures so that a recovering target is not hit by all of them at once.
 */
export function backoffDelay(policy: RetryPolicy, retry: number, random: () => number = Math.random): number {
  if (policy.schedule && policy.schedule.length > 0) {
    return policy.schedule[Math.min(Math.max(retry, 1), policy.schedule.length) - 1]!;
  }
  const cap = Math.min(policy.maxDelay, policy.delay * 2 ** Math.min(Math.max(retry - 1, 0), 40));
  return Math.floor(random() * cap);
}

/** `Retry-After` as delta-seconds or an HTTP date, in ms from `now`; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (!v) return undefined;
  const trimmed = v.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

/**
 * The delay actually used: a target's Retry-After wins over the computed backoff (it knows best when it will
 * be ready), clamped to `maxRetryAfterMs` so a hostile or buggy header cannot park a delivery for days.
 */
export function retryDelay(
  policy: RetryPolicy,
  retry: number,
  retryAfterMs?: number,
  random: () => number = Math.random,
): number {
  if (retryAfterMs !== undefined) return Math.min(retryAfterMs, policy.maxRetryAfter);
  return backoffDelay(policy, retry, random);
}
