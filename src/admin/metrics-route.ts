import type { FastifyInstance } from 'fastify';
import { Cluster } from 'ioredis';
import { Gauge, type Registry } from 'prom-client';
import { redisAnswers } from '../queue/redis-connection.js';
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
 * Runs one gauge's Redis read. A scrape while Redis is away still answers: the gauge is left without samples
 * and `hookrelay_redis_up` says why, instead of the whole scrape failing and hiding that very signal.
 */
async function readFromRedis(gauge: Pick<Gauge, 'reset'>, read: () => Promise<void>): Promise<void> {
  gauge.reset();
  await read().catch(() => gauge.reset());
}

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
      await readFromRedis(this, async () => {
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
      });
    },
  });
  new Gauge({
    name: 'hookrelay_inbox_events',
    help: 'Received events not routed yet (the fan-out inbox, summed over shards): the fan-out is behind when it grows',
    registers: [registry],
    async collect() {
      await readFromRedis(this, async () => {
        const lengths = await Promise.all(
          Array.from({ length: deps.keys.shards }, (_, s) => deps.redis.xlen(deps.keys.inbox(s))),
        );
        this.set(lengths.reduce((a, b) => a + b, 0));
      });
    },
  });
  new Gauge({
    name: 'hookrelay_dead_letters',
    help: 'Dead letters (failed delivery jobs kept for replay) per target',
    labelNames: ['target'] as const,
    registers: [registry],
    async collect() {
      await readFromRedis(this, async () => {
        await Promise.all(
          queues.targetIds.map(async (target) => {
            const counts = await Promise.all(queues.ofTarget(target).map((q) => q.getFailedCount()));
            this.set(
              { target },
              counts.reduce((a, b) => a + b, 0),
            );
          }),
        );
      });
    },
  });
  new Gauge({
    name: 'hookrelay_queue_oldest_waiting_seconds',
    help: 'Age of the oldest delivery job ready to run but not started, per target (0 when none waits)',
    labelNames: ['target'] as const,
    registers: [registry],
    async collect() {
      await readFromRedis(this, async () => {
        const now = Date.now();
        const oldest = await Promise.all(
          queues.all().map(async ({ targetId, queue }) => {
            // Oldest first: one job per state, only its timestamp is used.
            const jobs = await queue.getJobs(['waiting', 'prioritized'], 0, 0, true);
            const created = jobs.reduce((min, job) => Math.min(min, job.timestamp), now);
            return { targetId, ageSeconds: (now - created) / 1000 };
          }),
        );
        for (const target of queues.targetIds) {
          const ages = oldest.filter((q) => q.targetId === target).map((q) => q.ageSeconds);
          this.set({ target }, Math.max(0, ...ages));
        }
      });
    },
  });
  new Gauge({
    name: 'hookrelay_redis_up',
    help: '1 when Redis answered a PING during this scrape, else 0 (the queue gauges are then absent)',
    registers: [registry],
    async collect() {
      this.set((await redisAnswers(deps.redis)) ? 1 : 0);
    },
  });
  new Gauge({
    name: 'hookrelay_redis_memory_used_bytes',
    help: 'Memory Redis uses (INFO used_memory), summed over the primaries of a cluster',
    registers: [registry],
    async collect() {
      await readFromRedis(this, async () => {
        const redis = deps.redis;
        const primaries = redis instanceof Cluster ? redis.nodes('master') : [redis];
        const used = await Promise.all(
          primaries.map(async (node) =>
            Number(/^used_memory:(\d+)/m.exec(await node.info('memory'))?.[1] ?? 0),
          ),
        );
        this.set(used.reduce((sum, bytes) => sum + bytes, 0));
      });
    },
  });
  new Gauge({
    name: 'hookrelay_suppressed_deliveries',
    help: 'Deliveries held back by the loop guard and not released yet',
    registers: [registry],
    async collect() {
      await readFromRedis(this, async () => {
        this.set(await deps.redis.zcard(deps.keys.suppressed));
      });
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
