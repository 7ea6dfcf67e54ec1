import type { FastifyError, FastifyInstance } from 'fastify';
import { ERRORS, type ErrorCode, RelayError } from './errors.js';

function codeForStatus(status: number): ErrorCode {
  if (status === 413) return 'PAYLOAD_TOO_LARGE';
  if (status === 415) return 'UNSUPPORTED_MEDIA_TYPE';
  if (status === 404) return 'NOT_FOUND';
  if (status === 401) return 'UNAUTHORIZED';
  if (status === 403) return 'FORBIDDEN';
  if (status >= 400 && status < 500) return 'BAD_REQUEST';
  return 'INTERNAL';
}

// What ioredis says when Redis (or a cluster slot's primary) cannot take a command right now: the answer is
// "try again", not "bug".
const REDIS_UNAVAILABLE =
  /enableOfflineQueue|Connection is closed|Command timed out|max retries per request|ECONNREFUSED|Cluster isn't ready|Failed to refresh slots cache|Too many Cluster redirections|CLUSTERDOWN|^LOADING|^READONLY|^TRYAGAIN|^MASTERDOWN|^NOREPLICAS/i;

export function isRedisUnavailable(err: unknown): boolean {
  return (
    err instanceof Error && (err.name === 'MaxRetriesPerRequestError' || REDIS_UNAVAILABLE.test(err.message))
  );
}

/** Every error answer, Fastify's own included, becomes `{"error": CODE, "message": …}` from the catalogue. */
export function installErrorHandlers(app: FastifyInstance): void {
  app.setNotFoundHandler((req, reply) => {
    reply.code(404).send({ error: 'NOT_FOUND', message: `no route ${req.method} ${req.url.split('?')[0]}` });
  });
  app.setErrorHandler((err: FastifyError | RelayError, req, reply) => {
    if (err instanceof RelayError) {
      if (err.retryAfter !== undefined) reply.header('retry-after', String(err.retryAfter));
      if (err.status >= 500) req.log.error({ err }, err.code);
      return reply.code(err.status).send(err.toBody());
    }
    const status = typeof err.statusCode === 'number' && err.statusCode >= 400 ? err.statusCode : 500;
    const code = codeForStatus(status);
    if (status === 500 && isRedisUnavailable(err)) {
      req.log.warn({ err: err.message }, 'redis unavailable');
      reply.header('retry-after', '2');
      return reply.code(503).send({ error: 'QUEUE_UNAVAILABLE', message: ERRORS.QUEUE_UNAVAILABLE.message });
    }
    if (status >= 500) {
      req.log.error({ err }, 'unhandled error');
      return reply.code(500).send({ error: 'INTERNAL', message: ERRORS.INTERNAL.message });
    }
    if (req.hr) req.hr.outcome = code;
    return reply.code(status).send({ error: code, message: err.message || ERRORS[code].message });
  });
}
