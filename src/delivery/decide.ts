import type { TargetConfig } from '../config/types.js';
import { RetryLater } from '../errors/index.js';
import { backoffDelay, retryDelay } from './backoff.js';
import type { Verdict } from './classify.js';
import type { TargetAnswer } from './http-client.js';
import { retryHintMs } from './retry-hints.js';

/*
 * What happens after an attempt, in one pure function. The rest of the retry machinery only carries its answer:
 * a retry's delay travels to BullMQ in RetryLater and comes back through the worker's backoff hook
 * (`retryDelayAfter`, the `hookrelay` backoff type of job-options.ts), and the attempt limit decide() reads is
 * the job's `attempts` option, set from the target's `retry.attempts`.
 */

/** What the send phase came back with. */
export type SendOutcome =
  /** A look-up showed there is nothing to send (the reason). */
  | { kind: 'nothing-to-send'; reason: string }
  /** The attempt's classified result, and the target's answer when there was one (none on a transport error). */
  | { kind: 'sent'; verdict: Verdict; answer?: Pick<TargetAnswer, 'status' | 'headers'> };

/** The facts of the attempt that the decision rests on. */
export interface AttemptFacts {
  /** BullMQ's count of this attempt, 1-based. */
  number: number;
  /** The job's attempt limit (the target's `retry.attempts`). */
  limit: number;
  /** An operator's replay or release: one try that never schedules retries of its own, sent however old. */
  manual: boolean;
  /** When the event was received (ms): automatic retries stop at the target's `retry.maxAge`. */
  receivedAt: number;
  now: number;
  /** The backoff's jitter (Math.random unless a test fixes it). */
  random?: () => number;
}

export type Decision =
  | { kind: 'delivered' }
  | { kind: 'retry'; delayMs: number; reason: string }
  | { kind: 'dead'; reason: string }
  | { kind: 'not-applicable'; reason: string };

/** An automatic delivery of an event older than the target's `retry.maxAge` (at `at`) is not sent any more. */
export function pastMaxAge(
  attempt: Pick<AttemptFacts, 'manual' | 'receivedAt'>,
  target: Pick<TargetConfig, 'retry'>,
  at: number,
): boolean {
  return !attempt.manual && at - attempt.receivedAt > target.retry.maxAge;
}

/**
 * Delivered, retried (after the target's Retry-After or rate-limit reset when it names one, else the policy's
 * backoff), dead (a permanent answer, an operator's one try, the attempt limit, or a retry that would land past
 * the maximum age) or not applicable (nothing to send).
 */
export function decide(
  outcome: SendOutcome,
  attempt: AttemptFacts,
  target: Pick<TargetConfig, 'type' | 'retry'>,
): Decision {
  if (outcome.kind === 'nothing-to-send') return { kind: 'not-applicable', reason: outcome.reason };
  const { verdict } = outcome;
  if (verdict.kind === 'delivered') return { kind: 'delivered' };
  if (verdict.kind === 'permanent' || attempt.manual) return { kind: 'dead', reason: verdict.reason };
  if (attempt.number >= attempt.limit) return { kind: 'dead', reason: 'max attempts' };
  const hintMs = outcome.answer ? retryHintMs(target.type, outcome.answer, attempt.now) : undefined;
  const delayMs = retryDelay(target.retry, attempt.number, hintMs, attempt.random);
  if (pastMaxAge(attempt, target, attempt.now + delayMs)) return { kind: 'dead', reason: 'max age' };
  return { kind: 'retry', delayMs, reason: verdict.reason };
}

/**
 * BullMQ's backoff hook: the delay decide() chose, carried by RetryLater; any other failure (Redis lost in the
 * middle of an attempt) waits the policy's backoff.
 */
export function retryDelayAfter(
  target: Pick<TargetConfig, 'retry'>,
  attemptsMade: number,
  err?: Error,
): number {
  return err instanceof RetryLater ? err.delayMs : backoffDelay(target.retry, attemptsMade);
}
