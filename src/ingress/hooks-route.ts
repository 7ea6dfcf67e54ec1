import { isUtf8 } from 'node:buffer';
import type { Span } from '@opentelemetry/api';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  DELIVERY_ID_HEADER,
  eventFamily,
  isKnownEventKey,
  isWellFormedEventKey,
} from '../bitbucket/event-keys.js';
import { MAX_JSON_DEPTH, nestsDeeperThan } from '../bitbucket/json-depth.js';
import { normalise } from '../bitbucket/normalise.js';
import { validatePayload } from '../bitbucket/payload-schemas.js';
import type { TypeProblems } from '../bitbucket/read-typed.js';
import { RELAY_TEST_EVENT_KEY } from '../bitbucket/relay-test-event.js';
import { safeJsonParse } from '../bitbucket/safe-json.js';
import { verifySignature } from '../bitbucket/signature.js';
import { apiAuthorization } from '../bitbucket-api/commit-message.js';
import type { SourceConfig } from '../config/types.js';
import { ERRORS, type ErrorCode } from '../errors/index.js';
import type { StoredEvent, StoreResult } from '../queue/event-store.js';
import { isReady } from '../queue/redis-connection.js';
import { HOP_HEADER, hasPassedThisRelay } from '../relay/hop-marker.js';
import { eventGuard, missingMessage, StaticLoopRules } from '../relay/loop-rules.js';
import {
  endIngressSpan,
  ingressTraceparent,
  startIngressSpan,
  tracedStore,
} from '../tracing/ingress-span.js';
import { dedupeKeys } from './dedupe-keys.js';
import { newEventId } from './event-id.js';
import type { IngressDeps } from './ingress-deps.js';
import { UnknownKeyCounter } from './unknown-keys.js';

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

/** What the one log line and the metrics of a request say. */
interface Outcome {
  source?: string;
  eventKey?: string;
  deliveryId?: string;
  eventId?: string;
  outcome?: string;
  targets?: number;
  /** The event key is well formed but not one the relay knows. */
  unknownKey?: boolean;
  /** Why a signed event was quarantined (a field path and the expected type; never a value). */
  quarantine?: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    hr: Outcome;
    hrSource?: SourceConfig;
    /** The request's trace span, when tracing is on. */
    hrSpan?: Span;
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
  req.hr.outcome = code;
  const status = ERRORS[code].status;
  if (retryAfter !== undefined) reply.header('retry-after', String(retryAfter));
  return reply
    .code(status)
    .send({ error: code, message: status >= 500 || !message ? ERRORS[code].message : message });
}

export async function hooksRoute(app: FastifyInstance, deps: IngressDeps): Promise<void> {
  const { config, store, router, metrics } = deps;
  const sources = new Map(config.sources.map((s) => [s.id, s]));
  const loopRules = new StaticLoopRules(config.loop);
  const unknownKeys = new UnknownKeyCounter(metrics);
  // Sources already warned about pushes without commit messages (skip markers cannot be read in them).
  const warnedNoMessage = new Set<string>();

  // Raw bytes in, always: the signature is computed over exactly what Bitbucket sent, and targets get them back.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(
    '*',
    { parseAs: 'buffer', bodyLimit: config.ingress.bodyLimit },
    (_req, body, done) => done(null, body),
  );

  app.decorateRequest('hr', null as unknown as Outcome);
  app.addHook('onRequest', async (req) => {
    req.hr = {};
    req.hrSpan = startIngressSpan();
  });

  app.addHook('onResponse', async (req, reply) => {
    const hr = req.hr;
    const source = hr.source ?? 'unknown';
    metrics.ingressRequests.inc({ source, outcome: hr.outcome ?? String(reply.statusCode) });
    metrics.ingressDuration.observe({ source }, reply.elapsedTime / 1000);
    if (req.hrSpan) endIngressSpan(req.hrSpan, hr, reply.statusCode);
    // One line per request; never headers, body or signature.
    req.log.info(
      {
        ip: req.ip,
        source: hr.source,
        eventKey: hr.eventKey,
        deliveryId: hr.deliveryId,
        eventId: hr.eventId,
        targets: hr.targets,
        unknownKey: hr.unknownKey,
        quarantine: hr.quarantine,
        outcome: hr.outcome,
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
        req.hrSource = source;
        req.hr.source = source.id;
        req.hr.eventKey = header(req, 'x-event-key')?.slice(0, 64);
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
      const source = req.hrSource!;
      const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      const eventKey = header(req, 'x-event-key');

      // 2. Signature over the raw bytes. Data Center's "Test connection" comes unsigned.
      const signature = header(req, 'x-hub-signature');
      if (source.platform === 'datacenter' && eventKey === 'diagnostics:ping' && !signature) {
        req.hr.outcome = 'ping';
        return reply.code(200).send({ ok: true, ping: true });
      }
      const check = verifySignature(signature, body, source.secrets);
      if (check === 'missing') return reject(req, reply, 'SIGNATURE_MISSING');
      if (check === 'unsupported-algorithm') return reject(req, reply, 'SIGNATURE_ALGORITHM_UNSUPPORTED');
      if (check !== 'ok') return reject(req, reply, 'SIGNATURE_INVALID');
      // The CLI's signed end-to-end check: answered here, never stored, so it reaches no target.
      if (eventKey === RELAY_TEST_EVENT_KEY) {
        req.hr.outcome = 'test';
        return reply.code(200).send({ ok: true, test: true, source: source.id });
      }

      // 3. Headers, then the body.
      if (!eventKey) return reject(req, reply, 'HEADER_MISSING', 'X-Event-Key header is missing');
      // Past the signature nothing authentic is refused for its shape: an unknown key is stored (family other).
      if (!isWellFormedEventKey(eventKey)) return reject(req, reply, 'EVENT_KEY_MALFORMED');
      const known = isKnownEventKey(source.platform, eventKey);
      if (eventKey === 'diagnostics:ping') {
        req.hr.outcome = 'ping';
        return reply.code(200).send({ ok: true, ping: true });
      }
      const idHeader = DELIVERY_ID_HEADER[source.platform];
      const deliveryId = header(req, idHeader);
      if (!deliveryId || deliveryId.length > 128 || !/^[\w{}.:-]+$/.test(deliveryId)) {
        return reject(req, reply, 'HEADER_MISSING', `${idHeader} header is missing or malformed`);
      }
      req.hr.deliveryId = deliveryId;
      if (!isUtf8(body)) return reject(req, reply, 'BODY_INVALID_JSON', 'body is not valid UTF-8');
      if (nestsDeeperThan(body)) {
        return reject(req, reply, 'BODY_TOO_DEEP', `body nests deeper than ${MAX_JSON_DEPTH} levels`);
      }
      let payload: unknown;
      try {
        payload = safeJsonParse(body.toString('utf8'));
      } catch {
        return reject(req, reply, 'BODY_INVALID_JSON', 'body is not valid JSON');
      }
      // A body of unexpected shape or field types is stored but quarantined (not routed) until ops decide.
      const problems: TypeProblems = {};
      problems.first =
        validatePayload(source.platform, eventFamily(source.platform, eventKey), payload) ?? undefined;

      // 4. One envelope for both platforms.
      const attemptHeader = header(req, 'x-attempt-number');
      const hookId = header(req, 'x-hook-uuid');
      const envelope = normalise(
        {
          platform: source.platform,
          eventKey,
          deliveryId,
          payload,
          ...(hookId ? { hookId } : {}),
          ...(attemptHeader && /^\d{1,3}$/.test(attemptHeader) ? { attempt: Number(attemptHeader) } : {}),
        },
        problems,
      );
      const quarantine = problems.first;

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

      // 5. Dedupe on the delivery id and on the content, 6. route, 7. store event and jobs before answering.
      const targets = quarantine === undefined ? router.match(source.id, envelope).targets : [];
      const headers: Record<string, string> = {};
      for (const name of FORWARDED_HEADERS) {
        const v = header(req, name);
        if (v !== undefined) headers[name] = v;
      }
      const shard = deps.keys.shardOf(source.id, envelope.repository);
      // Older Data Center servers send refs only: with API access the worker reads the message, else say so once.
      const lookup = missingMessage(envelope);
      if (lookup) {
        metrics.commitMessageMissing.inc({ source: source.id });
        if (!apiAuthorization(source) && !warnedNoMessage.has(source.id)) {
          warnedNoMessage.add(source.id);
          req.log.warn(
            { source: source.id },
            'pushes of this source carry no commit message: skip markers cannot apply (set sources[].api)',
          );
        }
      }
      const receivedAt = Date.now();
      const event: StoredEvent = {
        id: deps.keys.shards > 1 ? newEventId(receivedAt, shard) : newEventId(),
        sourceId: source.id,
        receivedAt,
        envelope,
        headers,
        body,
        targets,
        clientIp: req.ip,
        guard: eventGuard(loopRules, envelope, source, receivedAt),
        traceparent: ingressTraceparent(req.hrSpan),
        ...(quarantine === undefined ? {} : { quarantine }),
      };
      const dedupe = dedupeKeys(deps.keys, config.ingress.dedupe, {
        sourceId: source.id,
        deliveryId,
        envelope,
        body,
        shard,
        requestOnly: quarantine !== undefined,
      });
      let stored: StoreResult;
      try {
        stored = await tracedStore(req.hrSpan, () => store.store(event, dedupe));
      } catch (err) {
        // Nothing was written (the script is atomic), or it is written but not yet durable: either way
        // Bitbucket's retry of the same delivery is stored, or answered as a copy once durable.
        req.log.warn({ err: (err as Error).message, eventId: event.id }, 'event store failed');
        return reject(req, reply, 'QUEUE_UNAVAILABLE', undefined, 2);
      }
      if (stored.state === 'duplicate') {
        req.hr.outcome = 'duplicate';
        req.hr.eventId = stored.id;
        metrics.ingressDuplicates.inc({ source: source.id });
        return reply.code(200).send({ id: stored.id, duplicate: true });
      }
      const eventId = event.id;
      req.hr.eventId = eventId;
      req.hr.targets = targets.length;
      if (!known) {
        req.hr.unknownKey = true;
        unknownKeys.count(source.id, eventKey);
      }
      if (quarantine !== undefined) {
        req.hr.outcome = 'quarantined';
        req.hr.quarantine = quarantine;
        metrics.ingressQuarantined.inc({ source: source.id });
        return reply.code(202).send({ id: eventId, duplicate: false, quarantined: true, targets });
      }
      req.hr.outcome = 'accepted';
      if (stored.repeated.length === 0)
        return reply.code(202).send({ id: eventId, duplicate: false, targets });
      const repeatedRefs = stored.repeated.map((i) => envelope.refs[i]?.name);
      return reply.code(202).send({ id: eventId, duplicate: false, targets, repeatedRefs });
    },
  );
}
