import type { Platform } from '../config/types.js';
import { type ApiCredentials, authorizationHeader } from './credentials.js';

/** The relay's webhook as both Bitbucket flavours want it, and how to find and write it. */
export interface HookSpec {
  platform: Platform;
  /** `workspace/slug` (Cloud) or `PROJECT/slug` (Data Center). */
  repo: string;
  url: string;
  events: string[];
  secret: string;
  name: string;
  active: boolean;
}

export interface PlannedRequest {
  method: 'GET' | 'POST' | 'PUT';
  url: string;
  body?: Record<string, unknown>;
}

export interface ExistingHook {
  id: string;
  url: string;
  events: string[];
  active: boolean;
}

export class BitbucketApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'BitbucketApiError';
  }
}

/** Defaults when `--events` is not given: what the relay's routes usually need (pushes and pull requests). */
export const DEFAULT_EVENTS: Record<Platform, string[]> = {
  cloud: ['repo:push', 'pullrequest:created', 'pullrequest:updated', 'pullrequest:fulfilled'],
  datacenter: ['repo:refs_changed', 'pr:opened', 'pr:from_ref_updated', 'pr:modified', 'pr:merged'],
};

export const DEFAULT_API_URL = 'https://api.bitbucket.org';

function splitRepo(repo: string): [string, string] {
  const m = /^([^/\s]+)\/([^/\s]+)$/.exec(repo);
  if (!m) throw new Error(`--repo must be WORKSPACE/SLUG (Cloud) or PROJECT/SLUG (Data Center), got ${repo}`);
  return [m[1]!, m[2]!];
}

function collectionPath(spec: Pick<HookSpec, 'platform' | 'repo'>): string {
  const [owner, slug] = splitRepo(spec.repo).map(encodeURIComponent) as [string, string];
  return spec.platform === 'cloud'
    ? `/2.0/repositories/${owner}/${slug}/hooks`
    : `/rest/api/1.0/projects/${owner}/repos/${slug}/webhooks`;
}

export function hookBody(spec: HookSpec): Record<string, unknown> {
  return spec.platform === 'cloud'
    ? { description: spec.name, url: spec.url, active: spec.active, events: spec.events, secret: spec.secret }
    : {
        name: spec.name,
        url: spec.url,
        active: spec.active,
        events: spec.events,
        configuration: { secret: spec.secret },
      };
}

/** The request body with the secret replaced, for `--dry-run` and logs. */
export function maskSecret(body: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  if (!body) return body;
  const masked = { ...body };
  if ('secret' in masked) masked.secret = '********';
  if (masked.configuration && typeof masked.configuration === 'object')
    masked.configuration = { ...(masked.configuration as object), secret: '********' };
  return masked;
}

/** Bitbucket's REST API for repository webhooks (Cloud 2.0 hooks, Data Center 1.0 webhooks). */
export class HooksApi {
  private readonly base: string;
  constructor(
    apiUrl: string,
    private readonly credentials: ApiCredentials | null,
    private readonly timeoutMs = 30_000,
  ) {
    this.base = apiUrl.replace(/\/+$/, '');
  }

  private async call(method: string, path: string, body?: unknown): Promise<unknown> {
    if (!this.credentials) throw new Error('no Bitbucket API credentials');
    let res: Response;
    try {
      res = await fetch(`${this.base}${path}`, {
        method,
        headers: {
          authorization: authorizationHeader(this.credentials),
          accept: 'application/json',
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause;
      throw new Error(`cannot reach Bitbucket at ${this.base}: ${cause?.code ?? (err as Error).message}`);
    }
    const text = await res.text();
    if (!res.ok) {
      // Bitbucket error bodies name the problem (missing scope, unknown repo); they never echo our secret.
      let detail = text.slice(0, 300);
      try {
        const j = JSON.parse(text) as { error?: { message?: string }; errors?: { message?: string }[] };
        detail = j.error?.message ?? j.errors?.[0]?.message ?? detail;
      } catch {
        // not JSON
      }
      throw new BitbucketApiError(
        res.status,
        `Bitbucket answered ${res.status} to ${method} ${path}: ${detail}`,
      );
    }
    return text ? JSON.parse(text) : {};
  }

  /** Every webhook of the repository (following Cloud's `next` links and Data Center's `nextPageStart`). */
  async list(spec: Pick<HookSpec, 'platform' | 'repo'>): Promise<ExistingHook[]> {
    const hooks: ExistingHook[] = [];
    const path = collectionPath(spec);
    if (spec.platform === 'cloud') {
      let next: string | undefined = `${path}?pagelen=100`;
      for (let pages = 0; next && pages < 50; pages++) {
        const page = (await this.call('GET', next)) as {
          values?: { uuid: string; url: string; events?: string[]; active?: boolean }[];
          next?: string;
        };
        for (const h of page.values ?? [])
          hooks.push({ id: h.uuid, url: h.url, events: h.events ?? [], active: h.active !== false });
        // `next` is absolute; keep only its path so a test or proxy base URL keeps working.
        next = page.next ? new URL(page.next).pathname + new URL(page.next).search : undefined;
      }
    } else {
      let start: number | undefined = 0;
      for (let pages = 0; start !== undefined && pages < 50; pages++) {
        const page = (await this.call('GET', `${path}?start=${start}&limit=100`)) as {
          values?: { id: number; url: string; events?: string[]; active?: boolean }[];
          isLastPage?: boolean;
          nextPageStart?: number;
        };
        for (const h of page.values ?? [])
          hooks.push({ id: String(h.id), url: h.url, events: h.events ?? [], active: h.active !== false });
        start = page.isLastPage === false ? page.nextPageStart : undefined;
      }
    }
    return hooks;
  }

  /** POST a new hook, or PUT over the one with the same URL: running it twice leaves one hook. */
  plan(spec: HookSpec, existing: ExistingHook | undefined): PlannedRequest {
    const path = collectionPath(spec);
    return existing
      ? { method: 'PUT', url: `${this.base}${path}/${encodeURIComponent(existing.id)}`, body: hookBody(spec) }
      : { method: 'POST', url: `${this.base}${path}`, body: hookBody(spec) };
  }

  async send(req: PlannedRequest): Promise<{ id: string }> {
    const answer = (await this.call(req.method, req.url.slice(this.base.length), req.body)) as {
      uuid?: string;
      id?: number;
    };
    return { id: String(answer.uuid ?? answer.id ?? '') };
  }
}

export function sameUrl(a: string, b: string): boolean {
  const norm = (u: string) => u.trim().replace(/\/+$/, '');
  return norm(a) === norm(b);
}
