import type { TargetType } from '../config/types.js';
import { parseRetryAfter } from './backoff.js';
import type { TargetAnswer } from './http-client.js';

// GitHub: "If you exceed a secondary rate limit … wait for at least one minute before retrying" when it names no
// time (https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api#exceeding-the-rate-limit).
const GITHUB_SECONDARY_WAIT_MS = 60_000;

function header(answer: Pick<TargetAnswer, 'headers'>, name: string): string | undefined {
  const v = answer.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** A reset time given in Unix epoch seconds, as ms from now; undefined when absent or unreadable. */
function epochReset(value: string | undefined, now: number): number | undefined {
  if (!value || !/^\d+$/.test(value.trim())) return undefined;
  return Math.max(0, Number(value.trim()) * 1000 - now);
}

/**
 * How long the target asked us to wait, in ms: `Retry-After` for every type, and where a receiver states its
 * reset differently, that: GitHub's `x-ratelimit-reset` with `x-ratelimit-remaining: 0` (or a minute for a
 * secondary limit that names no time); GitLab's `RateLimit-Reset` and Azure DevOps' `X-RateLimit-Reset`, both
 * Unix epoch seconds (https://docs.gitlab.com/security/rate_limits/,
 * https://learn.microsoft.com/azure/devops/integrate/concepts/rate-limits). Undefined: use the backoff.
 */
export function retryHintMs(
  type: TargetType,
  answer: Pick<TargetAnswer, 'status' | 'headers'>,
  now = Date.now(),
): number | undefined {
  const retryAfter = parseRetryAfter(answer.headers['retry-after'], now);
  if (retryAfter !== undefined) return retryAfter;
  switch (type) {
    case 'github-repository-dispatch':
    case 'github-workflow-dispatch':
      if (answer.status !== 403 && answer.status !== 429) return undefined;
      if (header(answer, 'x-ratelimit-remaining') === '0') {
        return epochReset(header(answer, 'x-ratelimit-reset'), now) ?? GITHUB_SECONDARY_WAIT_MS;
      }
      return GITHUB_SECONDARY_WAIT_MS;
    case 'gitlab-trigger':
      return answer.status === 429 ? epochReset(header(answer, 'ratelimit-reset'), now) : undefined;
    case 'azure-pipelines':
      return answer.status === 429 || answer.status === 503
        ? epochReset(header(answer, 'x-ratelimit-reset'), now)
        : undefined;
    default:
      return undefined;
  }
}
