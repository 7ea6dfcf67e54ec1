import { Worker } from 'bullmq';
import pLimit from 'p-limit';
import { CommitMessages } from '../src/bitbucket-api/commit-message.js';
import type { TargetConfig } from '../src/config/types.js';
import { secretsOf, TokenCache } from '../src/delivery/auth.js';
import { backoffDelay } from '../src/delivery/backoff.js';
import { CircuitBreaker } from '../src/delivery/circuit-breaker.js';
import { Coalescer } from '../src/delivery/coalesce.js';
import { RetryLater } from '../src/delivery/errors.js';
import { TargetClient } from '../src/delivery/http-client.js';
import { LoopGuard } from '../src/delivery/loop-guard.js';
import {
  type DeliveryContext,
  isRecorded,
  processJob,
  type TargetRuntime,
} from '../src/delivery/process-job.js';
import { RefOrder } from '../src/delivery/ref-order.js';
import { SharedRateLimit } from '../src/delivery/shared-rate-limit.js';
import type { Logger } from '../src/log.js';
import { indexDeadLetter } from '../src/queue/dead-letter-index.js';
import { readTargetState, recordAttempt } from '../src/queue/delivery-state.js';
import { EventStore } from '../src/queue/event-store.js';
import type { DeliveryJobData } from '../src/queue/job-types.js';
import { createRedis, type RedisClient } from '../src/queue/redis-connection.js';
import type { Runtime } from '../src/runtime.js';

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

/** One BullMQ worker per target queue, so a slow target cannot take the slots of a healthy one. */
export function startDeliveryWorkers(rt: Runtime): DeliveryWorkers {
  const connection = createRedis(rt.config, 'worker', 'worker');
  connection.on('error', () => {});
  const log = rt.log.child({ role: 'worker' });
  const guard = new LoopGuard(connection, rt.keys, rt.config.loop);
  const ctx: DeliveryContext = {
    config: rt.config,
    keys: rt.keys,
    redis: connection,
    store: new EventStore(connection, rt.keys, rt.config, rt.queues),
    log,
    metrics: rt.metrics,
    tokens: new TokenCache(),
    guard,
    coalescer: new Coalescer(connection, rt.keys, rt.config, rt.router, guard.rules),
    order: new RefOrder(connection, rt.keys, rt.config, rt.router),
    relayId: rt.relayId,
    commitMessages: new CommitMessages(rt.config.sources),
  };
  const clients: TargetClient[] = [];

  // One worker per target queue: per target, or per target and shard on a cluster (each shard's queue is in
  // its own slot). A target's HTTP client and circuit breaker are shared by its shards.
  const workers = rt.config.targets.flatMap((target) => {
    const client = new TargetClient(target);
    clients.push(client);
    const slots = pLimit(target.concurrency);
    const sharedLimit =
      target.rateLimit && rt.keys.shards > 1
        ? new SharedRateLimit(connection, rt.keys.loop(`rate-limit:${target.id}`), target.rateLimit)
        : undefined;
    const circuit = new CircuitBreaker(connection, rt.keys.circuit(target.id), target, (open) =>
      rt.metrics.circuitState.set({ target: target.id }, open ? 1 : 0),
    );
    return rt.queues.ofTarget(target.id).map((queue, shard) =>
      startTargetWorker(
        rt,
        ctx,
        connection,
        log,
        {
          target,
          client,
          queue,
          secrets: secretsOf(target),
          circuit,
          slots,
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
      const graceMs = rt.config.worker.shutdownGrace;
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
      connection.disconnect();
    },
  };
}

function startTargetWorker(
  rt: Runtime,
  ctx: DeliveryContext,
  connection: RedisClient,
  log: Logger,
  tr: TargetRuntime,
  shard: number,
): Worker<DeliveryJobData> {
  const { target } = tr;
  const lockDuration = lockDurationFor(target);
  const worker = new Worker<DeliveryJobData>(
    rt.keys.queueName(target.id, shard),
    // The whole job runs in the target's slot, not just its request: a job waiting for a slot must not have
    // passed coalescing, the circuit breaker or the rate limit yet (they may say otherwise once it runs).
    (job, token) => tr.slots(() => processJob(ctx, tr, job, token)),
    {
      // biome-ignore lint/suspicious/noExplicitAny: ioredis Cluster and Redis are both accepted at runtime
      connection: connection as any,
      prefix: rt.keys.queuePrefix(target.id, shard),
      concurrency: target.concurrency,
      limiter:
        target.rateLimit && !tr.sharedLimit
          ? { max: target.rateLimit.max, duration: target.rateLimit.duration }
          : NO_LIMIT,
      lockDuration,
      // Renewed four times per lock period: one late renewal (a busy event loop) does not lose the lock.
      lockRenewTime: Math.min(lockDuration / 4, 5000),
      stalledInterval: Math.min(lockDuration, 30_000),
      maxStalledCount: 3,
      settings: {
        backoffStrategy: (attemptsMade: number, _type?: string, err?: Error) =>
          err instanceof RetryLater ? err.delayMs : backoffDelay(target.retry, attemptsMade),
      },
    },
  );
  worker.on('failed', (job, err) => {
    if (!job || isRecorded(err) || err instanceof RetryLater) return;
    // Failures the processor did not record itself (an expired event, too many stalls): record the dead
    // letter once BullMQ has given up on the job.
    const final = err.name === 'UnrecoverableError' || job.attemptsMade >= (job.opts.attempts ?? 1);
    log.warn({ target: target.id, eventId: job.data.e, err: err.message, final }, 'delivery attempt failed');
    if (!final) return;
    const eventKey = rt.keys.event(job.data.e);
    indexDeadLetter(connection, rt.keys, String(job.id)).catch(() => {});
    readTargetState(connection, eventKey, target.id)
      .then((prev) =>
        prev?.state === 'dead'
          ? undefined
          : recordAttempt(connection, eventKey, target.id, { state: 'dead', reason: err.message }),
      )
      .catch(() => {});
  });
  worker.on('error', (err) => log.warn({ target: target.id, err: err.message }, 'worker error'));
  return worker;
}
