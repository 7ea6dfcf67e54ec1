import { type Link, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import type { StoredEvent } from '../queue/event-store.js';
import { activeTracer, parseTraceparent, traceparentOf } from './tracing.js';

/** One delivery attempt's span: its traceparent goes to the target, its outcome is set when the answer is in. */
export interface DeliverySpan {
  traceparent: string;
  end(outcome: string, status?: number): void;
}

/**
 * Starts the span of one HTTP attempt to a target, linked to the ingress request that stored the event (a
 * link, not a parent: the attempt may run hours later, after retries, in another process). Undefined when
 * tracing is off.
 */
export function startDeliverySpan(
  event: StoredEvent,
  targetId: string,
  attempt: number,
): DeliverySpan | undefined {
  const tracer = activeTracer();
  if (!tracer) return undefined;
  const ingress = parseTraceparent(event.traceparent);
  const links: Link[] = ingress ? [{ context: ingress }] : [];
  const span = tracer.startSpan(`deliver to ${targetId}`, {
    kind: SpanKind.CLIENT,
    links,
    attributes: {
      'hookrelay.event_id': event.id,
      'hookrelay.source': event.sourceId,
      'hookrelay.target': targetId,
      'hookrelay.attempt': attempt,
      'bitbucket.event_key': event.envelope.eventKey,
      ...(event.envelope.repository ? { 'vcs.repository.name': event.envelope.repository } : {}),
    },
  });
  return {
    traceparent: traceparentOf(span.spanContext()),
    end(outcome, status) {
      span.setAttribute('hookrelay.outcome', outcome);
      if (status !== undefined) span.setAttribute('http.response.status_code', status);
      // Not applicable is a settled outcome like delivered: nothing failed.
      if (outcome !== 'delivered' && outcome !== 'not-applicable')
        span.setStatus({ code: SpanStatusCode.ERROR, message: outcome });
      span.end();
    },
  };
}
