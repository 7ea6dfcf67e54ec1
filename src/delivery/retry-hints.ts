import type { TargetType } from '../config/types.js';
import { parseRetryAfter } from './backoff.js';
import type { TargetAnswer } from './http-client.js';

// GitHub: "If you exceed a secondary rate limit … wait for at least one minute before retrying" when it names no
// time (https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api#exceeding-the-rate-limit).
const GITHUB_SECONDARY_WAIT_MS = 60_000;

type Headers = TargetAnswer['headers'];

function header(headers: Headers, name: string): string | undefined {
  const v = headers[name];
  return (Array.isArray(v) ? v[0] : v)?.trim();
}

function whole(value: string | undefined): number | undefined {
  return value && /^\d+$/.test(value) ? Number(value) : undefined;
}

/** A reset time given in Unix epoch seconds, as ms from now; undefined when absent or unreadable. */
function epochReset(value: string | undefined, now: number): number | undefined {
  const at = whole(value);
  return at === undefined ? undefined : Math.max(0, at * 1000 - now);
}

/**
 * Buildkite's `RateLimit-Reset` (and `RateLimit-User-Reset`): seconds until the organization's (the token user's)
 * window resets (buildkite/docs, pages/apis/rest_api/rate_limits.md). A 429 is past one of the two limits: wait
 * for the one whose `Remaining` is 0, or for the later of both when neither says.
 */
function buildkiteReset(headers: Headers): number | undefined {
  const scopes = [
    {
      reset: whole(header(headers, 'ratelimit-reset')),
      remaining: whole(header(headers, 'ratelimit-remaining')),
    },
    {
      reset: whole(header(headers, 'ratelimit-user-reset')),
      remaining: whole(header(headers, 'ratelimit-user-remaining')),
    },
  ].filter((s) => s.reset !== undefined);
  if (scopes.length === 0) return undefined;
  const spent = scopes.filter((s) => s.remaining === 0);
  return Math.max(...(spent.length > 0 ? spent : scopes).map((s) => s.reset!)) * 1000;
}

/**
 * How long the target asked us to wait, in ms: `Retry-After` (seconds or an HTTP date) for every type, and where
 * a receiver states its reset differently, that: Buildkite's `RateLimit-Reset` seconds on a 429 (buildkiteReset);
 * GitHub's `x-ratelimit-reset` with `x-ratelimit-remaining: 0` (or a minute for a secondary limit that names no
 * time); GitLab's `RateLimit-Reset` and Azure DevOps' `X-RateLimit-Reset`, both Unix epoch seconds
 * (https://docs.gitlab.com/security/rate_limits/,
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
    case 'buildkite':
      return answer.status === 429 ? buildkiteReset(answer.headers) : undefined;
    case 'github-repository-dispatch':
    case 'github-workflow-dispatch':
      if (answer.status !== 403 && answer.status !== 429) return undefined;
      if (header(answer.headers, 'x-ratelimit-remaining') === '0') {
        return epochReset(header(answer.headers, 'x-ratelimit-reset'), now) ?? GITHUB_SECONDARY_WAIT_MS;
      }
      return GITHUB_SECONDARY_WAIT_MS;
    case 'gitlab-trigger':
      return answer.status === 429 ? epochReset(header(answer.headers, 'ratelimit-reset'), now) : undefined;
    case 'azure-pipelines':
      return answer.status === 429 || answer.status === 503
        ? epochReset(header(answer.headers, 'x-ratelimit-reset'), now)
        : undefined;
    default:
      return undefined;
  }
}
