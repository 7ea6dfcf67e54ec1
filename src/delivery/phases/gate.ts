import { Worker } from 'bullmq';
import type { Evidence } from '../../queue/delivery-state.js';
import type { StoredEvent } from '../../queue/event-store.js';
import { circuitWaitMs } from '../circuit-decision.js';
import type { NewerDelivered } from '../ref-order.js';
import { type Attempt, ended, type JobOutcome, recordState } from './attempt.js';

/**
 * The gate phase's answer: the job ended here (an older push the route skips), or it may be sent; `superseded`:
 * it is an older push sent after a newer one, the evidence recorded with its outcome.
 */
export type Gated = { outcome: JobOutcome } | { superseded?: Evidence };

/**
 * Whether the delivery may be sent now: the circuit breaker shared by all workers and the shared rate limit put
 * the job back without using an attempt (BullMQ's RateLimitError); then the branch's order of pushes.
 */
export async function gate(
  attempt: Attempt,
  {
    event,
    coalescing,
    newer: checked,
  }: { event: StoredEvent; coalescing: boolean; newer?: NewerDelivered | null },
): Promise<Gated> {
  const { ctx, target, targetRuntime } = attempt;
  const held = circuitWaitMs(await targetRuntime.circuit.check());
  if (held !== undefined) {
    // Back to waiting without using an attempt; the queue's rate limit stops every worker fetching until then.
    await targetRuntime.queue.rateLimit(held);
    throw Worker.RateLimitError();
  }

  const wait = targetRuntime.sharedLimit ? await targetRuntime.sharedLimit.acquire() : 0;
  if (wait > 0) {
    await targetRuntime.queue.rateLimit(wait);
    throw Worker.RateLimitError();
  }

  // Without coalescing, an older push (a retry, a late arrival) sent after a newer one would leave the branch's
  // last build on an older commit: reported, and not sent when the route asks (skipSuperseded).
  if (attempt.manual || coalescing) return {};
  const newer = checked !== undefined ? checked : await ctx.order.newerDelivered(target.id, event);
  if (!newer) return {};
  const skip = ctx.order.skips(target.id, event);
  const superseded: Evidence = {
    rule: 'superseded',
    newerEvent: newer.eventId,
    newerHead: newer.head.slice(0, 12),
    action: skip ? 'skipped' : 'sent',
  };
  ctx.metrics.superseded.inc({ target: target.id, action: superseded.action as string });
  attempt.log.warn(
    { supersededBy: newer.eventId, action: superseded.action },
    'an older push after a newer one',
  );
  if (!skip) return { superseded };
  await recordState(attempt, 'coalesced', { supersededBy: newer.eventId, evidence: superseded });
  return { outcome: ended(attempt, { state: 'coalesced', supersededBy: newer.eventId }) };
}
