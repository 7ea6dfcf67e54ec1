import type { Platform } from '../config/types.js';
import { type ApiCredentials, authorizationHeader, unauthorizedHint } from './credentials.js';
import { collectionPath, type HookScope } from './hook-scope.js';

/** A webhook as either platform lists it, with the fields the relay reads; `raw` is Bitbucket's own object. */
export interface Hook {
  id: string;
  /** Cloud `description`, Data Center `name`. */
  name: string;
  url: string;
  events: string[];
  active: boolean;
  /** Data Center only. */
  sslVerificationRequired?: boolean;
  raw: Record<string, unknown>;
}

/** What the relay's hook should be; the secret travels only inside the request body. */
export interface HookFields {
  name: string;
  url: string;
  events: string[];
  active: boolean;
  secret: string;
  /** Data Center only: Bitbucket checks the relay's certificate (default on). */
  sslVerificationRequired: boolean;
}

export interface PlannedRequest {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  path: string;
  body?: Record<string, unknown>;
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

/** The body of a new hook (Cloud `description`/`secret`, Data Center `name`/`configuration.secret`). */
export function newHookBody(platform: Platform, f: HookFields): Record<string, unknown> {
  return platform === 'cloud'
    ? { description: f.name, url: f.url, active: f.active, events: f.events, secret: f.secret }
    : {
        name: f.name,
        url: f.url,
        active: f.active,
        events: f.events,
        configuration: { secret: f.secret },
        sslVerificationRequired: f.sslVerificationRequired,
      };
}

/**
 * The body that puts `changes` on an existing hook and keeps everything else as Bitbucket has it. Data Center's
 * "Update webhook" takes a whole RestWebhook and replaces the hook with it. Cloud's PUT lists description, url,
 * secret, active and events as mutable and keeps the secret when the field is absent, but does not say what
 * happens to the other absent fields. So every writable field is sent back as read, with only `changes` changed.
 */
export function updatedHookBody(
  platform: Platform,
  hook: Hook,
  changes: Partial<HookFields> & { secret: string },
): Record<string, unknown> {
  if (platform === 'cloud')
    return {
      description: changes.name ?? hook.name,
      url: changes.url ?? hook.url,
      active: changes.active ?? hook.active,
      events: changes.events ?? hook.events,
      secret: changes.secret,
    };
  const configuration = (hook.raw.configuration ?? {}) as Record<string, unknown>;
  return {
    name: changes.name ?? hook.name,
    url: changes.url ?? hook.url,
    active: changes.active ?? hook.active,
    events: changes.events ?? hook.events,
    configuration: { ...configuration, secret: changes.secret },
    sslVerificationRequired: changes.sslVerificationRequired ?? hook.sslVerificationRequired ?? true,
  };
}

/** The request body with the secret replaced, for `--dry-run` and `--json`. */
export function maskSecret(body: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  if (!body) return body;
  const masked = { ...body };
  if ('secret' in masked) masked.secret = '********';
  if (masked.configuration && typeof masked.configuration === 'object')
    masked.configuration = { ...(masked.configuration as object), secret: '********' };
  return masked;
}

export function sameUrl(a: string, b: string): boolean {
  const norm = (u: string) => u.trim().replace(/\/+$/, '');
  return norm(a) === norm(b);
}

function hookFrom(platform: Platform, raw: Record<string, unknown>): Hook {
  const events = Array.isArray(raw.events) ? raw.events.map(String) : [];
  return {
    id: String(platform === 'cloud' ? raw.uuid : raw.id),
    name: String((platform === 'cloud' ? raw.description : raw.name) ?? ''),
    url: String(raw.url ?? ''),
    events,
    active: raw.active !== false,
    ...(platform === 'datacenter' && typeof raw.sslVerificationRequired === 'boolean'
      ? { sslVerificationRequired: raw.sslVerificationRequired }
      : {}),
    raw,
  };
}

/** Bitbucket's REST API for webhooks at repository and workspace/project level, on both platforms. */
export class HooksApi {
  private readonly base: string;
  constructor(
    apiUrl: string,
    private readonly credentials: ApiCredentials,
    private readonly timeoutMs = 30_000,
  ) {
    this.base = apiUrl.replace(/\/+$/, '');
  }

  url(path: string): string {
    return `${this.base}${path}`;
  }

  private async call(method: PlannedRequest['method'], path: string, body?: unknown): Promise<unknown> {
    let res: Response;
    try {
      res = await fetch(this.url(path), {
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
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new Error(
        `cannot reach Bitbucket at ${this.base}: ${cause?.code ?? cause?.message ?? (err as Error).message}`,
      );
    }
    const text = await res.text();
    if (!res.ok) {
      const what = `Bitbucket answered ${res.status} to ${method} ${path.split('?')[0]}: ${errorDetail(text)}`;
      if (res.status === 401)
        throw new BitbucketApiError(401, `${what}\n${unauthorizedHint(this.credentials)}`);
      throw new BitbucketApiError(res.status, what);
    }
    if (!text) return {};
    try {
      return JSON.parse(text);
    } catch {
      throw new BitbucketApiError(
        res.status,
        `Bitbucket answered ${method} ${path} with a body that is not JSON`,
      );
    }
  }

  /** Every webhook of the scope, following Cloud's `next` links and Data Center's `nextPageStart`. */
  async list(scope: HookScope): Promise<Hook[]> {
    const hooks: Hook[] = [];
    const path = collectionPath(scope);
    if (scope.platform === 'cloud') {
      let next: string | undefined = `${path}?pagelen=100`;
      for (let pages = 0; next && pages < 100; pages++) {
        const page = (await this.call('GET', next)) as { values?: Record<string, unknown>[]; next?: string };
        for (const h of page.values ?? []) hooks.push(hookFrom('cloud', h));
        // `next` is absolute; its path and query only, so a proxy or test base URL keeps working.
        next = page.next ? new URL(page.next).pathname + new URL(page.next).search : undefined;
      }
      return hooks;
    }
    let start: number | undefined = 0;
    for (let pages = 0; start !== undefined && pages < 100; pages++) {
      const page = (await this.call('GET', `${path}?start=${start}&limit=100`)) as {
        values?: Record<string, unknown>[];
        isLastPage?: boolean;
        nextPageStart?: number;
      };
      for (const h of page.values ?? []) hooks.push(hookFrom('datacenter', h));
      start = page.isLastPage === false ? page.nextPageStart : undefined;
    }
    return hooks;
  }

  /** The relay's hook in the scope: the one whose URL is `url`. */
  async find(scope: HookScope, url: string): Promise<Hook | undefined> {
    return (await this.list(scope)).find((h) => sameUrl(h.url, url));
  }

  async get(scope: HookScope, id: string): Promise<Hook> {
    return hookFrom(scope.platform, (await this.call('GET', itemPath(scope, id))) as Record<string, unknown>);
  }

  async send(req: PlannedRequest): Promise<{ id: string }> {
    const answer = (await this.call(req.method, req.path, req.body)) as { uuid?: string; id?: number };
    return { id: String(answer.uuid ?? answer.id ?? '') };
  }

  /**
   * Data Center's "Test webhook": Bitbucket itself posts to the hook's URL (with the hook's secret and SSL
   * setting when `webhookId` is given) and reports what came back.
   */
  async dcTest(scope: HookScope, hook: Hook): Promise<Record<string, unknown>> {
    const query = new URLSearchParams({
      webhookId: hook.id,
      url: hook.url,
      sslVerificationRequired: String(hook.sslVerificationRequired ?? true),
    });
    return (await this.call('POST', `${collectionPath(scope)}/test?${query}`)) as Record<string, unknown>;
  }

  /** Data Center's record of the hook's deliveries: the latest invocation, statistics and their summary. */
  async dcHealth(
    scope: HookScope,
    hook: Hook,
  ): Promise<{ latest: unknown; statistics: unknown; summary: unknown }> {
    const base = itemPath(scope, hook.id);
    const [latest, statistics, summary] = await Promise.all([
      // No invocation yet is a 204 with no body on Data Center; `call` turns it into {}.
      this.call('GET', `${base}/latest`),
      this.call('GET', `${base}/statistics`),
      this.call('GET', `${base}/statistics/summary`),
    ]);
    return { latest, statistics, summary };
  }
}

export function planCreate(scope: HookScope, fields: HookFields): PlannedRequest {
  return { method: 'POST', path: collectionPath(scope), body: newHookBody(scope.platform, fields) };
}

export function planUpdate(
  scope: HookScope,
  hook: Hook,
  changes: Partial<HookFields> & { secret: string },
): PlannedRequest {
  return {
    method: 'PUT',
    path: itemPath(scope, hook.id),
    body: updatedHookBody(scope.platform, hook, changes),
  };
}

export function planRemove(scope: HookScope, hook: Hook): PlannedRequest {
  return { method: 'DELETE', path: itemPath(scope, hook.id) };
}

function itemPath(scope: HookScope, id: string): string {
  return `${collectionPath(scope)}/${encodeURIComponent(id)}`;
}

/**
 * The message of Bitbucket's error body: Cloud `{"type":"error","error":{"message","detail"}}`, Data Center
 * `{"errors":[{"message",...}]}`. Neither ever echoes a request's secret.
 */
function errorDetail(text: string): string {
  try {
    const j = JSON.parse(text) as {
      error?: { message?: string; detail?: unknown; fields?: Record<string, unknown> };
      errors?: { message?: string }[];
    };
    if (j.error?.message) {
      // Cloud names the rejected fields of a 400 in `fields`, and a missing scope in `detail`.
      const extra = j.error.fields ?? j.error.detail;
      return extra === undefined ? j.error.message : `${j.error.message} ${JSON.stringify(extra)}`;
    }
    if (j.errors?.length) return j.errors.map((e) => e.message).join('; ');
  } catch {
    // not JSON
  }
  return text.slice(0, 300) || '(empty body)';
}
