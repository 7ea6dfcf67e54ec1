import type { TargetConfig } from '../config/types.js';
import { nextHopHeader, viaToken } from '../ingress/hop-marker.js';
import type { StoredEvent } from '../queue/event-store.js';
import type { DeliveryJobData } from '../queue/job-types.js';

export interface OutgoingRequest {
  url: string;
  method: 'POST';
  headers: Record<string, string>;
  body: Buffer;
}

/**
 * The `http` target: the original bytes and Bitbucket headers, so a Jenkins plugin behind the relay verifies
 * the original signature and routes as if Bitbucket had called it, plus the relay's own headers.
 */
export function buildHttpRequest(
  target: TargetConfig,
  event: StoredEvent,
  job: DeliveryJobData,
  attempt: number,
  relayId: string,
): OutgoingRequest {
  const { 'x-hookrelay-hop': incomingHop, ...original } = event.headers;
  const headers: Record<string, string> = {
    ...target.headers,
    ...original,
    'idempotency-key': job.k,
    'x-hookrelay-event': event.id,
    'x-hookrelay-attempt': String(attempt),
    'x-hookrelay-source': event.sourceId,
    'x-hookrelay-hop': nextHopHeader(relayId, incomingHop),
    via: `1.1 ${viaToken(relayId)}`,
  };
  return { url: target.url, method: 'POST', headers, body: event.body };
}
