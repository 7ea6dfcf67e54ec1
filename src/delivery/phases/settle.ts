import { DeadLettered, RetryLater } from '../../errors/index.js';
import type { AttemptRecord, Evidence } from '../../queue/delivery-state.js';
import type { StoredEvent } from '../../queue/event-store.js';

import { decide } from '../decide.js';
import { recordDelivered } from '../record-delivered.js';
import { type Attempt, ended, type JobOutcome, recordState } from './attempt.js';
import type { Sent } from './send.js';

/**
 * What the attempt comes to: the circuit breaker told what the target did, decide() applied, and the outcome
 * recorded on the event. Returns for a finished job; throws RetryLater (BullMQ retries after its delay) or
 * DeadLettered (BullMQ fails the job: the dead letter).
 */
export async function settle(
  attempt: Attempt,
  event: StoredEvent,
  sent: Sent,
  superseded: Evidence | undefined,
): Promise<JobOutcome> {
  const { ctx, target, targetRuntime, job } = attempt;
  if (sent.kind === 'nothing-to-send') return nothingToSend(attempt, sent.reason);
  const { verdict, record } = sent;
  // For the console's targets page, written in the background (an ops aggregate must not slow the delivery).
  ctx.attemptCounter.count(target.id, {
    at: record.at,
    ...(record.ms !== undefined ? { ms: record.ms } : {}),
    ok: verdict.kind === 'delivered',
  });

  if (verdict.kind === 'retry') {
    const opened = await targetRuntime.circuit.failure();
    if (opened > 0) {
      await targetRuntime.queue.rateLimit(opened);
      attempt.log.warn({ cooldownMs: opened }, 'circuit opened: target paused');
    }
  } else if (verdict.kind === 'delivered' || sent.answer) {
    // The target answered: it is up, whatever it thought of this request.
    await targetRuntime.circuit.success();
  }

  const decision = decide(
    sent,
    {
      number: job.attemptsMade + 1,
      limit: job.opts.attempts ?? 1,
      manual: attempt.manual,
      receivedAt: event.receivedAt,
      now: Date.now(),
    },
    target,
  );
  switch (decision.kind) {
    case 'delivered':
      // The state record, the branch's delivered head and what the target built (the causal chain rule), in
      // one call.
      await recordDelivered(
        ctx,
        target.id,
        event,
        { state: 'delivered', attempt: record, ...(superseded ? { evidence: superseded } : {}) },
        record.at,
      );
      attempt.log.info({ status: record.status, ms: record.ms }, 'delivered');
      return ended(attempt, { state: 'delivered', ...(record.status ? { status: record.status } : {}) });
    case 'retry':
      await recordState(attempt, 'retrying', { attempt: record, reason: decision.reason });
      ctx.metrics.deliveries.inc({ target: target.id, outcome: 'retry' });
      attempt.log.info({ reason: decision.reason, delayMs: decision.delayMs }, 'delivery will be retried');
      throw new RetryLater(decision.reason, decision.delayMs);
    case 'dead':
      return deadLetter(attempt, {
        reason: decision.reason,
        record,
        ...(sent.excerpt ? { excerpt: sent.excerpt } : {}),
      });
    case 'not-applicable':
      return nothingToSend(attempt, decision.reason);
  }
}

/** The event carries nothing this target could act on: the delivery ends `not-applicable`. */
async function nothingToSend(attempt: Attempt, reason: string): Promise<JobOutcome> {
  await recordState(attempt, 'not-applicable', { reason });
  attempt.log.info({ reason }, 'nothing to deliver');
  return ended(attempt, { state: 'not-applicable', reason });
}

/** The processor's dead letter: written, counted and logged, then BullMQ fails the job (DeadLettered). */
export async function deadLetter(
  attempt: Attempt,
  letter: { reason: string; record?: AttemptRecord; excerpt?: string },
): Promise<never> {
  const { ctx, target, job } = attempt;
  await ctx.deadLetters.write({
    eventId: job.data.eventId,
    targetId: target.id,
    jobId: String(job.id),
    reason: letter.reason,
    ...(letter.record ? { attempt: letter.record } : {}),
    ...(letter.excerpt ? { excerpt: letter.excerpt } : {}),
  });
  ctx.metrics.deliveries.inc({ target: target.id, outcome: 'dead' });
  attempt.log.warn(
    { reason: letter.reason, status: letter.record?.status, error: letter.record?.error },
    'delivery dead-lettered',
  );
  throw new DeadLettered(letter.reason);
}
