import { DelayedError, type Job, type Queue, UnrecoverableError, Worker } from 'bullmq';
import type { LimitFunction } from 'p-limit';
import type { Config, TargetConfig } from '../config/types.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { indexDeadLetter } from '../queue/dead-letter-index.js';
import {
  type AttemptRecord,
  type DeliveryState,
  readTargetState,
  recordAttempt,
} from '../queue/delivery-state.js';
import type { EventStore, StoredEvent } from '../queue/event-store.js';
import type { DeliveryJobData } from '../queue/job-types.js';
import type { Keys } from '../queue/keys.js';
import type { RedisClient } from '../queue/redis-connection.js';
import { countAttempt } from '../queue/target-stats.js';
import { applyAuth, type TokenCache, TokenError } from './auth.js';
import { parseRetryAfter, retryDelay } from './backoff.js';
import { buildRequest } from './build-request.js';
import type { CircuitBreaker } from './circuit-breaker.js';
import { classifyStatus, describeError, type Verdict } from './classify.js';
import type { Coalescer } from './coalesce.js';
import { RetryLater } from './errors.js';
import { excerpt, type TargetAnswer, type TargetClient } from './http-client.js';
import type { GuardVerdict, LoopGuard } from './loop-guard.js';
import type { SharedRateLimit } from './shared-rate-limit.js';
import { standardWebhookHeaders } from './signing.js';

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
  | { state: 'delivered'; status?: number; skipped?: string }
  | { state: 'suppressed'; reason: string }
  | { state: 'coalesced'; supersededBy: string };

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

  // The loop guard looks once per delivery: a retry already passed it (its checks are idempotent per event
  // anyway). Jobs accepted by this version carry the guard's inputs, so the event's read and the guard are one
  // Redis call; not past the maximum age, though, so that a delivery about to be dead-lettered counts nowhere.
  const firstLook = trigger === 'bitbucket' && job.attemptsMade === 0;
  let event: StoredEvent | null;
  // The verdict the combined read returned; undefined when the event was read on its own.
  let looked: GuardVerdict | undefined;
  if (firstLook && data.g && Date.now() - job.timestamp <= target.retry.maxAgeMs) {
    ({ event, verdict: looked } = await ctx.guard.readAndCheck(ctx.store, data.g, data.e, target.id));
  } else {
    event = await ctx.store.read(data.e);
  }
  if (!event) {
    log.warn('event expired before delivery');
    throw new UnrecoverableError('event expired');
  }

  const settle = async (
    state: DeliveryState,
    extra: { attempt?: AttemptRecord; reason?: string; excerpt?: string; supersededBy?: string } = {},
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
  if (!manual && Date.now() - event.receivedAt > target.retry.maxAgeMs) return dead('max age');

  if (firstLook) {
    const verdict =
      looked !== undefined ? looked : await ctx.guard.check(event.envelope, event.id, target.id);
    if (
      verdict === 'wait-for-push' &&
      token &&
      Date.now() - event.receivedAt < ctx.config.loop.collapseWaitSeconds * 1000
    ) {
      // The merge's push usually follows within seconds: look again shortly (not an attempt, no retry used).
      await job.moveToDelayed(Date.now() + 1000, token);
      throw new DelayedError();
    }
    const reason = verdict === 'wait-for-push' ? null : verdict;
    if (reason) {
      // Independent writes, sent together (on a cluster they go to different primaries: neither needs the other).
      await Promise.all([
        settle('suppressed', { reason }),
        ctx.redis.zadd(ctx.keys.suppressed, Date.now(), `${event.id}.${target.id}`),
      ]);
      ctx.metrics.loopSuppressed.inc({ target: target.id, reason });
      ctx.metrics.deliveries.inc({ target: target.id, outcome: 'suppressed' });
      log.info({ reason }, 'delivery suppressed by the loop guard');
      return { state: 'suppressed', reason };
    }
  }

  if (!manual && ctx.coalescer.applies(target.id, event.sourceId, event.envelope)) {
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

  const n = await attemptNumber(ctx, eventKey, target.id, job, manual);
  const built = buildRequest({ target, event, job: data, attempt: n, relayId: ctx.config.relay.id });
  if ('skip' in built) {
    await settle('delivered', { reason: built.skip });
    ctx.metrics.deliveries.inc({ target: target.id, outcome: 'delivered' });
    log.info({ skipped: built.skip }, 'nothing to deliver');
    return { state: 'delivered', skipped: built.skip };
  }

  const exchange = await send(ctx, tr, built, event, data.k);
  ctx.metrics.attemptDuration.observe({ target: target.id }, exchange.ms / 1000);
  const attempt: AttemptRecord = {
    n,
    at: exchange.at,
    ms: exchange.ms,
    ...(exchange.answer ? { status: exchange.answer.status } : {}),
    ...(exchange.error ? { error: exchange.error } : {}),
    trigger,
  };
  const bodyExcerpt = exchange.answer?.bodyStart
    ? excerpt(exchange.answer.bodyStart, exchange.token ? [...tr.secrets, exchange.token] : tr.secrets)
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
    await settle('delivered', { attempt });
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
  const retryAfter = exchange.answer ? parseRetryAfter(exchange.answer.headers['retry-after']) : undefined;
  const delay = retryDelay(target.retry, job.attemptsMade + 1, retryAfter);
  if (Date.now() + delay - event.receivedAt > target.retry.maxAgeMs) {
    return dead('max age', attempt, bodyExcerpt);
  }
  await settle('retrying', { attempt, reason: verdict.reason });
  ctx.metrics.deliveries.inc({ target: target.id, outcome: 'retry' });
  log.info({ reason: verdict.reason, delayMs: delay }, 'delivery will be retried');
  throw new RetryLater(verdict.reason, delay);
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

async function send(
  ctx: DeliveryContext,
  tr: TargetRuntime,
  built: { url: string; method: 'POST'; headers: Record<string, string>; body: Buffer },
  event: StoredEvent,
  key: string,
): Promise<Exchange> {
  const { target } = tr;
  const at = Date.now();
  const signature = target.signingSecret ? standardWebhookHeaders(target.signingSecret, key, built.body) : {};
  let token: string | undefined;
  try {
    for (let tries = 0; ; tries++) {
      const auth = await applyAuth(target, ctx.tokens);
      token = auth.headers.authorization?.startsWith('Bearer ')
        ? auth.headers.authorization.slice(7)
        : undefined;
      const answer = await tr.client.send(
        { ...built, headers: { ...built.headers, ...signature, ...auth.headers } },
        auth.query,
      );
      // An identity-aware proxy refused the cached token: fetch a fresh one and try once more right away.
      if (answer.status === 401 && target.auth?.type === 'oauth2' && tries === 0) {
        ctx.tokens.invalidate(target.id, token);
        continue;
      }
      return {
        answer,
        verdict: classifyStatus(target.type, answer.status),
        ms: Date.now() - at,
        at,
        ...(token ? { token } : {}),
      };
    }
  } catch (err) {
    const ms = Date.now() - at;
    if (err instanceof TokenError) {
      const permanent =
        err.status !== undefined && err.status >= 400 && err.status < 500 && err.status !== 429;
      const reason = `oauth2: ${err.message}`;
      return { error: reason, verdict: { kind: permanent ? 'permanent' : 'retry', reason }, ms, at };
    }
    const error = describeError(err);
    ctx.log.debug({ target: target.id, eventId: event.id, err: error }, 'request failed');
    return { error, verdict: { kind: 'retry', reason: error }, ms, at };
  }
}
