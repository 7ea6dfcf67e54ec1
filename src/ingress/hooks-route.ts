import { createHash } from 'node:crypto';
import type { Span } from '@opentelemetry/api';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { DELIVERY_ID_HEADER, isWellFormedEventKey } from '../bitbucket/event-keys.js';
import { RELAY_TEST_EVENT_KEY } from '../bitbucket/relay-test-event.js';
import { verifySignature } from '../bitbucket/signature.js';
import type { SourceConfig } from '../config/types.js';
import { ERRORS, type ErrorCode } from '../errors/index.js';
import type { AppendResult } from '../queue/event-store.js';
import { isReady } from '../queue/redis-connection.js';
import { HOP_HEADER, hasPassedThisRelay } from '../relay/hop-marker.js';
import {
  endIngressSpan,
  ingressTraceparent,
  startIngressSpan,
  tracedStore,
} from '../tracing/ingress-span.js';
import { newEventId } from './event-id.js';
import type { IngressDeps } from './ingress-deps.js';
import { repositoryHint } from './repository-hint.js';

/** The Bitbucket headers a target gets back byte for byte; everything else (Authorization first) is dropped. */
const FORWARDED_HEADERS = [
  'content-type',
  'user-agent',
  'x-event-key',
  'x-request-uuid',
  'x-request-id',
  'x-hook-uuid',
  'x-attempt-number',
  'x-hub-signature',
  HOP_HEADER,
] as const;

const JSON_CONTENT_TYPE = /^application\/(?:json|[\w.+-]+\+json)\s*(?:;|$)/i;

/** What the one log line, the metrics and the trace span of a webhook request say. */
interface WebhookOutcome {
  source?: string;
  eventKey?: string;
  deliveryId?: string;
  eventId?: string;
  outcome?: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    webhookOutcome: WebhookOutcome;
    /** The source the request's path names, once looked up. */
    webhookSource?: SourceConfig;
    /** The request's trace span, when tracing is on. */
    webhookSpan?: Span;
  }
}

function header(req: FastifyRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function reject(
  req: FastifyRequest,
  reply: FastifyReply,
  code: ErrorCode,
  message?: string,
  retryAfter?: number,
) {
  req.webhookOutcome.outcome = code;
  const status = ERRORS[code].status;
  if (retryAfter !== undefined) reply.header('retry-after', String(retryAfter));
  return reply
    .code(status)
    .send({ error: code, message: status >= 500 || !message ? ERRORS[code].message : message });
}

export async function hooksRoute(app: FastifyInstance, deps: IngressDeps): Promise<void> {
  const { config, store, metrics } = deps;
  const sources = new Map(config.sources.map((s) => [s.id, s]));

  // Raw bytes in, always: the signature is computed over exactly what Bitbucket sent, and targets get them back.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(
    '*',
    { parseAs: 'buffer', bodyLimit: config.ingress.bodyLimit },
    (_req, body, done) => done(null, body),
  );

  app.decorateRequest('webhookOutcome', null as unknown as WebhookOutcome);
  app.addHook('onRequest', async (req) => {
    req.webhookOutcome = {};
    req.webhookSpan = startIngressSpan();
  });

  app.addHook('onResponse', async (req, reply) => {
    const outcome = req.webhookOutcome;
    const source = outcome.source ?? 'unknown';
    metrics.ingressRequests.inc({ source, outcome: outcome.outcome ?? String(reply.statusCode) });
    metrics.ingressDuration.observe({ source }, reply.elapsedTime / 1000);
    if (req.webhookSpan) endIngressSpan(req.webhookSpan, outcome, reply.statusCode);
    // One line per request; never headers, body or signature.
    req.log.info(
      {
        ip: req.ip,
        source: outcome.source,
        eventKey: outcome.eventKey,
        deliveryId: outcome.deliveryId,
        eventId: outcome.eventId,
        outcome: outcome.outcome,
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime * 10) / 10,
      },
      'webhook',
    );
  });

  app.post<{ Params: { sourceId: string } }>(
    '/hooks/:sourceId',
    {
      bodyLimit: config.ingress.bodyLimit,
      // Cheap checks before a single body byte is read.
      onRequest: async (req, reply) => {
        const source = sources.get(req.params.sourceId);
        if (!source) return reject(req, reply, 'SOURCE_NOT_FOUND', `no source "${req.params.sourceId}"`);
        req.webhookSource = source;
        req.webhookOutcome.source = source.id;
        req.webhookOutcome.eventKey = header(req, 'x-event-key')?.slice(0, 64);
        // The id is known once Redis has answered; until then the check waits for the body (below).
        const relayId = deps.relayId.known;
        if (relayId && hasPassedThisRelay(relayId, req.headers)) return reject(req, reply, 'LOOP_DETECTED');
        const length = Number(header(req, 'content-length') ?? 0);
        if (length > config.ingress.bodyLimit) return reject(req, reply, 'PAYLOAD_TOO_LARGE');
        const type = header(req, 'content-type');
        if (!type || !JSON_CONTENT_TYPE.test(type)) {
          return reject(req, reply, 'UNSUPPORTED_MEDIA_TYPE', 'content type must be application/json');
        }
      },
    },
    async (req, reply) => {
      const source = req.webhookSource!;
      const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      const eventKey = header(req, 'x-event-key');

      // 2. Signature over the raw bytes. Data Center's "Test connection" comes unsigned.
      const signature = header(req, 'x-hub-signature');
      if (source.platform === 'datacenter' && eventKey === 'diagnostics:ping' && !signature) {
        req.webhookOutcome.outcome = 'ping';
        return reply.code(200).send({ ok: true, ping: true });
      }
      const check = verifySignature(signature, body, source.secrets);
      if (check === 'missing') return reject(req, reply, 'SIGNATURE_MISSING');
      if (check === 'unsupported-algorithm') return reject(req, reply, 'SIGNATURE_ALGORITHM_UNSUPPORTED');
      if (check !== 'ok') return reject(req, reply, 'SIGNATURE_INVALID');
      // The CLI's signed end-to-end check: answered here, never stored, so it reaches no target.
      if (eventKey === RELAY_TEST_EVENT_KEY) {
        req.webhookOutcome.outcome = 'test';
        return reply.code(200).send({ ok: true, test: true, source: source.id });
      }

      // 3. Headers. Past the signature nothing authentic is refused for its shape: the body is not even read
      // here (the fan-out parses it, and quarantines what it cannot route); an unknown key is routed as `other`.
      if (!eventKey) return reject(req, reply, 'HEADER_MISSING', 'X-Event-Key header is missing');
      if (!isWellFormedEventKey(eventKey)) return reject(req, reply, 'EVENT_KEY_MALFORMED');
      if (eventKey === 'diagnostics:ping') {
        req.webhookOutcome.outcome = 'ping';
        return reply.code(200).send({ ok: true, ping: true });
      }
      const idHeader = DELIVERY_ID_HEADER[source.platform];
      const deliveryId = header(req, idHeader);
      if (!deliveryId || deliveryId.length > 128 || !/^[\w{}.:-]+$/.test(deliveryId)) {
        return reject(req, reply, 'HEADER_MISSING', `${idHeader} header is missing or malformed`);
      }
      req.webhookOutcome.deliveryId = deliveryId;

      if (!isReady(deps.redis)) return reject(req, reply, 'QUEUE_UNAVAILABLE', undefined, 2);
      if (!deps.relayId.known) {
        let relayId: string;
        try {
          relayId = await deps.relayId.get();
        } catch {
          return reject(req, reply, 'QUEUE_UNAVAILABLE', undefined, 2);
        }
        if (hasPassedThisRelay(relayId, req.headers)) return reject(req, reply, 'LOOP_DETECTED');
      }

      // 4. One append: dedupe on the delivery id and the body's bytes, the received event, its inbox entry.
      const headers: Record<string, string> = {};
      for (const name of FORWARDED_HEADERS) {
        const v = header(req, name);
        if (v !== undefined) headers[name] = v;
      }
      const bodyHash = createHash('sha256').update(body).digest('base64url');
      const receivedAt = Date.now();
      // On a cluster the event goes to its repository's shard (keys.ts); without one there is one shard.
      const shard =
        deps.keys.shards > 1
          ? deps.keys.inboxShardOf(source.id, repositoryHint(source.platform, body), bodyHash)
          : 0;
      const id = deps.keys.shards > 1 ? newEventId(receivedAt, shard) : newEventId();
      let appended: AppendResult;
      try {
        appended = await tracedStore(req.webhookSpan, () =>
          store.append({
            id,
            sourceId: source.id,
            platform: source.platform,
            eventKey,
            deliveryId,
            bodyHash,
            receivedAt,
            headers,
            body,
            clientIp: req.ip,
            traceparent: ingressTraceparent(req.webhookSpan),
          }),
        );
      } catch (err) {
        // Nothing was written (the script is atomic), or it is written but not yet durable: either way
        // Bitbucket's retry of the same delivery is stored, or answered as a copy once durable.
        req.log.warn({ err: (err as Error).message, eventId: id }, 'event store failed');
        return reject(req, reply, 'QUEUE_UNAVAILABLE', undefined, 2);
      }
      if (appended.state === 'duplicate') {
        req.webhookOutcome.outcome = 'duplicate';
        req.webhookOutcome.eventId = appended.id;
        metrics.ingressDuplicates.inc({ source: source.id });
        return reply.code(200).send({ id: appended.id, duplicate: true });
      }
      req.webhookOutcome.eventId = id;
      req.webhookOutcome.outcome = 'accepted';
      return reply.code(202).send({ id, duplicate: false, state: 'received' });
    },
  );
}
