import { TRIGGER_TYPES } from '../config/target-rules.js';
import type { TargetType } from '../config/types.js';
import type { TargetAnswer } from './http-client.js';

export type Verdict =
  | { kind: 'delivered' }
  | { kind: 'retry'; reason: string }
  | { kind: 'permanent'; reason: string };

export const RELAY_LOOP_REASON = 'relay loop (508)';

// Statuses that say "not now" rather than "never".
const RETRYABLE_4XX = new Set([408, 425, 429]);

/**
 * Targets that start a build through a CI system's API: a request that reached them may have started one, and
 * none of these APIs takes an idempotency key.
 */
const TRIGGER_APIS: ReadonlySet<TargetType> = new Set<TargetType>(TRIGGER_TYPES);

export function isTriggerApi(type: TargetType): boolean {
  return TRIGGER_APIS.has(type);
}

const GITHUB: ReadonlySet<TargetType> = new Set<TargetType>([
  'github-repository-dispatch',
  'github-workflow-dispatch',
]);

/**
 * GitHub answers a rate limit with 403 as well as 429: a primary limit with `x-ratelimit-remaining: 0`, a
 * secondary one with `retry-after` or only a message saying so
 * (https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api#exceeding-the-rate-limit).
 * Any other 403 (a token without the scope) is permanent.
 */
export function githubRateLimited(answer: Pick<TargetAnswer, 'headers' | 'bodyStart'>): boolean {
  return (
    answer.headers['x-ratelimit-remaining'] === '0' ||
    answer.headers['retry-after'] !== undefined ||
    /rate limit/i.test(answer.bodyStart)
  );
}

/**
 * What an answer means for the delivery. 2xx is done; 408/425/429 and 5xx are worth another try; every other
 * status (3xx included: redirects are not followed, a moved endpoint needs a config change) is permanent.
 * Jenkins answers 500 when a trigger failed half-way (Generic Webhook Trigger) or an exception escaped the
 * request (a job's buildWithParameters): the build may have been queued, so a blind retry could build twice; it
 * goes to the dead letters for a person to decide. Azure DevOps answers 203 with its sign-in page when it does
 * not accept the credentials: not a run. GitHub's rate-limited 403 is retried (githubRateLimited). A 508 (Loop
 * Detected) is a relay loop: permanent, like any answer it proves the target up (the breaker does not count it).
 */
export function classifyStatus(
  type: TargetType,
  status: number,
  answer: Pick<TargetAnswer, 'headers' | 'bodyStart'> = { headers: {}, bodyStart: '' },
): Verdict {
  if (type === 'azure-pipelines' && status === 203) {
    return { kind: 'permanent', reason: 'status 203, sign-in page: credentials refused' };
  }
  if (status >= 200 && status < 300) return { kind: 'delivered' };
  // 508 Loop Detected: the target is a relay this event already passed (hop-marker.ts); sending it again can
  // only loop again, so it is dead-lettered at once (and, like any answer, proves the target up).
  if (status === 508) return { kind: 'permanent', reason: RELAY_LOOP_REASON };
  if ((type === 'jenkins-generic' || type === 'jenkins-job') && status === 500) {
    return { kind: 'permanent', reason: 'status 500, may have fired' };
  }
  if (GITHUB.has(type) && status === 403 && githubRateLimited(answer)) {
    return { kind: 'retry', reason: 'status 403, rate limited' };
  }
  if (status >= 500 || RETRYABLE_4XX.has(status)) return { kind: 'retry', reason: `status ${status}` };
  return { kind: 'permanent', reason: `status ${status}` };
}

const SENT_TIMEOUTS = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

/**
 * A transport error: always retried, except a timeout of a trigger API once the request may have arrived (the
 * exchange's own timeout or no answer in time): the build may have started, and a retry could start another,
 * so it is a dead letter `timeout, may have fired` for a person to look at. A connect timeout sent nothing.
 */
export function classifyError(
  type: TargetType,
  err: unknown,
  /** False while only a lookup (a GET) was under way: it starts nothing. */
  triggerSent = true,
): Exclude<Verdict, { kind: 'delivered' }> {
  const reason = describeError(err);
  const e = err as { name?: string; code?: string; cause?: { code?: string } };
  const code = e?.code ?? e?.cause?.code;
  const sent = e?.name === 'TimeoutError' || e?.name === 'AbortError' || SENT_TIMEOUTS.has(code ?? '');
  if (isTriggerApi(type) && triggerSent && sent)
    return { kind: 'permanent', reason: `${reason}, may have fired` };
  return { kind: 'retry', reason };
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
