import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance } from 'fastify';
import { ERRORS, type ErrorCode } from './catalogue.js';
import { RelayError } from './relay-error.js';

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
    if (req.webhookOutcome) req.webhookOutcome.outcome = code;
    return reply.code(status).send({ error: code, message: err.message || ERRORS[code].message });
  });
}

const CLIENT_ERRORS = {
  REQUEST_TIMEOUT: { status: 408, reason: 'Request Timeout', message: ERRORS.REQUEST_TIMEOUT.message },
  HEAD_TOO_LARGE: {
    status: 431,
    reason: 'Request Header Fields Too Large',
    message: 'request head too large',
  },
  MALFORMED: { status: 400, reason: 'Bad Request', message: 'malformed HTTP request' },
} as const;

/** An answer written straight to the socket, which is then closed: the request can no longer be read. */
function answerAndClose(socket: Socket, kind: keyof typeof CLIENT_ERRORS): void {
  const { status, reason, message } = CLIENT_ERRORS[kind];
  const code: ErrorCode = kind === 'REQUEST_TIMEOUT' ? 'REQUEST_TIMEOUT' : 'BAD_REQUEST';
  const body = JSON.stringify({ error: code, message });
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}

/**
 * Errors Node raises on the connection itself, before a request is handed over (a head too large, malformed
 * HTTP, Node's own request timeout): answered in the catalogue's JSON like every other error, then closed.
 */
export function answerClientError(this: FastifyInstance, err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  this.log.info({ err: err.code ?? err.message }, 'client connection error');
  answerAndClose(
    socket,
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? 'REQUEST_TIMEOUT'
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? 'HEAD_TOO_LARGE'
        : 'MALFORMED',
  );
}

/**
 * The whole request, body included, within `timeoutMs` of its head: 408 and the connection closed otherwise.
 * Node's own requestTimeout does not hold once the head is in and a handler reads the body (a byte every 2 s
 * kept a request open for minutes), and the idle timeout never fires on a body that keeps trickling.
 */
export function installBodyDeadline(app: FastifyInstance, timeoutMs: number): void {
  app.addHook('onRequest', (req, reply, done) => {
    const timer = setTimeout(() => {
      if (req.raw.complete || reply.sent) return;
      req.log.info({ url: req.url.split('?')[0], timeoutMs }, 'request body not received in time');
      answerAndClose(req.raw.socket, 'REQUEST_TIMEOUT');
    }, timeoutMs);
    // A deadline never keeps the process alive on its own (shutdown waits for requests, not for timers).
    timer.unref();
    reply.raw.once('close', () => clearTimeout(timer));
    done();
  });
}
