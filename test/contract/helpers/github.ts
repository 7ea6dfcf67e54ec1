import type { Behaviour, Received } from '../../helpers/target-server.js';
import { header, json } from './receiver.js';

/**
 * GitHub's REST API rules for the dispatch endpoints, as its docs state them:
 * - https://docs.github.com/rest/about-the-rest-api/api-versions: an unsupported `X-GitHub-Api-Version` is
 *   refused with 400; 2022-11-28 is supported;
 * - https://docs.github.com/rest/using-the-rest-api/getting-started-with-the-rest-api#user-agent: a request
 *   without User-Agent is refused (403);
 * - https://docs.github.com/rest/using-the-rest-api/getting-started-with-the-rest-api#media-types: Accept
 *   `application/vnd.github+json` is the documented media type;
 * - authentication: `Authorization: Bearer <token>`; a wrong token is 401 "Bad credentials";
 * - a body that does not match the operation's schema is 422 "Invalid request".
 */
export const GITHUB_TOKEN = 'ghp_contractTestToken0001';
const SUPPORTED_VERSIONS = new Set(['2022-11-28', '2026-03-10']);
const DOCS = 'https://docs.github.com/rest';

export function githubCheck(req: Received, path: RegExp): { problem: string; answer: Behaviour }[] {
  const out: { problem: string; answer: Behaviour }[] = [];
  const refuse = (problem: string, status: number, message: string) =>
    out.push({ problem, answer: json(status, { message, documentation_url: DOCS, status: String(status) }) });
  if (req.method !== 'POST') refuse(`method ${req.method}`, 404, 'Not Found');
  if (!path.test(new URL(req.url, 'http://x').pathname)) refuse(`path ${req.url}`, 404, 'Not Found');
  if (!header(req, 'user-agent')) {
    refuse(
      'no User-Agent',
      403,
      'Request forbidden by administrative rules. Please make sure your request has a User-Agent header',
    );
  }
  const version = header(req, 'x-github-api-version');
  if (version !== undefined && !SUPPORTED_VERSIONS.has(version)) {
    refuse(`api version ${version}`, 400, `API version ${version} is not supported.`);
  }
  if (!version) refuse('no X-GitHub-Api-Version (the relay pins one)', 400, 'missing version');
  if (header(req, 'accept') !== 'application/vnd.github+json')
    refuse(`accept ${header(req, 'accept')}`, 415, 'Unsupported Media Type');
  if (header(req, 'authorization') !== `Bearer ${GITHUB_TOKEN}`)
    refuse('authorization', 401, 'Bad credentials');
  if (!header(req, 'content-type')?.startsWith('application/json'))
    refuse('content-type', 415, 'Unsupported Media Type');
  return out;
}

/** The JSON body, or a 400 "Problems parsing JSON" as GitHub answers unparseable bodies. */
export function githubBody(req: Received): {
  body?: Record<string, unknown>;
  problem?: { problem: string; answer: Behaviour };
} {
  try {
    return { body: JSON.parse(req.body.toString()) };
  } catch {
    return {
      problem: { problem: 'body is not JSON', answer: json(400, { message: 'Problems parsing JSON' }) },
    };
  }
}

export function invalid(problem: string): { problem: string; answer: Behaviour } {
  return {
    problem,
    answer: json(422, { message: `Invalid request.\n\n${problem}`, documentation_url: DOCS, status: '422' }),
  };
}

/** Both dispatch endpoints answer an accepted request with 204 and no body. */
export const NO_CONTENT: Behaviour = { status: 204, headers: {}, body: '' };

/** A primary rate limit as GitHub sends it: 403 with x-ratelimit-remaining 0 and the reset in epoch seconds. */
export function primaryRateLimit(resetInSeconds: number): Behaviour {
  return json(
    403,
    { message: 'API rate limit exceeded for user ID 1.', documentation_url: DOCS },
    {
      'x-ratelimit-limit': '5000',
      'x-ratelimit-remaining': '0',
      'x-ratelimit-used': '5000',
      'x-ratelimit-reset': String(Math.ceil(Date.now() / 1000) + resetInSeconds),
      'x-ratelimit-resource': 'core',
    },
  );
}
