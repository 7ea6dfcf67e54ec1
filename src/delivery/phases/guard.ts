import { DelayedError, UnrecoverableError } from 'bullmq';
import type { Evidence } from '../../queue/delivery-state.js';
import type { StoredEvent } from '../../queue/event-store.js';
import { notApplicable } from '../applicable.js';
import { pastMaxAge } from '../decide.js';
import type { GuardResult, GuardVerdict } from '../loop-guard.js';
import type { NewerDelivered } from '../ref-order.js';
import { type Attempt, ended, type JobOutcome, recordState } from './attempt.js';
import { deadLetter } from './settle.js';

/**
 * The guard phase's answer: the job ended here (not applicable, suppressed, coalesced), or the event to send and
 * whether a route coalesces it (then the newest push of its branch).
 */
export type Guarded =
  | { outcome: JobOutcome }
  | {
      event: StoredEvent;
      coalescing: boolean;
      /** The branch's order, when checked with the guard's read (see gate): a newer push delivered, or null. */
      newer?: NewerDelivered | null;
    };

/**
 * Whether the delivery should happen at all: the target's events filter, the event still stored and not past
 * its maximum age, the loop guard, and coalescing into a newer push. Throws DelayedError while a merged pull
 * request waits for its push, UnrecoverableError for an expired event and DeadLettered past the maximum age.
 */
export async function guard(attempt: Attempt): Promise<Guarded> {
  const { ctx, target, job, manual } = attempt;
  const data = job.data;

  // Before anything counts the event for this target (the loop guard's rates, merge claims): the job's name is
  // the event key, so an event the target does not take ends here without reading it.
  const inapplicable = notApplicable(target, job.name);
  if (inapplicable) {
    await recordState(attempt, 'not-applicable', { reason: inapplicable });
    attempt.log.info({ reason: inapplicable }, 'not applicable to the target');
    return { outcome: ended(attempt, { state: 'not-applicable', reason: inapplicable }) };
  }

  // The loop guard looks once per delivery: a retry already passed it (its checks are idempotent per event
  // anyway). The event's read and the guard are one Redis call; not past the maximum age, though, so that a
  // delivery about to be dead-lettered counts nowhere.
  const firstLook = attempt.trigger === 'bitbucket' && job.attemptsMade === 0;
  const loopGuard = firstLook ? data.loopGuard : undefined;
  // The routed event as this process's fan-out wrote it, on whichever path reads it (see local-handoff.ts).
  const handed = firstLook ? ctx.routedHandoff.take(data.eventId) : undefined;
  let event: StoredEvent | null;
  // The verdict the combined read returned; undefined when the event was read on its own.
  let looked: GuardResult | undefined;
  let newer: NewerDelivered | null | undefined;
  // A push whose message must be read from Bitbucket first is guarded after that (see headMessage).
  const lookup = loopGuard?.lookup;
  if (loopGuard && !lookup && Date.now() - job.timestamp <= target.retry.maxAge) {
    let verdict: GuardVerdict;
    let evidence: Evidence | undefined;
    // A push to one branch has its order checked in the same read; the gate uses the answer unless the job
    // coalesces.
    const order = loopGuard.branch
      ? ctx.order.check(
          target.id,
          { sourceId: loopGuard.source, repository: loopGuard.repository, eventId: data.eventId },
          loopGuard.branch,
        )
      : undefined;
    ({ event, verdict, evidence, newer } = await ctx.guard.readAndCheck(
      ctx.store,
      loopGuard,
      data.eventId,
      target.id,
      order,
      handed,
    ));
    looked = { verdict, ...(evidence ? { evidence } : {}) };
  } else {
    event = handed ?? (await ctx.store.read(data.eventId));
  }
  if (!event) {
    attempt.log.warn('event expired before delivery');
    throw new UnrecoverableError('event expired');
  }

  // An operator's replay or release is sent however old the event is; automatic retries stop at max age.
  if (pastMaxAge({ manual, receivedAt: event.receivedAt }, target, Date.now())) {
    return deadLetter(attempt, { reason: 'max age' });
  }

  if (loopGuard) {
    const { verdict, evidence } =
      looked ??
      (await ctx.guard.checkGuard(loopGuard, event, target.id, await headMessage(attempt, event, lookup)));
    if (
      verdict === 'wait-for-push' &&
      attempt.token &&
      Date.now() - event.receivedAt < ctx.config.loop.collapseWait
    ) {
      // The merge's push usually follows within seconds: look again shortly (not an attempt, no retry used).
      await job.moveToDelayed(Date.now() + 1000, attempt.token);
      throw new DelayedError();
    }
    const reason = verdict === 'wait-for-push' ? null : verdict;
    if (reason) {
      // Independent writes, sent together (on a cluster they go to different primaries: neither needs the other).
      await Promise.all([
        recordState(attempt, 'suppressed', { reason, ...(evidence ? { evidence } : {}) }),
        ctx.redis.zadd(ctx.keys.suppressed, Date.now(), `${event.id}.${target.id}`),
      ]);
      ctx.metrics.loopSuppressed.inc({ target: target.id, reason });
      attempt.log.info({ reason, evidence }, 'delivery suppressed by the loop guard');
      return { outcome: ended(attempt, { state: 'suppressed', reason }) };
    }
  }

  const coalescing = !manual && ctx.coalescer.applies(target.id, event.sourceId, event.envelope);
  if (coalescing) {
    const newer = await ctx.coalescer.supersededBy(target.id, event);
    if (newer) {
      await recordState(attempt, 'coalesced', { supersededBy: newer });
      attempt.log.info({ supersededBy: newer }, 'delivery coalesced into a newer push');
      return { outcome: ended(attempt, { state: 'coalesced', supersededBy: newer }) };
    }
  }
  return { event, coalescing, ...(newer !== undefined ? { newer } : {}) };
}

/** The head commit's message read through the source's REST API; undefined (and logged) when that fails. */
async function headMessage(
  attempt: Attempt,
  event: StoredEvent,
  commitId: string | undefined,
): Promise<string | undefined> {
  if (commitId === undefined) return undefined;
  const { ctx } = attempt;
  try {
    const message = await ctx.commitMessages.lookUp(
      event.sourceId,
      event.envelope.repository ?? '',
      commitId,
    );
    ctx.metrics.commitMessageLookups.inc({ source: event.sourceId, outcome: 'fetched' });
    return message;
  } catch (err) {
    ctx.metrics.commitMessageLookups.inc({ source: event.sourceId, outcome: 'failed' });
    attempt.log.warn({ err: (err as Error).message }, 'commit message lookup failed: guarded without it');
    return undefined;
  }
}
