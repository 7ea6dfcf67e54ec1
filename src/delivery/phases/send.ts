import type { AttemptRecord } from '../../queue/delivery-state.js';
import { readTargetState } from '../../queue/delivery-state.js';
import type { StoredEvent } from '../../queue/event-store.js';
import { startDeliverySpan } from '../../tracing/delivery-span.js';
import { applyAuth, TokenError } from '../auth.js';
import { buildRequest, type LookupFirst, type OutgoingRequest } from '../build-request.js';
import { classifyError, classifyStatus, type Verdict } from '../classify.js';
import { excerpt, type TargetAnswer } from '../http-client.js';
import { recordedHeaders } from '../recorded-headers.js';
import { standardWebhookHeaders, webhookId } from '../signing.js';
import type { Attempt, DeliveryContext, TargetRuntime } from './attempt.js';

/** The send phase's answer: nothing to send (the reason), or the attempt made and what the target said. */
export type Sent =
  | { kind: 'nothing-to-send'; reason: string }
  | {
      kind: 'sent';
      verdict: Verdict;
      answer?: TargetAnswer;
      /** The attempt as the event's history keeps it, credentials masked. */
      record: AttemptRecord;
      /** The start of the answer's body, secrets blanked. */
      excerpt?: string;
    };

interface Exchange {
  answer?: TargetAnswer;
  error?: string;
  verdict: Verdict;
  ms: number;
  at: number;
  token?: string;
  /** A look-up showed there is nothing to send (the reason): the delivery ends `not-applicable`. */
  skipped?: string;
  /** The headers of the last request that went out (or was about to, when it failed), as sent. */
  sentHeaders?: Record<string, string>;
}

/**
 * The request (or requests) of the attempt, built for the target, traced, signed and authenticated, and sent;
 * each answer classified. Nothing here decides what happens next: that is settle's.
 */
export async function sendPhase(attempt: Attempt, event: StoredEvent): Promise<Sent> {
  const { ctx, target, targetRuntime, job } = attempt;
  const number = await attemptNumber(attempt);
  const relayId = await ctx.relayId.get();
  const built = buildRequest({ target, event, job: job.data, attempt: number, relayId });
  // The event carries nothing this target could act on (a deleted branch; a branch Bamboo has no plan branch for).
  if ('skip' in built) return { kind: 'nothing-to-send', reason: built.skip };

  const span = startDeliverySpan(event, target.id, number);
  const traced: Record<string, string> = span ? { traceparent: span.traceparent } : {};
  // Any attempt after the first may follow one that did its work without the relay hearing so (a timeout, a
  // reset connection, or some builds of several created): requests that are not idempotent look first.
  const prepared = Array.isArray(built) || 'lookup' in built ? built : [built];
  const exchange = await send(
    ctx,
    targetRuntime,
    prepared,
    event,
    job.data.idempotencyKey,
    number > 1,
    traced,
  );
  span?.end(exchange.skipped ? 'not-applicable' : exchange.verdict.kind, exchange.answer?.status);
  if (exchange.skipped) return { kind: 'nothing-to-send', reason: exchange.skipped };
  ctx.metrics.attemptDuration.observe({ target: target.id }, exchange.ms / 1000);
  const secrets = exchange.token ? [...targetRuntime.secrets, exchange.token] : targetRuntime.secrets;
  const record: AttemptRecord = {
    number,
    at: exchange.at,
    ms: exchange.ms,
    ...(exchange.answer ? { status: exchange.answer.status } : {}),
    ...(exchange.error ? { error: exchange.error } : {}),
    trigger: attempt.trigger,
    ...(exchange.sentHeaders ? { requestHeaders: recordedHeaders(exchange.sentHeaders, secrets) } : {}),
    ...(exchange.answer ? { responseHeaders: recordedHeaders(exchange.answer.headers, secrets) } : {}),
  };
  const bodyExcerpt = exchange.answer?.bodyStart ? excerpt(exchange.answer.bodyStart, secrets) : undefined;
  return {
    kind: 'sent',
    verdict: exchange.verdict,
    ...(exchange.answer ? { answer: exchange.answer } : {}),
    record,
    ...(bodyExcerpt ? { excerpt: bodyExcerpt } : {}),
  };
}

/**
 * Attempt numbers keep counting across an operator's replays (BullMQ's own counter may have been reset), so
 * the history reads 1, 2, 3 … in order. Automatic attempts use BullMQ's counter and need no extra read.
 */
async function attemptNumber({ ctx, job, manual, eventKey, target }: Attempt): Promise<number> {
  const own = job.attemptsMade + 1;
  if (!manual) return own;
  const prev = await readTargetState(ctx.redis, eventKey, target.id);
  const last = prev?.attempts.at(-1)?.number ?? 0;
  return Math.max(own, last + 1);
}

/**
 * The delivery's requests in order, each with its own signature and auth; the first answer that is not a success
 * decides the attempt (the next attempt starts over, skipping what its look-ups find done). A LookupFirst asks the
 * target first what to send (or whether there is anything). `mayRepeat`: an earlier attempt may have done some
 * of the work, so a request with an `alreadyDone` look-up sends that first. `traced`: headers every exchange
 * carries (the delivery span's traceparent).
 */
async function send(
  ctx: DeliveryContext,
  targetRuntime: TargetRuntime,
  prepared: OutgoingRequest[] | LookupFirst,
  event: StoredEvent,
  key: string,
  mayRepeat: boolean,
  traced: Record<string, string>,
): Promise<Exchange> {
  const { target } = targetRuntime;
  const at = Date.now();
  let token: string | undefined;
  let last: TargetAnswer | undefined;
  // Whether a request that may start a build has gone out: a look-up that fails started nothing.
  let sending = false;
  const sent: { headers?: Record<string, string> } = {};
  const ended = (answer: TargetAnswer, verdict: Verdict): Exchange => ({
    answer,
    verdict,
    ms: Date.now() - at,
    at,
    ...(token ? { token } : {}),
    ...(sent.headers ? { sentHeaders: sent.headers } : {}),
  });
  try {
    let requests: OutgoingRequest[];
    if ('lookup' in prepared) {
      const look = await call(ctx, targetRuntime, prepared.lookup, key, traced, sent);
      token = look.token;
      const next = prepared.afterLookup(look.answer.status, look.answer.body ?? '');
      if (next === undefined) {
        return ended(look.answer, classifyStatus(target.type, look.answer.status, look.answer));
      }
      if ('skip' in next)
        return { skipped: next.skip, verdict: { kind: 'delivered' }, ms: Date.now() - at, at };
      if ('refuse' in next) {
        return ended({ ...look.answer, bodyStart: '' }, { kind: 'permanent', reason: next.refuse });
      }
      requests = [next];
    } else {
      requests = prepared;
    }
    for (const built of requests) {
      if (mayRepeat && built.alreadyDone) {
        sending = false;
        const look = await call(ctx, targetRuntime, built.alreadyDone.request, key, traced, sent, built.part);
        token = look.token;
        const verdict = classifyStatus(target.type, look.answer.status, look.answer);
        if (verdict.kind !== 'delivered') {
          return ended(look.answer, {
            ...verdict,
            reason: `${verdict.reason} (looking for an earlier attempt's work)`,
          });
        }
        if (built.alreadyDone.found(look.answer.body ?? '')) {
          last = look.answer;
          continue;
        }
      }
      sending = true;
      const exchanged = await call(ctx, targetRuntime, built, key, traced, sent, built.part);
      token = exchanged.token;
      last = exchanged.answer;
      const verdict = classifyStatus(target.type, exchanged.answer.status, exchanged.answer);
      if (verdict.kind !== 'delivered') return ended(exchanged.answer, verdict);
    }
    return {
      ...(last ? { answer: last } : {}),
      verdict: { kind: 'delivered' },
      ms: Date.now() - at,
      at,
      ...(token ? { token } : {}),
      ...(sent.headers ? { sentHeaders: sent.headers } : {}),
    };
  } catch (err) {
    const ms = Date.now() - at;
    if (err instanceof TokenError) {
      const permanent =
        err.status !== undefined && err.status >= 400 && err.status < 500 && err.status !== 429;
      const reason = `oauth2: ${err.message}`;
      return { error: reason, verdict: { kind: permanent ? 'permanent' : 'retry', reason }, ms, at };
    }
    const verdict = classifyError(target.type, err, sending);
    ctx.log.debug({ target: target.id, eventId: event.id, err: verdict.reason }, 'request failed');
    return { error: verdict.reason, verdict, ms, at, ...(sent.headers ? { sentHeaders: sent.headers } : {}) };
  }
}

/**
 * One HTTP exchange with the target: traced, signed (with a signingSecret) and authenticated, a 401 retried once
 * with a fresh OAuth2 token.
 */
async function call(
  ctx: DeliveryContext,
  targetRuntime: TargetRuntime,
  built: OutgoingRequest,
  key: string,
  traced: Record<string, string>,
  sent: { headers?: Record<string, string> },
  part?: string,
): Promise<{ answer: TargetAnswer; token?: string }> {
  const { target } = targetRuntime;
  const signature = target.signingSecret
    ? standardWebhookHeaders(target.signingSecret, webhookId(key, part), built.body)
    : {};
  for (let tries = 0; ; tries++) {
    const auth = await applyAuth(target, ctx.tokens);
    const token = auth.headers.authorization?.startsWith('Bearer ')
      ? auth.headers.authorization.slice(7)
      : undefined;
    const headers = { ...built.headers, ...traced, ...signature, ...auth.headers };
    sent.headers = headers;
    const answer = await targetRuntime.client.send({ ...built, headers }, auth.query);
    // An identity-aware proxy refused the cached token: fetch a fresh one and try once more right away.
    if (answer.status === 401 && target.auth?.type === 'oauth2' && tries === 0) {
      ctx.tokens.invalidate(target.id, token);
      continue;
    }
    return { answer, ...(token ? { token } : {}) };
  }
}
