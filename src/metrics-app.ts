import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import { installErrorHandlers } from './errors/index.js';
import { healthRoutes } from './health-routes.js';
import type { Runtime } from './runtime.js';

/**
 * Counters belong to the process that did the work. The ingress serves its own on its port; a worker-only
 * process serves its delivery counters, latency histograms and circuit state here (`worker.metricsPort`),
 * unauthenticated like most Prometheus targets, so bind it to a private address.
 */
export function addMetricsRoute(app: FastifyInstance, runtime: Pick<Runtime, 'metrics'>): void {
  app.get('/metrics', async (_req, reply) => {
    reply.header('content-type', runtime.metrics.registry.contentType);
    return runtime.metrics.registry.metrics();
  });
}

export function buildWorkerMetricsApp(runtime: Runtime): FastifyInstance {
  const app = Fastify({
    loggerInstance: runtime.log.child({ role: 'worker-metrics' }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
  });
  installErrorHandlers(app);
  healthRoutes(app, runtime.redis);
  addMetricsRoute(app, runtime);
  return app;
}
