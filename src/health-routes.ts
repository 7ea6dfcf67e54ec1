import type { FastifyInstance, RouteShorthandOptions } from 'fastify';
import { type RedisClient, redisAnswers } from './queue/redis-connection.js';

/**
 * Liveness and readiness as every role serves them (ingress, admin, a worker's metrics port), so probes and
 * load balancers read one meaning: /healthz = the process answers; /readyz = it can reach Redis now.
 */
export function healthRoutes(
  app: FastifyInstance,
  redis: RedisClient,
  routeOptions: RouteShorthandOptions = {},
): void {
  app.get('/healthz', routeOptions, async () => ({ ok: true }));
  app.get('/readyz', routeOptions, async (_req, reply) => {
    if (await redisAnswers(redis)) return { ok: true };
    return reply
      .code(503)
      .header('retry-after', '2')
      .send({ error: 'NOT_READY', message: 'redis unreachable' });
  });
}
