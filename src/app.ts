import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import { answerClientError, installBodyDeadline, installErrorHandlers } from './errors/index.js';
import { healthRoutes } from './health-routes.js';
import { hooksRoute } from './ingress/hooks-route.js';
import type { IngressDeps } from './ingress/ingress-deps.js';
import { addMetricsRoute } from './metrics-app.js';

/** The whole request, head and body, must have arrived within this time. */
export const INGRESS_REQUEST_TIMEOUT_MS = 15_000;

/**
 * The ingress as a Fastify instance, without listening: tests build it on port 0 or inject into it, the
 * process start (server.ts) listens. Request logging is ours (one line per webhook), not Fastify's two.
 */
export function buildIngressApp(deps: IngressDeps): FastifyInstance {
  const app = Fastify({
    loggerInstance: deps.log.child({ role: 'ingress' }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    trustProxy: deps.config.ingress.trustProxy,
    bodyLimit: deps.config.ingress.bodyLimit,
    // Bitbucket Data Center's breaker counts slow answers as failures: never keep it waiting long.
    connectionTimeout: 30_000,
    requestTimeout: INGRESS_REQUEST_TIMEOUT_MS,
    clientErrorHandler: answerClientError,
    keepAliveTimeout: 5_000,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
  });
  installErrorHandlers(app);
  installBodyDeadline(app, INGRESS_REQUEST_TIMEOUT_MS);

  healthRoutes(app, deps.redis);

  // This instance's own counters (requests by source and outcome, durations). HAProxy does not route it: scrape
  // each ingress directly.
  addMetricsRoute(app, deps);
  app.register(async (scope) => hooksRoute(scope, deps));
  return app;
}
