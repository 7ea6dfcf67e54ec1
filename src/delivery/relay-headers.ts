import type { TargetConfig } from '../config/types.js';
import type { StoredEvent } from '../queue/event-store.js';
import { HOP_HEADER, nextHopHeader, viaToken } from '../relay/hop-marker.js';
import type { DeliveryJobData } from '../relay/job-types.js';

export interface OutgoingRequest {
  url: string;
  method: 'POST' | 'GET';
  headers: Record<string, string>;
  body: Buffer;
  /** Tells apart the messages of one delivery that sends several (one build per ref): their webhook-id. */
  part?: string;
  /**
   * For a request that is not idempotent at the target (it creates a build): before any retry, a look-up
   * whose 2xx answer says whether an earlier attempt already did it (the request is then not sent again).
   */
  alreadyDone?: { request: OutgoingRequest; found(body: string): boolean };
}

/** A request that needs no call: the event carries nothing the target could act on (e.g. a deleted branch). */
export interface NothingToSend {
  skip: string;
}

/**
 * A request that needs something from the target first (Bamboo: a plan branch's key from the branch's name).
 * `lookup` is a GET, sent with the target's auth; `afterLookup` gets its status and (2xx) body and says what to
 * send, undefined when the look-up's own answer is the outcome (a 401, a 5xx: classified like any answer), or
 * `refuse` for an answer that cannot be used (a dead letter with that reason).
 */
export interface LookupFirst {
  lookup: OutgoingRequest & { method: 'GET' };
  afterLookup(status: number, body: string): OutgoingRequest | NothingToSend | { refuse: string } | undefined;
}

export interface RequestContext {
  target: TargetConfig;
  event: StoredEvent;
  job: DeliveryJobData;
  attempt: number;
  relayId: string;
}

/**
 * Headers every delivery carries whatever the target type: the idempotency key (stable for an event×target),
 * what the relay knows about the event, and the hop marker that stops relay chains from looping.
 */
export function relayHeaders(ctx: RequestContext): Record<string, string> {
  return {
    'idempotency-key': ctx.job.idempotencyKey,
    'x-hookrelay-event': ctx.event.id,
    'x-hookrelay-attempt': String(ctx.attempt),
    'x-hookrelay-source': ctx.event.sourceId,
    [HOP_HEADER]: nextHopHeader(ctx.relayId, ctx.event.headers[HOP_HEADER]),
    via: `1.1 ${viaToken(ctx.relayId)}`,
  };
}
