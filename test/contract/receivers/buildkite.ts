import { randomUUID } from 'node:crypto';
import type { Behaviour, Received } from '../../helpers/target-server.js';

/**
 * Buildkite's REST API for one pipeline as its docs state it (buildkite/docs at 0297573, pages/apis/rest_api/):
 * - builds.md "Create a build": POST JSON with required `commit` and `branch`; `author` an object with a name
 *   and an email; 201 with the build; 422 `{"message":"Validation Failed","errors":[…]}` or
 *   `{"message":"<reason the build could not be created>"}`; scope write_builds (else 403).
 * - builds.md "List builds for a pipeline" + _pipeline_builds_list_query_strings.md: 200 with an array, newest
 *   first, filtered by `branch`, `commit` (full SHA only) and `meta_data[key]=value`.
 * - rate_limits.md: every answer carries RateLimit-Remaining/-Limit/-Reset (seconds to the window's reset);
 *   past the limit, 429 with a JSON body naming the scope.
 * - Authentication (an API access token as `Authorization: Bearer`): 401 otherwise.
 */
export interface StoredBuild {
  id: string;
  number: number;
  commit: string;
  branch: string;
  message?: string;
  author?: { name: string; email: string };
  env: Record<string, string>;
  meta_data: Record<string, string>;
  pull_request?: { id: string; base: string | null; repository: string | null };
  created_at: string;
}

export class BuildkiteReceiver {
  readonly builds: StoredBuild[] = [];
  /** Requests left in the rate-limit window, and seconds until it resets. */
  remaining = 200;
  resetSeconds = 42;
  /** The next create answers 422 with this reason (e.g. a pipeline branch filter). */
  refuseNext: string | undefined;
  /** The next create makes the build and then never answers (a timeout on the client's side). */
  hangAfterCreateNext = false;
  private refillAt: number | undefined;

  constructor(
    private readonly path: string,
    private readonly token: string,
  ) {}

  readonly answer = (req: Received): Behaviour => {
    const url = new URL(req.url, 'https://api.buildkite.com');
    const limits = () => ({
      'ratelimit-scope': 'rest',
      'ratelimit-remaining': String(Math.max(this.remaining, 0)),
      'ratelimit-limit': '200',
      'ratelimit-reset': String(this.resetSeconds),
      'content-type': 'application/json; charset=utf-8',
    });
    const json = (status: number, body: unknown): Behaviour => ({
      status,
      headers: limits(),
      body: JSON.stringify(body),
    });
    if (req.headers.authorization !== `Bearer ${this.token}`) {
      return json(401, { message: 'Authentication required. Please supply a valid API Access Token' });
    }
    // The window resets RateLimit-Reset seconds after the limit was hit.
    if (this.remaining <= 0 && this.refillAt !== undefined && Date.now() >= this.refillAt) {
      this.remaining = 200;
      this.refillAt = undefined;
    }
    if (this.remaining <= 0) {
      this.refillAt ??= Date.now() + this.resetSeconds * 1000;
      return json(429, {
        message: `You have exceeded your API rate limit. Please wait ${this.resetSeconds} seconds before making more requests.`,
        scope: 'rest',
        limit: 200,
        current: 201,
        reset: this.resetSeconds,
      });
    }
    this.remaining -= 1;
    if (url.pathname !== this.path) return json(404, { message: 'No pipeline found' });
    if (req.method === 'GET') return json(200, this.list(url));
    if (req.method !== 'POST') return json(405, { message: 'Method not allowed' });
    let body: Record<string, unknown>;
    try {
      if (!String(req.headers['content-type'] ?? '').startsWith('application/json')) throw new Error('form');
      body = JSON.parse(req.body.toString('utf8'));
    } catch {
      return json(400, { message: 'Problems parsing JSON' });
    }
    const errors: { field: string; code: string }[] = [];
    for (const field of ['commit', 'branch']) {
      if (typeof body[field] !== 'string' || body[field] === '') errors.push({ field, code: 'missing' });
    }
    const author = body.author as { name?: unknown; email?: unknown } | undefined;
    if (author !== undefined && (typeof author.name !== 'string' || typeof author.email !== 'string')) {
      errors.push({ field: 'author', code: 'invalid' });
    }
    if (errors.length > 0) return json(422, { message: 'Validation Failed', errors });
    if (this.refuseNext) {
      const message = this.refuseNext;
      this.refuseNext = undefined;
      return json(422, { message });
    }
    const build: StoredBuild = {
      id: randomUUID(),
      number: this.builds.length + 1,
      commit: String(body.commit),
      branch: String(body.branch),
      ...(typeof body.message === 'string' ? { message: body.message } : {}),
      ...(author ? { author: author as StoredBuild['author'] } : {}),
      env: (body.env as Record<string, string>) ?? {},
      meta_data: (body.meta_data as Record<string, string>) ?? {},
      ...(body.pull_request_id !== undefined
        ? {
            pull_request: {
              id: String(body.pull_request_id),
              base: (body.pull_request_base_branch as string) ?? null,
              repository: (body.pull_request_repository as string) ?? null,
            },
          }
        : {}),
      created_at: new Date().toISOString(),
    };
    this.builds.push(build);
    if (this.hangAfterCreateNext) {
      this.hangAfterCreateNext = false;
      return { hang: true };
    }
    return json(201, {
      ...build,
      state: 'scheduled',
      source: 'api',
      web_url: `https://buildkite.com/acme/widgets/builds/${build.number}`,
    });
  };

  private list(url: URL): StoredBuild[] {
    const branch = url.searchParams.get('branch');
    const commit = url.searchParams.get('commit');
    const meta = [...url.searchParams].filter(([k]) => /^meta_data\[.+\]$/.test(k));
    return this.builds
      .filter((b) => branch === null || b.branch === branch)
      .filter((b) => commit === null || b.commit === commit)
      .filter((b) => meta.every(([k, v]) => b.meta_data[k.slice(10, -1)] === v))
      .reverse();
  }
}
