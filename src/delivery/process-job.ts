import { DelayedError, type Job, type Queue, UnrecoverableError, Worker } from 'bullmq';
import type { LimitFunction } from 'p-limit';
import type { CommitMessages } from '../bitbucket-api/commit-message.js';
import type { Config, TargetConfig } from '../config/types.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { indexDeadLetter } from '../queue/dead-letter-index.js';
import {
  type AttemptRecord,
  type DeliveryState,
  type Evidence,
  readTargetState,
  recordAttempt,
} from '../queue/delivery-state.js';
import type { EventStore, StoredEvent } from '../queue/event-store.js';
import type { DeliveryJobData } from '../queue/job-types.js';
import type { Keys } from '../queue/keys.js';
import type { RedisClient } from '../queue/redis-connection.js';
import type { RelayIdentity } from '../queue/relay-id.js';
import { countAttempt } from '../queue/target-stats.js';
import { startDeliverySpan } from '../tracing/delivery-span.js';
import { notApplicable } from './applicable.js';
import { applyAuth, type TokenCache, TokenError } from './auth.js';
import { retryDelay } from './backoff.js';
import { buildRequest, type LookupFirst, type OutgoingRequest } from './build-request.js';
import type { CircuitBreaker } from './circuit-breaker.js';
import { classifyError, classifyStatus, type Verdict } from './classify.js';
import type { Coalescer } from './coalesce.js';
import { RetryLater } from './errors.js';
import { excerpt, type TargetAnswer, type TargetClient } from './http-client.js';
import type { GuardResult, GuardVerdict, LoopGuard } from './loop-guard.js';
import { recordedHeaders } from './recorded-headers.js';
import type { RefOrder } from './ref-order.js';
import { retryHintMs } from './retry-hints.js';
import type { SharedRateLimit } from './shared-rate-limit.js';
import { standardWebhookHeaders, webhookId } from './signing.js';

/** What the workers of one process share. */
export interface DeliveryContext {
  config: Config;
  keys: Keys;
  /** The workers' connection: retries forever instead of failing an attempt on a Redis blip. */
  redis: RedisClient;
  store: EventStore;
  log: Logger;
  metrics: Metrics;
  tokens: TokenCache;
  guard: LoopGuard;
  coalescer: Coalescer;
  order: RefOrder;
  commitMessages: CommitMessages;
  relayId: RelayIdentity;
}

/** One target's pieces: its config, connection pool, breaker and queue (for the breaker's rate limit). */
export interface TargetRuntime {
  target: TargetConfig;
  client: TargetClient;
  circuit: CircuitBreaker;
  queue: Queue;
  secrets: string[];
  /**
   * Jobs of the target being processed in this process, at most `concurrency`: on a cluster the target's
   * shard queues each have a BullMQ worker, and their concurrency would otherwise add up.
   */
  slots: LimitFunction;
  /** The target's rate limit shared by its shard queues (cluster only; BullMQ's limiter otherwise). */
  sharedLimit?: SharedRateLimit;
}

export type JobOutcome =
  | { state: 'delivered'; status?: number }
  | { state: 'suppressed'; reason: string }
  | { state: 'coalesced'; supersededBy: string }
  | { state: 'not-applicable'; reason: string };

type LogFn = (obj: object | string, msg?: string) => void;

/**
 * The job's fields bound per call: a pino child per job serialises its bindings up front, a cost every job paid
 * for what is usually one log line (measured with the e2e bench's CPU profile).
 */
function jobLog(log: Logger, bound: object): { info: LogFn; warn: LogFn } {
  const at =
    (level: 'info' | 'warn'): LogFn =>
    (obj, msg) => {
      if (!log.isLevelEnabled(level)) return;
      if (typeof obj === 'string') log[level](bound, obj);
      else log[level]({ ...bound, ...obj }, msg);
    };
  return { info: at('info'), warn: at('warn') };
}

/** Marks an error whose dead letter the processor has already recorded. */
function recorded<E extends Error>(err: E): E {
  (err as E & { hrRecorded?: boolean }).hrRecorded = true;
  return err;
}

export function isRecorded(err: unknown): boolean {
  return (err as { hrRecorded?: boolean } | undefined)?.hrRecorded === true;
}

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
 * One delivery attempt of an event to a target: the loop guard, coalescing and the circuit breaker first,
 * then the request, its classification, the state record the admin API reads, and the BullMQ outcome (return =
 * done, RetryLater = back with backoff, UnrecoverableError = dead letter in the failed set).
 */
export async function processJob(
  ctx: DeliveryContext,
  tr: TargetRuntime,
  job: Job<DeliveryJobData>,
  token?: string,
): Promise<JobOutcome> {
  const { target } = tr;
  const data = job.data;
  const trigger = data.trigger ?? 'bitbucket';
  const manual = trigger !== 'bitbucket';
  const eventKey = ctx.keys.event(data.e);
  const log = jobLog(ctx.log, { target: target.id, eventId: data.e, attempt: job.attemptsMade + 1, trigger });

  // Before anything counts the event for this target (the loop guard's rates, merge claims): the job's name is
  // the event key, so an event the target does not take ends here without reading it.
  const inapplicable = notApplicable(target, job.name);
  if (inapplicable) {
    await recordAttempt(ctx.redis, eventKey, target.id, { state: 'not-applicable', reason: inapplicable });
    ctx.metrics.deliveries.inc({ target: target.id, outcome: 'not-applicable' });
    log.info({ reason: inapplicable }, 'not applicable to the target');
    return { state: 'not-applicable', reason: inapplicable };
  }

  // The loop guard looks once per delivery: a retry already passed it (its checks are idempotent per event
  // anyway). Jobs accepted by this version carry the guard's inputs, so the event's read and the guard are one
  // Redis call; not past the maximum age, though, so that a delivery about to be dead-lettered counts nowhere.
  const firstLook = trigger === 'bitbucket' && job.attemptsMade === 0;
  let event: StoredEvent | null;
  // The verdict the combined read returned; undefined when the event was read on its own.
  let looked: GuardResult | undefined;
  // A push whose message must be read from Bitbucket first is guarded after that (see headMessage).
  const lookup = firstLook ? data.g?.lookup : undefined;
  if (firstLook && data.g && !lookup && Date.now() - job.timestamp <= target.retry.maxAge) {
    let verdict: GuardVerdict;
    let evidence: Evidence | undefined;
    ({ event, verdict, evidence } = await ctx.guard.readAndCheck(ctx.store, data.g, data.e, target.id));
    looked = { verdict, ...(evidence ? { evidence } : {}) };
  } else {
    event = await ctx.store.read(data.e);
  }
  if (!event) {
    log.warn('event expired before delivery');
    throw new UnrecoverableError('event expired');
  }

  const settle = async (
    state: DeliveryState,
    extra: {
      attempt?: AttemptRecord;
      reason?: string;
      excerpt?: string;
      supersededBy?: string;
      evidence?: Evidence;
    } = {},
  ) => recordAttempt(ctx.redis, eventKey, target.id, { state, ...extra });

  const dead = async (reason: string, attempt?: AttemptRecord, bodyExcerpt?: string): Promise<never> => {
    await Promise.all([
      settle('dead', {
        reason,
        ...(attempt ? { attempt } : {}),
        ...(bodyExcerpt ? { excerpt: bodyExcerpt } : {}),
      }),
      indexDeadLetter(ctx.redis, ctx.keys, String(job.id)),
    ]);
    ctx.metrics.deliveries.inc({ target: target.id, outcome: 'dead' });
    log.warn({ reason, status: attempt?.status, error: attempt?.error }, 'delivery dead-lettered');
    throw recorded(new UnrecoverableError(reason));
  };

  // An operator's replay or release is sent however old the event is; automatic retries stop at max age.
  if (!manual && Date.now() - event.receivedAt > target.retry.maxAge) return dead('max age');

  if (firstLook) {
    const { verdict, evidence } =
      looked ??
      (data.g && lookup
        ? await ctx.guard.checkGuard(data.g, event, target.id, await headMessage(ctx, event, lookup, log))
        : await ctx.guard.check(event, target.id));
    if (
      verdict === 'wait-for-push' &&
      token &&
      Date.now() - event.receivedAt < ctx.config.loop.collapseWait
    ) {
      // The merge's push usually follows within seconds: look again shortly (not an attempt, no retry used).
      await job.moveToDelayed(Date.now() + 1000, token);
      throw new DelayedError();
    }
    const reason = verdict === 'wait-for-push' ? null : verdict;
    if (reason) {
      // Independent writes, sent together (on a cluster they go to different primaries: neither needs the other).
      await Promise.all([
        settle('suppressed', { reason, ...(evidence ? { evidence } : {}) }),
        ctx.redis.zadd(ctx.keys.suppressed, Date.now(), `${event.id}.${target.id}`),
      ]);
      ctx.metrics.loopSuppressed.inc({ target: target.id, reason });
      ctx.metrics.deliveries.inc({ target: target.id, outcome: 'suppressed' });
      log.info({ reason, evidence }, 'delivery suppressed by the loop guard');
      return { state: 'suppressed', reason };
    }
  }

  const coalescing = !manual && ctx.coalescer.applies(target.id, event.sourceId, event.envelope);
  if (coalescing) {
    const newer = await ctx.coalescer.supersededBy(target.id, event);
    if (newer) {
      await settle('coalesced', { supersededBy: newer });
      ctx.metrics.deliveries.inc({ target: target.id, outcome: 'coalesced' });
      log.info({ supersededBy: newer }, 'delivery coalesced into a newer push');
      return { state: 'coalesced', supersededBy: newer };
    }
  }

  const circuit = await tr.circuit.check();
  if (circuit.state === 'open' || circuit.state === 'probing') {
    // Back to waiting without using an attempt; the queue's rate limit stops every worker fetching until then.
    await tr.queue.rateLimit(Math.max(circuit.waitMs, 50));
    throw Worker.RateLimitError();
  }

  const wait = tr.sharedLimit ? await tr.sharedLimit.acquire() : 0;
  if (wait > 0) {
    await tr.queue.rateLimit(wait);
    throw Worker.RateLimitError();
  }

  // Without coalescing, an older push (a retry, a late arrival) sent after a newer one would leave the branch's
  // last build on an older commit: reported, and not sent when the route asks (skipSuperseded).
  let superseded: Evidence | undefined;
  if (!manual && !coalescing) {
    const newer = await ctx.order.newerDelivered(target.id, event);
    if (newer) {
      const skip = ctx.order.skips(target.id, event);
      superseded = {
        rule: 'superseded',
        newerEvent: newer.eventId,
        newerHead: newer.head.slice(0, 12),
        action: skip ? 'skipped' : 'sent',
      };
      ctx.metrics.superseded.inc({ target: target.id, action: superseded.action as string });
      log.warn({ supersededBy: newer.eventId, action: superseded.action }, 'an older push after a newer one');
      if (skip) {
        await settle('coalesced', { supersededBy: newer.eventId, evidence: superseded });
        ctx.metrics.deliveries.inc({ target: target.id, outcome: 'coalesced' });
        return { state: 'coalesced', supersededBy: newer.eventId };
      }
    }
  }

  const n = await attemptNumber(ctx, eventKey, target.id, job, manual);
  // The event carries nothing this target could act on (a deleted branch; a branch Bamboo has no plan branch for).
  const nothingToSend = async (reason: string): Promise<JobOutcome> => {
    await settle('not-applicable', { reason });
    ctx.metrics.deliveries.inc({ target: target.id, outcome: 'not-applicable' });
    log.info({ reason }, 'nothing to deliver');
    return { state: 'not-applicable', reason };
  };
  const relayId = await ctx.relayId.get();
  const built = buildRequest({ target, event, job: data, attempt: n, relayId });
  if ('skip' in built) return nothingToSend(built.skip);

  const span = startDeliverySpan(event, target.id, n);
  const traced: Record<string, string> = span ? { traceparent: span.traceparent } : {};
  // Any attempt after the first may follow one that did its work without the relay hearing so (a timeout, a
  // reset connection, or some builds of several created): requests that are not idempotent look first.
  const prepared = Array.isArray(built) || 'lookup' in built ? built : [built];
  const exchange = await send(ctx, tr, prepared, event, data.k, n > 1, traced);
  span?.end(exchange.skipped ? 'not-applicable' : exchange.verdict.kind, exchange.answer?.status);
  if (exchange.skipped) return nothingToSend(exchange.skipped);
  ctx.metrics.attemptDuration.observe({ target: target.id }, exchange.ms / 1000);
  const attemptSecrets = exchange.token ? [...tr.secrets, exchange.token] : tr.secrets;
  const attempt: AttemptRecord = {
    n,
    at: exchange.at,
    ms: exchange.ms,
    ...(exchange.answer ? { status: exchange.answer.status } : {}),
    ...(exchange.error ? { error: exchange.error } : {}),
    trigger,
    ...(exchange.sentHeaders
      ? { requestHeaders: recordedHeaders(exchange.sentHeaders, attemptSecrets) }
      : {}),
    ...(exchange.answer ? { responseHeaders: recordedHeaders(exchange.answer.headers, attemptSecrets) } : {}),
  };
  const bodyExcerpt = exchange.answer?.bodyStart
    ? excerpt(exchange.answer.bodyStart, attemptSecrets)
    : undefined;
  const verdict = exchange.verdict;
  // For the console's targets page; an ops aggregate must not fail or slow the delivery.
  countAttempt(ctx.redis, ctx.keys, target.id, {
    at: attempt.at,
    ms: attempt.ms,
    ok: verdict.kind === 'delivered',
  }).catch(() => {});

  if (verdict.kind === 'delivered') {
    await tr.circuit.success();
    // What the target built, for the causal chain rule: written beside the state record, in parallel.
    await Promise.all([
      settle('delivered', { attempt, ...(superseded ? { evidence: superseded } : {}) }),
      ctx.guard.recordDelivered(event, target.id, exchange.at),
      ctx.order.recordDelivered(target.id, event),
    ]);
    ctx.metrics.deliveries.inc({ target: target.id, outcome: 'delivered' });
    log.info({ status: attempt.status, ms: attempt.ms }, 'delivered');
    return { state: 'delivered', ...(attempt.status ? { status: attempt.status } : {}) };
  }
  if (verdict.kind === 'permanent') {
    // The target answered: it is up, whatever it thought of this request.
    if (exchange.answer) await tr.circuit.success();
    return dead(verdict.reason, attempt, bodyExcerpt);
  }

  const opened = await tr.circuit.failure();
  if (opened > 0) {
    await tr.queue.rateLimit(opened);
    log.warn({ cooldownMs: opened }, 'circuit opened: target paused');
  }
  // A replay or release is one operator-requested try: it never schedules retries of its own.
  if (manual) return dead(verdict.reason, attempt, bodyExcerpt);
  if (job.attemptsMade + 1 >= (job.opts.attempts ?? 1)) return dead('max attempts', attempt, bodyExcerpt);
  const retryAfter = exchange.answer ? retryHintMs(target.type, exchange.answer) : undefined;
  const delay = retryDelay(target.retry, job.attemptsMade + 1, retryAfter);
  if (Date.now() + delay - event.receivedAt > target.retry.maxAge) {
    return dead('max age', attempt, bodyExcerpt);
  }
  await settle('retrying', { attempt, reason: verdict.reason });
  ctx.metrics.deliveries.inc({ target: target.id, outcome: 'retry' });
  log.info({ reason: verdict.reason, delayMs: delay }, 'delivery will be retried');
  throw new RetryLater(verdict.reason, delay);
}

/** The head commit's message read through the source's REST API; undefined (and logged) when that fails. */
async function headMessage(
  ctx: DeliveryContext,
  event: StoredEvent,
  commitId: string,
  log: { warn: LogFn },
): Promise<string | undefined> {
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
    log.warn({ err: (err as Error).message }, 'commit message lookup failed: guarded without it');
    return undefined;
  }
}

/**
 * Attempt numbers keep counting across an operator's replays (BullMQ's own counter may have been reset), so
 * the history reads 1, 2, 3 … in order. Automatic attempts use BullMQ's counter and need no extra read.
 */
async function attemptNumber(
  ctx: DeliveryContext,
  eventKey: string,
  targetId: string,
  job: Job<DeliveryJobData>,
  manual: boolean,
): Promise<number> {
  const own = job.attemptsMade + 1;
  if (!manual) return own;
  const prev = await readTargetState(ctx.redis, eventKey, targetId);
  const last = prev?.attempts.at(-1)?.n ?? 0;
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
  tr: TargetRuntime,
  prepared: OutgoingRequest[] | LookupFirst,
  event: StoredEvent,
  key: string,
  mayRepeat: boolean,
  traced: Record<string, string>,
): Promise<Exchange> {
  const { target } = tr;
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
      const look = await call(ctx, tr, prepared.lookup, key, traced, sent);
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
        const look = await call(ctx, tr, built.alreadyDone.request, key, traced, sent, built.part);
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
      const exchanged = await call(ctx, tr, built, key, traced, sent, built.part);
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
  tr: TargetRuntime,
  built: OutgoingRequest,
  key: string,
  traced: Record<string, string>,
  sent: { headers?: Record<string, string> },
  part?: string,
): Promise<{ answer: TargetAnswer; token?: string }> {
  const { target } = tr;
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
    const answer = await tr.client.send({ ...built, headers }, auth.query);
    // An identity-aware proxy refused the cached token: fetch a fresh one and try once more right away.
    if (answer.status === 401 && target.auth?.type === 'oauth2' && tries === 0) {
      ctx.tokens.invalidate(target.id, token);
      continue;
    }
    return { answer, ...(token ? { token } : {}) };
  }
}
