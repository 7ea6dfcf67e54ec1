import type { SourceConfig } from '../config/types.js';

/*
 * Older Bitbucket Server versions send `repo:refs_changed` with refs only: no `commits`, no `toCommit`, so the
 * skip markers have no message to read. With `sources[].api` configured, the head commit's message is read
 * through the REST API: `GET /rest/api/1.0/projects/{projectKey}/repos/{repositorySlug}/commits/{commitId}`
 * (Atlassian, Bitbucket Data Center REST API, Repository → "Get commit"), which answers the commit as the
 * webhooks' `toCommit` has it: `{id, displayId, author, authorTimestamp, committer, message, parents}`.
 */

const TIMEOUT_MS = 5000;
// Per process: each target's delivery of one push asks once, not once per target.
const CACHE_SIZE = 1000;

/**
 * The Authorization header for a source's `api` block, or null without credentials: an HTTP access token as
 * Bearer, a username and password as Basic (Data Center's REST API takes both).
 */
export function apiAuthorization(source: Pick<SourceConfig, 'api'>): string | null {
  const api = source.api;
  if (!api) return null;
  if (api.token) return `Bearer ${api.token}`;
  if (api.username && api.password) {
    return `Basic ${Buffer.from(`${api.username}:${api.password}`).toString('base64')}`;
  }
  return null;
}

export class CommitMessages {
  private readonly cache = new Map<string, Promise<string>>();
  private readonly sources: Map<string, SourceConfig>;

  constructor(sources: readonly SourceConfig[]) {
    this.sources = new Map(sources.map((s) => [s.id, s]));
  }

  /** Whether a source can look messages up (Data Center with `api` credentials). */
  canLookUp(sourceId: string): boolean {
    const source = this.sources.get(sourceId);
    return !!source && source.platform === 'datacenter' && apiAuthorization(source) !== null;
  }

  /** The commit's message; rejects when the server cannot be asked or does not answer it. */
  lookUp(sourceId: string, repository: string, commitId: string): Promise<string> {
    const key = `${sourceId}\0${repository}\0${commitId}`;
    let found = this.cache.get(key);
    if (!found) {
      found = this.fetch(sourceId, repository, commitId);
      if (this.cache.size >= CACHE_SIZE) this.cache.clear();
      this.cache.set(key, found);
      found.catch(() => this.cache.delete(key));
    }
    return found;
  }

  private async fetch(sourceId: string, repository: string, commitId: string): Promise<string> {
    const source = this.sources.get(sourceId);
    const authorization = source ? apiAuthorization(source) : null;
    const [project, slug] = repository.split('/');
    if (!source?.api || !authorization || !project || !slug) throw new Error('no API access for this source');
    const path = `/rest/api/1.0/projects/${encodeURIComponent(project)}/repos/${encodeURIComponent(slug)}/commits/${encodeURIComponent(commitId)}`;
    const res = await fetch(`${source.api.url.replace(/\/+$/, '')}${path}`, {
      headers: { authorization, accept: 'application/json' },
      signal: AbortSignal.timeout(TIMEOUT_MS),
      redirect: 'error',
    });
    if (!res.ok) throw new Error(`status ${res.status}`);
    const commit = (await res.json()) as { message?: unknown };
    if (typeof commit.message !== 'string') throw new Error('answer without a message');
    return commit.message;
  }
}
