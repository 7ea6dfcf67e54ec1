import type { TargetType } from '../config/types.js';
import { parseRetryAfter } from './backoff.js';
import { buildkiteRetryAfterMs } from './targets/buildkite.js';

export type Verdict =
  | { kind: 'delivered' }
  | { kind: 'retry'; reason: string }
  | { kind: 'permanent'; reason: string };

// Statuses that say "not now" rather than "never".
const RETRYABLE_4XX = new Set([408, 425, 429]);

/**
 * What an answer means for the delivery. 2xx is done; 408/425/429 and 5xx are worth another try; every other
 * status (3xx included: redirects are not followed, a moved endpoint needs a config change) is permanent.
 * Jenkins' Generic Webhook Trigger answers 500 when a trigger failed half-way: the build may have been queued,
 * so a blind retry could build twice; it goes to the dead letters for a person to decide.
 */
export function classifyStatus(type: TargetType, status: number): Verdict {
  if (status >= 200 && status < 300) return { kind: 'delivered' };
  if (type === 'jenkins-generic' && status === 500) {
    return { kind: 'permanent', reason: 'status 500, may have fired' };
  }
  if (status >= 500 || RETRYABLE_4XX.has(status)) return { kind: 'retry', reason: `status ${status}` };
  return { kind: 'permanent', reason: `status ${status}` };
}

/**
 * How long the target asked to be left alone, in ms: `Retry-After` (seconds or an HTTP date), or on a Buildkite
 * 429, which carries none, its `RateLimit-Reset` headers. Undefined when the answer says nothing.
 */
export function retryAfterOf(
  type: TargetType,
  status: number,
  headers: Record<string, string | string[] | undefined>,
): number | undefined {
  const said = parseRetryAfter(headers['retry-after']);
  if (said !== undefined) return said;
  return type === 'buildkite' && status === 429 ? buildkiteRetryAfterMs(headers) : undefined;
}

/** A short, secret-free name for a transport error (timeouts and connection errors are always retried). */
export function describeError(err: unknown): string {
  const e = err as { name?: string; code?: string; cause?: { code?: string }; message?: string };
  const code = e?.code ?? e?.cause?.code;
  if (
    e?.name === 'TimeoutError' ||
    e?.name === 'AbortError' ||
    code === 'UND_ERR_HEADERS_TIMEOUT' ||
    code === 'UND_ERR_BODY_TIMEOUT' ||
    code === 'UND_ERR_CONNECT_TIMEOUT' ||
    code === 'ETIMEDOUT'
  ) {
    return 'timeout';
  }
  switch (code) {
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ECONNRESET':
    case 'UND_ERR_SOCKET':
    case 'EPIPE':
      return 'connection reset';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'dns lookup failed';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return 'host unreachable';
    default:
      return code ? `request failed (${code})` : 'request failed';
  }
}
