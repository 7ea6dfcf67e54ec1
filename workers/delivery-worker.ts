import { UnrecoverableError, Worker } from 'bullmq';
import { request } from 'undici';
import type { TargetConfig } from '../src/config/types.js';
import { buildHttpRequest } from '../src/delivery/build-request.js';
import type { DeliveryJobData } from '../src/queue/job-types.js';
import { createRedis } from '../src/queue/redis-connection.js';
import type { Runtime } from '../src/runtime.js';

export interface DeliveryWorkers {
  close(): Promise<void>;
}

function backoffMs(target: TargetConfig, attemptsMade: number): number {
  const policy = target.retry;
  if (policy.scheduleMs)
    return policy.scheduleMs[Math.min(attemptsMade - 1, policy.scheduleMs.length - 1)] ?? 0;
  const cap = Math.min(policy.maxDelayMs, policy.delayMs * 2 ** Math.max(0, attemptsMade - 1));
  return Math.floor(Math.random() * cap);
}

/** One BullMQ worker per target queue, so a slow target cannot take the slots of a healthy one. */
export function startDeliveryWorkers(rt: Runtime): DeliveryWorkers {
  const connection = createRedis(rt.config, 'worker', 'worker');
  connection.on('error', () => {});
  const log = rt.log.child({ role: 'worker' });
  const workers = rt.config.targets.map((target) => {
    const worker = new Worker<DeliveryJobData>(
      rt.keys.queueName(target.id),
      async (job) => {
        const event = await rt.store.read(job.data.e);
        if (!event) throw new UnrecoverableError('event payload expired or missing');
        const attempt = job.attemptsMade + 1;
        const req = buildHttpRequest(target, event, job.data, attempt, rt.config.relay.id);
        const res = await request(req.url, {
          method: req.method,
          headers: req.headers,
          body: req.body,
          headersTimeout: target.timeoutMs,
          bodyTimeout: target.timeoutMs,
        });
        await res.body.dump();
        const status = res.statusCode;
        if (status >= 200 && status < 300) return { status };
        if (status >= 400 && status < 500 && ![408, 425, 429].includes(status)) {
          throw new UnrecoverableError(`target answered ${status}`);
        }
        throw new Error(`target answered ${status}`);
      },
      {
        // biome-ignore lint/suspicious/noExplicitAny: ioredis Cluster and Redis are both accepted at runtime
        connection: connection as any,
        prefix: rt.keys.queuePrefix(target.id),
        concurrency: target.concurrency,
        lockDuration: target.timeoutMs * 2 + 5000,
        settings: { backoffStrategy: (attemptsMade: number) => backoffMs(target, attemptsMade) },
      },
    );
    worker.on('failed', (job, err) => {
      log.warn(
        { target: target.id, eventId: job?.data.e, attempts: job?.attemptsMade, err: err.message },
        'delivery failed',
      );
    });
    worker.on('error', (err) => log.warn({ target: target.id, err: err.message }, 'worker error'));
    return worker;
  });
  return {
    async close() {
      await Promise.allSettled(workers.map((w) => w.close()));
      connection.disconnect();
    },
  };
}
