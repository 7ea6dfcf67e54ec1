import { HOP_HEADER } from '../../relay/hop-marker.js';
import { type OutgoingRequest, type RequestContext, relayHeaders } from '../relay-headers.js';

/**
 * The `http` target: the original bytes and Bitbucket headers, so a Jenkins plugin behind the relay verifies
 * the original signature and routes as if Bitbucket had called it, plus the relay's own headers. Configured
 * `headers` come first so they can never replace a Bitbucket header.
 */
export function buildHttpRequest(ctx: RequestContext): OutgoingRequest {
  const { [HOP_HEADER]: _hop, ...original } = ctx.event.headers;
  return {
    url: ctx.target.url,
    method: 'POST',
    headers: { ...lower(ctx.target.headers), ...original, ...relayHeaders(ctx) },
    body: ctx.event.body,
  };
}

export function lower(headers: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers ?? {})) out[k.toLowerCase()] = v;
  return out;
}
