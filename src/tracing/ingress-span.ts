import { context, type Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { activeTracer, traceparentOf } from './tracing.js';

/** What the ingress knows of a request when it answers: the span's attributes (ids and codes, never payload). */
export interface IngressSpanFacts {
  source?: string;
  eventKey?: string;
  eventId?: string;
  outcome?: string;
  targets?: number;
}

/**
 * The span of one webhook request, from its first byte to the answer: verify, validate and the durable write
 * (a child span) happen inside it. Undefined when tracing is off.
 */
export function startIngressSpan(): Span | undefined {
  return activeTracer()?.startSpan('POST /hooks/{sourceId}', {
    kind: SpanKind.SERVER,
    attributes: { 'http.request.method': 'POST', 'http.route': '/hooks/:sourceId' },
  });
}

export function endIngressSpan(span: Span, facts: IngressSpanFacts, status: number): void {
  span.setAttributes({
    'http.response.status_code': status,
    ...(facts.source ? { 'hookrelay.source': facts.source } : {}),
    ...(facts.eventKey ? { 'bitbucket.event_key': facts.eventKey } : {}),
    ...(facts.eventId ? { 'hookrelay.event_id': facts.eventId } : {}),
    ...(facts.outcome ? { 'hookrelay.outcome': facts.outcome } : {}),
    ...(facts.targets !== undefined ? { 'hookrelay.targets': facts.targets } : {}),
  });
  if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR, message: facts.outcome ?? String(status) });
  span.end();
}

/** Runs the durable write as a child span of the request; the event keeps the request span's traceparent. */
export async function tracedStore<T>(parent: Span | undefined, write: () => Promise<T>): Promise<T> {
  const tracer = activeTracer();
  if (!parent || !tracer) return write();
  const span = tracer.startSpan('store event', {}, trace.setSpan(context.active(), parent));
  try {
    return await write();
  } catch (err) {
    span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
    throw err;
  } finally {
    span.end();
  }
}

export function ingressTraceparent(span: Span | undefined): string | undefined {
  return span ? traceparentOf(span.spanContext()) : undefined;
}
