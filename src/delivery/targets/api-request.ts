import { type OutgoingRequest, type RequestContext, relayHeaders } from '../relay-headers.js';
import { lower } from './http.js';

// GitHub refuses API requests without a User-Agent; the others log it. One name for every API target.
const USER_AGENT = 'hookrelay';

/**
 * A request to a CI system's own API (not a webhook replay): configured headers first, then the content type and
 * Accept that API documents, then the relay's headers.
 */
export function apiRequest(
  ctx: RequestContext,
  o: { url?: string; contentType?: string; accept: string; body: Buffer; headers?: Record<string, string> },
): OutgoingRequest {
  return {
    url: o.url ?? ctx.target.url,
    method: 'POST',
    headers: {
      ...lower(ctx.target.headers),
      'user-agent': USER_AGENT,
      accept: o.accept,
      ...(o.contentType ? { 'content-type': o.contentType } : { 'content-length': String(o.body.length) }),
      ...o.headers,
      ...relayHeaders(ctx),
    },
    body: o.body,
  };
}

export function jsonBody(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value));
}
