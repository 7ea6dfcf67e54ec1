import type { FastifyInstance } from 'fastify';
import { Gauge, type Registry } from 'prom-client';
import type { AdminDeps } from './admin-deps.js';

const JOB_STATES = [
  'waiting',
  'active',
  'delayed',
  'prioritized',
  'paused',
  'waiting-children',
  'failed',
  'completed',
] as const;

/**
 * Gauges read from Redis when Prometheus scrapes, so every admin instance reports the same queue picture
 * whichever process did the work. Registered once per registry (several admin apps may share a runtime).
 */
export function registerQueueGauges(registry: Registry, deps: AdminDeps): void {
  if (registry.getSingleMetric('hookrelay_queue_jobs')) return;
  const queues = deps.queues;
  new Gauge({
    name: 'hookrelay_queue_jobs',
    help: 'Delivery jobs per target queue and BullMQ state (waiting, active, delayed, failed, …)',
    labelNames: ['target', 'state'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      // Summed over a target's shards: the picture is per target, however the keyspace is split.
      const all = await Promise.all(
        queues.all().map(async ({ targetId, queue }) => ({
          targetId,
          counts: await queue.getJobCounts(...JOB_STATES),
        })),
      );
      for (const target of queues.targetIds) {
        for (const state of JOB_STATES) {
          const n = all
            .filter((q) => q.targetId === target)
            .reduce((sum, q) => sum + (q.counts[state] ?? 0), 0);
          this.set({ target, state }, n);
        }
      }
    },
  });
  new Gauge({
    name: 'hookrelay_dead_letters',
    help: 'Dead letters (failed delivery jobs kept for replay) per target',
    labelNames: ['target'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      await Promise.all(
        queues.targetIds.map(async (target) => {
          const counts = await Promise.all(queues.ofTarget(target).map((q) => q.getFailedCount()));
          this.set(
            { target },
            counts.reduce((a, b) => a + b, 0),
          );
        }),
      );
    },
  });
  new Gauge({
    name: 'hookrelay_suppressed_deliveries',
    help: 'Deliveries held back by the loop guard and not released yet',
    registers: [registry],
    async collect() {
      this.set(await deps.redis.zcard(deps.keys.suppressed));
    },
  });
}

export async function metricsRoute(app: FastifyInstance, deps: AdminDeps): Promise<void> {
  const registry = deps.metrics.registry;
  registerQueueGauges(registry, deps);
  app.get('/metrics', async (_req, reply) => {
    const text = await registry.metrics();
    return reply.header('content-type', registry.contentType).send(text);
  });
}
