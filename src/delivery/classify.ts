import type { TargetType } from '../config/types.js';

export type Verdict =
  | { kind: 'delivered' }
  | { kind: 'retry'; reason: string }
  | { kind: 'permanent'; reason: string };

export const RELAY_LOOP_REASON = 'relay loop (508)';

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
  // 508 Loop Detected: the target is a relay this event already passed (hop-marker.ts); sending it again can
  // only loop again, so it is dead-lettered at once (and, like any answer, proves the target up).
  if (status === 508) return { kind: 'permanent', reason: RELAY_LOOP_REASON };
  if (type === 'jenkins-generic' && status === 500) {
    return { kind: 'permanent', reason: 'status 500, may have fired' };
  }
  if (status >= 500 || RETRYABLE_4XX.has(status)) return { kind: 'retry', reason: `status ${status}` };
  return { kind: 'permanent', reason: `status ${status}` };
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
