import type { Job, Queue } from 'bullmq';
import type { LimitFunction } from 'p-limit';
import type { CommitMessages } from '../../bitbucket-api/commit-message.js';
import type { Config, TargetConfig } from '../../config/types.js';
import type { Logger } from '../../log.js';
import type { Metrics } from '../../metrics.js';
import {
  type AttemptRecord,
  type DeliveryState,
  type Evidence,
  recordAttempt,
} from '../../queue/delivery-state.js';
import type { EventStore, StoredEvent } from '../../queue/event-store.js';
import type { Keys } from '../../queue/keys.js';
import type { LocalHandoff } from '../../queue/local-handoff.js';
import type { RedisClient } from '../../queue/redis-connection.js';
import type { RelayIdentity } from '../../queue/relay-id.js';
import type { AttemptCounter } from '../../queue/target-stats.js';
import type { DeliveryJobData, JobTrigger } from '../../relay/job-types.js';
import type { TokenCache } from '../auth.js';
import type { CircuitBreaker } from '../circuit-breaker.js';
import type { Coalescer } from '../coalesce.js';
import type { DeadLetterWriter } from '../dead-letter-writer.js';
import type { TargetClient } from '../http-client.js';
import type { LoopGuard } from '../loop-guard.js';
import type { RefOrder } from '../ref-order.js';
import type { SharedRateLimit } from '../shared-rate-limit.js';

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
  deadLetters: DeadLetterWriter;
  /** Attempts per target for the console's targets page, written once a second. */
  attemptCounter: AttemptCounter;
  /** Events this process's fan-out routed, as it wrote them: a first look reads them here. */
  routedHandoff: LocalHandoff<StoredEvent>;
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
  concurrencyLimit: LimitFunction;
  /** The target's rate limit shared by its shard queues (cluster only; BullMQ's limiter otherwise). */
  sharedLimit?: SharedRateLimit;
}

/** How a job that BullMQ completes ended (a retry, a dead letter or a wait ends in a throw instead). */
export type JobOutcome =
  | { state: 'delivered'; status?: number }
  | { state: 'suppressed'; reason: string }
  | { state: 'coalesced'; supersededBy: string }
  | { state: 'not-applicable'; reason: string };

type LogFn = (obj: object | string, msg?: string) => void;
export interface JobLog {
  info: LogFn;
  warn: LogFn;
}

/** One run of one delivery job: what every phase reads. */
export interface Attempt {
  ctx: DeliveryContext;
  targetRuntime: TargetRuntime;
  target: TargetConfig;
  job: Job<DeliveryJobData>;
  /** BullMQ's lock token (absent when a test runs the processor by hand). */
  token: string | undefined;
  trigger: JobTrigger;
  /** An operator's replay or release rather than Bitbucket's event. */
  manual: boolean;
  eventKey: string;
  log: JobLog;
}

export function startAttempt(
  ctx: DeliveryContext,
  targetRuntime: TargetRuntime,
  job: Job<DeliveryJobData>,
  token: string | undefined,
): Attempt {
  const { target } = targetRuntime;
  const trigger = job.data.trigger ?? 'bitbucket';
  const { eventId } = job.data;
  return {
    ctx,
    targetRuntime,
    target,
    job,
    token,
    trigger,
    manual: trigger !== 'bitbucket',
    eventKey: ctx.keys.event(eventId),
    log: jobLog(ctx.log, { target: target.id, eventId, attempt: job.attemptsMade + 1, trigger }),
  };
}

/**
 * The job's fields bound per call: a pino child per job serialises its bindings up front, a cost every job paid
 * for what is usually one log line (measured with the e2e bench's CPU profile).
 */
function jobLog(log: Logger, bound: object): JobLog {
  const at =
    (level: 'info' | 'warn'): LogFn =>
    (obj, msg) => {
      if (!log.isLevelEnabled(level)) return;
      if (typeof obj === 'string') log[level](bound, obj);
      else log[level]({ ...bound, ...obj }, msg);
    };
  return { info: at('info'), warn: at('warn') };
}

/** The delivery's state on the event, as the admin API, console and CLI show it. */
export function recordState(
  attempt: Attempt,
  state: DeliveryState,
  extra: {
    attempt?: AttemptRecord;
    reason?: string;
    excerpt?: string;
    supersededBy?: string;
    evidence?: Evidence;
  } = {},
) {
  return recordAttempt(attempt.ctx.redis, attempt.eventKey, attempt.target.id, { state, ...extra });
}

/** Counts a job's end by outcome and returns it. */
export function ended(attempt: Attempt, outcome: JobOutcome): JobOutcome {
  attempt.ctx.metrics.deliveries.inc({ target: attempt.target.id, outcome: outcome.state });
  return outcome;
}
