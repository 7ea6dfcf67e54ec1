import { Worker } from 'bullmq';
import pLimit from 'p-limit';
import { CommitMessages } from '../bitbucket-api/commit-message.js';
import type { TargetConfig } from '../config/types.js';
import { DeadLettered, RetryLater } from '../errors/index.js';
import type { Logger } from '../log.js';
import { EventStore, type StoredEvent } from '../queue/event-store.js';
import { LocalHandoff } from '../queue/local-handoff.js';
import { createRedis, type RedisClient } from '../queue/redis-connection.js';
import { AttemptCounter } from '../queue/target-stats.js';
import type { DeliveryJobData } from '../relay/job-types.js';
import type { Runtime } from '../runtime.js';
import { secretsOf, TokenCache } from './auth.js';
import { CircuitBreaker } from './circuit-breaker.js';
import { Coalescer } from './coalesce.js';
import { DeadLetterWriter } from './dead-letter-writer.js';
import { retryDelayAfter } from './decide.js';
import { TargetClient } from './http-client.js';
import { LoopGuard } from './loop-guard.js';
import { type DeliveryContext, processJob, type TargetRuntime } from './process-job.js';
import { RefOrder } from './ref-order.js';
import { SharedRateLimit } from './shared-rate-limit.js';

export interface DeliveryWorkers {
  close(): Promise<void>;
}

// Without a limiter on the worker, BullMQ ignores the queue's rate-limit key; the circuit breaker relies on it.
const NO_LIMIT = { max: 1_000_000, duration: 1000 };

/**
 * The job lock must outlive the request timeout, so only a dead worker's job is ever picked up again: with the
 * lock renewed every half-lock while the process lives, a request that hangs until its timeout still holds
 * the lock, and a killed process's job is free again one lock later (then found by the stalled check).
 */
export function lockDurationFor(target: TargetConfig): number {
  return target.timeout + Math.max(2000, Math.min(target.timeout, 30_000));
}

/** One BullMQ worker per target queue, so a slow target cannot take the workers of a healthy one. */
export function startDeliveryWorkers(runtime: Runtime): DeliveryWorkers {
  const connection = createRedis(runtime.config, 'worker', 'worker');
  connection.on('error', () => {});
  // The delivery's own reads and writes (event, loop guard, branch order, state), apart from BullMQ's: commands
  // issued in the same tick, by one job's phase or by concurrent jobs, go out in one write. Not BullMQ's
  // connection: a blocking command there would hold up everything batched behind it.
  const stateConnection = createRedis(runtime.config, 'worker', 'worker-state', { autoPipelining: true });
  stateConnection.on('error', () => {});
  const log = runtime.log.child({ role: 'worker' });
  const guard = new LoopGuard(stateConnection, runtime.keys, runtime.config.loop);
  // The fan-out of this process (when it runs one) hands over what it routed: see local-handoff.ts.
  const routedHandoff = new LocalHandoff<StoredEvent>({
    count: (result) => runtime.metrics.localHandoff.inc({ stage: 'routed', result }),
  });
  runtime.store.routedHandoff = routedHandoff;
  const ctx: DeliveryContext = {
    config: runtime.config,
    keys: runtime.keys,
    redis: stateConnection,
    store: new EventStore(stateConnection, runtime.keys, runtime.config, runtime.queues),
    log,
    metrics: runtime.metrics,
    tokens: new TokenCache(),
    guard,
    coalescer: new Coalescer(stateConnection, runtime.keys, runtime.config, runtime.router, guard.rules),
    order: new RefOrder(stateConnection, runtime.keys, runtime.config, runtime.router),
    relayId: runtime.relayId,
    commitMessages: new CommitMessages(runtime.config.sources),
    deadLetters: new DeadLetterWriter(stateConnection, runtime.keys, runtime.metrics, log),
    attemptCounter: new AttemptCounter(stateConnection, runtime.keys),
    routedHandoff,
  };
  const clients: TargetClient[] = [];

  // One worker per target queue: per target, or per target and shard on a cluster (each shard's queue is in
  // its own slot). A target's HTTP client and circuit breaker are shared by its shards.
  const workers = runtime.config.targets.flatMap((target) => {
    const client = new TargetClient(target);
    clients.push(client);
    const concurrencyLimit = pLimit(target.concurrency);
    const sharedLimit =
      target.rateLimit && runtime.keys.shards > 1
        ? new SharedRateLimit(stateConnection, runtime.keys.sharedRateLimit(target.id), target.rateLimit)
        : undefined;
    const circuit = new CircuitBreaker(stateConnection, runtime.keys.circuit(target.id), target, (open) =>
      runtime.metrics.circuitState.set({ target: target.id }, open ? 1 : 0),
    );
    return runtime.queues.ofTarget(target.id).map((queue, shard) =>
      startTargetWorker(
        runtime,
        ctx,
        connection,
        log,
        {
          target,
          client,
          queue,
          secrets: secretsOf(target),
          circuit,
          concurrencyLimit,
          ...(sharedLimit ? { sharedLimit } : {}),
        },
        shard,
      ),
    );
  });

  return {
    /**
     * SIGTERM: stop taking jobs and let in-flight deliveries finish, within a bound. A delivery still running
     * after it is abandoned, not lost: its lock expires and another worker sends it with the same key.
     */
    async close() {
      if (runtime.store.routedHandoff === routedHandoff) runtime.store.routedHandoff = undefined;
      const graceMs = runtime.config.worker.shutdownGrace;
      const within = (promise: Promise<unknown>, ms: number) => {
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<'late'>((res) => {
          timer = setTimeout(() => res('late'), ms);
        });
        return Promise.race([promise.then(() => 'done' as const), late]).finally(() => clearTimeout(timer));
      };
      const gentle = Promise.allSettled(workers.map((w) => w.close()));
      if ((await within(gentle, graceMs)) === 'late') {
        // BullMQ's close(true) would return the pending gentle close, which waits for the jobs: abort their
        // requests instead, so each job records a retry (same key, sent again soon) and ends.
        log.warn({ graceMs }, 'in-flight deliveries did not finish in time; they will be sent again');
        await Promise.allSettled(clients.map((c) => c.destroy()));
        await within(gentle, 5000);
      } else {
        await Promise.allSettled(clients.map((c) => c.close()));
      }
      // Bounded: with Redis away the flush would wait for it forever (the worker connections never give up).
      await within(
        ctx.attemptCounter.close().catch(() => undefined),
        2000,
      );
      connection.disconnect();
      stateConnection.disconnect();
    },
  };
}

function startTargetWorker(
  runtime: Runtime,
  ctx: DeliveryContext,
  connection: RedisClient,
  log: Logger,
  targetRuntime: TargetRuntime,
  shard: number,
): Worker<DeliveryJobData> {
  const { target } = targetRuntime;
  const lockDuration = lockDurationFor(target);
  const worker = new Worker<DeliveryJobData>(
    runtime.keys.queueName(target.id, shard),
    // The whole job runs within the target's concurrency limit, not just its request: a job waiting its turn
    // must not have passed coalescing, the circuit breaker or the rate limit yet (they may say otherwise once it
    // runs).
    (job, token) => targetRuntime.concurrencyLimit(() => processJob(ctx, targetRuntime, job, token)),
    {
      // biome-ignore lint/suspicious/noExplicitAny: ioredis Cluster and Redis are both accepted at runtime
      connection: connection as any,
      prefix: runtime.keys.queuePrefix(target.id, shard),
      concurrency: target.concurrency,
      limiter:
        target.rateLimit && !targetRuntime.sharedLimit
          ? { max: target.rateLimit.max, duration: target.rateLimit.duration }
          : NO_LIMIT,
      lockDuration,
      // Renewed four times per lock period: one late renewal (a busy event loop) does not lose the lock.
      lockRenewTime: Math.min(lockDuration / 4, 5000),
      stalledInterval: Math.min(lockDuration, 30_000),
      maxStalledCount: 3,
      settings: {
        backoffStrategy: (attemptsMade: number, _type?: string, err?: Error) =>
          retryDelayAfter(target, attemptsMade, err),
      },
    },
  );
  worker.on('failed', (job, err) => {
    if (!job || err instanceof DeadLettered || err instanceof RetryLater) return;
    // Failures the processor did not record itself (an expired event, too many stalls): record the dead
    // letter once BullMQ has given up on the job.
    const final = err.name === 'UnrecoverableError' || job.attemptsMade >= (job.opts.attempts ?? 1);
    log.warn(
      { target: target.id, eventId: job.data.eventId, err: err.message, final },
      'delivery attempt failed',
    );
    if (!final) return;
    const letter = {
      eventId: job.data.eventId,
      targetId: target.id,
      jobId: String(job.id),
      reason: err.message,
    };
    // A failed write is logged and counted by the writer; nothing is left to do with it here.
    ctx.deadLetters.write(letter, { keepEarlier: true }).catch(() => undefined);
  });
  worker.on('error', (err) => log.warn({ target: target.id, err: err.message }, 'worker error'));
  return worker;
}
