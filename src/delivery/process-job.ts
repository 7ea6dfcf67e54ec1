import type { Job } from 'bullmq';
import type { DeliveryJobData } from '../relay/job-types.js';
import { type DeliveryContext, type JobOutcome, startAttempt, type TargetRuntime } from './phases/attempt.js';
import { gate } from './phases/gate.js';
import { guard } from './phases/guard.js';
import { sendPhase } from './phases/send.js';
import { settle } from './phases/settle.js';

export type { DeliveryContext, JobOutcome, TargetRuntime } from './phases/attempt.js';

/**
 * One delivery attempt of an event to a target, in four phases (as Svix's worker separates preparing, the HTTP
 * call and handling its success or failure):
 * - guard: should it be delivered at all (the target's events, the loop guard, coalescing)?
 * - gate: may it be sent now (circuit breaker, shared rate limit, the branch's order of pushes)?
 * - send: the request(s), each answer classified;
 * - settle: decide() says delivered, retry, dead or not applicable, and the outcome is recorded.
 * A job that ends returns its outcome; a retry throws RetryLater (back with its delay), a dead letter
 * DeadLettered (BullMQ's failed set), a wait DelayedError or RateLimitError (no attempt used).
 */
export async function processJob(
  ctx: DeliveryContext,
  targetRuntime: TargetRuntime,
  job: Job<DeliveryJobData>,
  token?: string,
): Promise<JobOutcome> {
  const attempt = startAttempt(ctx, targetRuntime, job, token);
  const guarded = await guard(attempt);
  if ('outcome' in guarded) return guarded.outcome;
  const gated = await gate(attempt, guarded);
  if ('outcome' in gated) return gated.outcome;
  const sent = await sendPhase(attempt, guarded.event);
  return settle(attempt, guarded.event, sent, gated.superseded);
}
