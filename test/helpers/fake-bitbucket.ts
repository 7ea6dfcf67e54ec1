import { randomUUID } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';

/**
 * One fake of both Bitbucket REST APIs for webhooks, following the published contracts:
 * - Cloud 2.0 (https://api.bitbucket.org/swagger.json, "Webhooks" group; https://developer.atlassian.com/cloud/
 *   bitbucket/rest/api-group-webhooks/): `/2.0/repositories/{workspace}/{repo_slug}/hooks[/{uid}]` and
 *   `/2.0/workspaces/{workspace}/hooks[/{uid}]`; `webhook_subscription` objects (`uuid`, `description`, `url`,
 *   `events`, `active`, `secret_set`, `subject_type`); pages `{pagelen, values, next}` where `next` is an
 *   absolute URL; errors `{"type":"error","error":{"message", "detail"|"fields"}}`. Auth
 *   (https://support.atlassian.com/bitbucket-cloud/docs/using-api-tokens/ and .../using-access-tokens/): a user
 *   API token only as Basic with the account's email, an access token only as Bearer; anything else is 401
 *   "Token is invalid, expired, or not supported for this endpoint." (the answer Bearer-with-an-API-token gets
 *   live, see community.developer.atlassian.com/t/api-tokens-at-account-level-not-working/94071).
 * - Data Center 9.x (https://developer.atlassian.com/server/bitbucket/rest/v906/): `/rest/api/latest/projects/
 *   {projectKey}[/repos/{repositorySlug}]/webhooks[/{webhookId}]`, `/webhooks/test`, `/{id}/latest`,
 *   `/{id}/statistics`, `/{id}/statistics/summary`; RestWebhook (`id`, `name`, `url`, `events`, `active`,
 *   `configuration`, `sslVerificationRequired`, `scopeType`); pages `{size, limit, start, isLastPage,
 *   nextPageStart, values}`; errors `{"errors":[{"context","message","exceptionName"}]}`; HTTP access tokens as
 *   Bearer (https://confluence.atlassian.com/bitbucketserver/http-access-tokens-939515499.html). PUT replaces
 *   the webhook with the body ("Update webhook" takes a whole RestWebhook), so a field left out is lost here.
 * Both pages hold at most PAGE items whatever size the client asks for, so every client must follow pages.
 */
export const PAGE = 2;

export const AUTH = {
  email: 'ops@acme.example',
  apiToken: 'ATATT-user-api-token',
  /** A repository access token of acme/widgets: no workspace-level access. */
  accessToken: 'ATCTT-repo-access-token',
  dcToken: 'BBDC-http-access-token',
};

/** Cloud: `GET /2.0/hook_events/repository` (and `/workspace`) as Bitbucket lists them. */
const CLOUD_EVENTS = new Set([
  'repo:push',
  'repo:fork',
  'repo:updated',
  'repo:commit_comment_created',
  'repo:commit_status_created',
  'repo:commit_status_updated',
  'issue:created',
  'issue:updated',
  'issue:comment_created',
  'pullrequest:created',
  'pullrequest:updated',
  'pullrequest:approved',
  'pullrequest:unapproved',
  'pullrequest:fulfilled',
  'pullrequest:rejected',
  'pullrequest:comment_created',
  'pullrequest:comment_updated',
  'pullrequest:comment_deleted',
  'pullrequest:changes_request_created',
  'pullrequest:changes_request_removed',
]);
/** Data Center's event keys ("Event payload" page), with `pr:reviewer:needs_work` that live servers send. */
const DC_EVENTS = new Set([
  'repo:refs_changed',
  'repo:modified',
  'repo:forked',
  'repo:comment:added',
  'repo:comment:edited',
  'repo:comment:deleted',
  'pr:opened',
  'pr:from_ref_updated',
  'pr:modified',
  'pr:merged',
  'pr:declined',
  'pr:deleted',
  'pr:comment:added',
  'pr:comment:edited',
  'pr:comment:deleted',
  'pr:reviewer:approved',
  'pr:reviewer:unapproved',
  'pr:reviewer:needs_work',
  'pr:reviewer:updated',
]);

export interface FakeHook {
  id: string;
  url: string;
  events: string[];
  active: boolean;
  name: string;
  secret?: string;
  /** Data Center: other configuration keys and the SSL flag. */
  configuration?: Record<string, unknown>;
  sslVerificationRequired?: boolean;
  /** Data Center: what `/latest` and `/statistics/summary` report (seeded by a test). */
  latest?: Record<string, unknown>;
  summary?: { successes: number; failures: number; errors: number };
}

export interface Recorded {
  method: string;
  path: string;
  auth?: string;
  body?: unknown;
}

type Platform = 'cloud' | 'datacenter';

export class FakeBitbucket {
  requests: Recorded[] = [];
  /** Hooks per scope key: `cloud:acme/widgets`, `cloud:acme`, `datacenter:ACME/widgets`, `datacenter:ACME`. */
  hooks = new Map<string, FakeHook[]>();
  /** What Data Center's "Test webhook" got back from the URL it posted to. */
  testDeliveries: { url: string; status: number }[] = [];
  https: Server;
  http = createHttpServer((req, res) => void this.handle(req, res, 'http'));
  httpsUrl = '';
  httpUrl = '';
  private seq = 0;

  constructor(tls: { key: Buffer; cert: Buffer }) {
    this.https = createHttpsServer(tls, (req, res) => void this.handle(req, res, 'https'));
  }

  async start(): Promise<void> {
    await new Promise<void>((r) => this.https.listen(0, '127.0.0.1', r));
    await new Promise<void>((r) => this.http.listen(0, '127.0.0.1', r));
    this.httpsUrl = `https://127.0.0.1:${(this.https.address() as AddressInfo).port}`;
    this.httpUrl = `http://127.0.0.1:${(this.http.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.https.closeAllConnections();
    this.http.closeAllConnections();
    await new Promise((r) => this.https.close(r));
    await new Promise((r) => this.http.close(r));
  }

  reset(): void {
    this.requests = [];
    this.hooks.clear();
    this.testDeliveries = [];
  }

  writes(): Recorded[] {
    return this.requests.filter((r) => r.method !== 'GET');
  }

  list(scope: string): FakeHook[] {
    const list = this.hooks.get(scope) ?? [];
    this.hooks.set(scope, list);
    return list;
  }

  seed(scope: string, hook: Omit<FakeHook, 'id'> & { id?: string }): FakeHook {
    const platform = scope.startsWith('cloud:') ? 'cloud' : 'datacenter';
    const full = { ...hook, id: hook.id ?? this.newId(platform) };
    this.list(scope).push(full);
    return full;
  }

  private newId(platform: Platform): string {
    this.seq += 1;
    return platform === 'cloud' ? `{${randomUUID()}}` : String(this.seq);
  }

  private async handle(req: IncomingMessage, res: ServerResponse, scheme: string): Promise<unknown> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString();
    const u = new URL(req.url!, `${scheme}://${req.headers.host}`);
    let body: unknown;
    let badJson = false;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      badJson = true;
    }
    this.requests.push({
      method: req.method!,
      path: u.pathname + u.search,
      ...(req.headers.authorization ? { auth: req.headers.authorization } : {}),
      ...(body !== undefined ? { body } : {}),
    });
    const send = (status: number, json?: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(
        status,
        json === undefined ? headers : { 'content-type': 'application/json', ...headers },
      );
      res.end(json === undefined ? undefined : JSON.stringify(json));
    };
    const cloud =
      /^\/2\.0\/(?:repositories\/([^/]+)\/([^/]+)|workspaces\/([^/]+))\/hooks(?:\/([^/]+))?$/.exec(
        u.pathname,
      );
    const dc =
      /^\/rest\/api\/latest\/projects\/([^/]+)(?:\/repos\/([^/]+))?\/webhooks(?:\/([^/]+))?(?:\/(latest|statistics|statistics\/summary))?$/.exec(
        u.pathname,
      );
    if (cloud) {
      const err = (status: number, message: string, extra: Record<string, unknown> = {}) =>
        send(status, { type: 'error', error: { message, ...extra } });
      const auth = req.headers.authorization ?? '';
      const basic = `Basic ${Buffer.from(`${AUTH.email}:${AUTH.apiToken}`).toString('base64')}`;
      const bearer = `Bearer ${AUTH.accessToken}`;
      if (auth !== basic && auth !== bearer)
        return err(401, 'Token is invalid, expired, or not supported for this endpoint.');
      const [, workspace, slug, wsOnly, rawId] = cloud;
      const scope = slug ? `cloud:${workspace}/${slug}` : `cloud:${wsOnly}`;
      // A repository access token reaches its own repository only.
      if (auth === bearer && scope !== 'cloud:acme/widgets')
        return err(403, 'Your credentials lack one or more required privilege scopes.', {
          detail: { required: ['webhook'], granted: ['webhook', 'repository'] },
        });
      return this.cloud(
        req.method!,
        u,
        scope,
        rawId ? decodeURIComponent(rawId) : undefined,
        body,
        badJson,
        send,
        err,
      );
    }
    if (dc) {
      const err = (status: number, message: string, exceptionName: string, context: string | null = null) =>
        send(status, { errors: [{ context, message, exceptionName }] });
      if (req.headers.authorization !== `Bearer ${AUTH.dcToken}`)
        return err(
          401,
          'Authentication failed. Please check your credentials and try again.',
          'com.atlassian.bitbucket.auth.IncorrectPasswordAuthenticationException',
        );
      const [, project, slug, id, sub] = dc;
      const scope = slug ? `datacenter:${project}/${slug}` : `datacenter:${project}`;
      return this.dc(req.method!, u, scope, slug !== undefined, id, sub, body, badJson, send, err);
    }
    send(404, { type: 'error', error: { message: `no route ${u.pathname}` } });
  }

  private cloud(
    method: string,
    u: URL,
    scope: string,
    id: string | undefined,
    body: unknown,
    badJson: boolean,
    send: (status: number, json?: unknown) => void,
    err: (status: number, message: string, extra?: Record<string, unknown>) => void,
  ): unknown {
    const list = this.list(scope);
    const view = (h: FakeHook) => ({
      type: 'webhook_subscription',
      uuid: h.id,
      url: h.url,
      description: h.name,
      subject_type: scope.includes('/') ? 'repository' : 'workspace',
      active: h.active,
      created_at: '2026-11-01T10:00:00.000000+00:00',
      events: h.events,
      secret_set: !!h.secret,
      links: { self: { href: `https://api.bitbucket.org${u.pathname}` } },
    });
    if (method === 'GET' && !id) {
      const page = Number(u.searchParams.get('page') ?? '1');
      const pagelen = Math.min(Number(u.searchParams.get('pagelen') ?? '10'), PAGE);
      const values = list.slice((page - 1) * pagelen, page * pagelen).map(view);
      const next = new URL(`https://api.bitbucket.org${u.pathname}`);
      next.searchParams.set('pagelen', String(pagelen));
      next.searchParams.set('page', String(page + 1));
      return send(200, {
        pagelen,
        page,
        size: list.length,
        values,
        ...(page * pagelen < list.length ? { next: next.toString() } : {}),
      });
    }
    const hook = id ? list.find((h) => h.id === id) : undefined;
    if (id && !hook) return err(404, 'Resource not found');
    if (method === 'GET') return send(200, view(hook!));
    if (method === 'DELETE' && hook) {
      list.splice(list.indexOf(hook), 1);
      return send(204);
    }
    if (method !== 'POST' && method !== 'PUT') return err(405, 'Method not allowed');
    if (badJson || typeof body !== 'object' || body === null) return err(400, 'Bad request');
    const b = body as Record<string, unknown>;
    const fields: Record<string, string[]> = {};
    const allowed = ['description', 'url', 'active', 'events', 'secret'];
    for (const k of Object.keys(b)) if (!allowed.includes(k)) fields[k] = ['unknown field'];
    if (typeof b.url !== 'string' || !/^https?:\/\//.test(b.url)) fields.url = ['a valid URL is required'];
    if (!Array.isArray(b.events) || b.events.length === 0) fields.events = ['at least one event is required'];
    else {
      const bad = b.events.filter((e) => typeof e !== 'string' || !CLOUD_EVENTS.has(e));
      if (bad.length) fields.events = [`invalid events: ${bad.join(', ')}`];
    }
    if ('active' in b && typeof b.active !== 'boolean') fields.active = ['must be a boolean'];
    if ('description' in b && typeof b.description !== 'string') fields.description = ['must be a string'];
    if ('secret' in b && typeof b.secret !== 'string') fields.secret = ['must be a string'];
    if (Object.keys(fields).length) return err(400, 'Bad request', { fields });
    const next: FakeHook = {
      id: hook?.id ?? this.newId('cloud'),
      url: b.url as string,
      events: b.events as string[],
      active: (b.active as boolean | undefined) ?? true,
      name: (b.description as string | undefined) ?? '',
      ...(typeof b.secret === 'string' ? { secret: b.secret } : hook?.secret ? { secret: hook.secret } : {}),
    };
    if (method === 'POST' && !id) {
      list.push(next);
      return send(201, view(next));
    }
    if (method === 'PUT' && hook) {
      Object.assign(hook, next);
      return send(200, view(hook));
    }
    return err(405, 'Method not allowed');
  }

  private async dc(
    method: string,
    u: URL,
    scope: string,
    repoLevel: boolean,
    id: string | undefined,
    sub: string | undefined,
    body: unknown,
    badJson: boolean,
    send: (status: number, json?: unknown) => void,
    err: (status: number, message: string, exceptionName: string, context?: string | null) => void,
  ): Promise<unknown> {
    const list = this.list(scope);
    const view = (h: FakeHook) => ({
      id: Number(h.id),
      name: h.name,
      createdDate: 1764000000000,
      updatedDate: 1764000000000,
      events: h.events,
      // Data Center does not give the secret back.
      configuration: Object.fromEntries(
        Object.entries(h.configuration ?? {}).filter(([k]) => k !== 'secret'),
      ),
      url: h.url,
      active: h.active,
      scopeType: repoLevel ? 'repository' : 'project',
      sslVerificationRequired: h.sslVerificationRequired ?? true,
    });
    if (id === 'test' && method === 'POST') {
      const url = u.searchParams.get('url');
      if (!url)
        return err(
          400,
          'A URL is required to test a webhook.',
          'com.atlassian.webhooks.InvalidUrlException',
          'url',
        );
      const webhookId = u.searchParams.get('webhookId');
      if (webhookId && !list.some((h) => h.id === webhookId))
        return err(
          404,
          `Webhook ${webhookId} does not exist.`,
          'com.atlassian.webhooks.NoSuchWebhookException',
        );
      // Bitbucket posts its "Test connection" request, diagnostics:ping with {"test": true}, and reports back.
      const requestBody = '{"test": true}';
      try {
        const res = await fetch(url, {
          method: 'POST',
          headers: {
            'content-type': 'application/json; charset=UTF-8',
            'x-event-key': 'diagnostics:ping',
            'x-request-id': randomUUID(),
          },
          body: requestBody,
        });
        const responseBody = await res.text();
        this.testDeliveries.push({ url, status: res.status });
        return send(200, {
          request: { url, method: 'POST', body: requestBody },
          response: { statusCode: res.status, body: responseBody },
        });
      } catch (e) {
        return send(200, {
          request: { url, method: 'POST', body: requestBody },
          error: (e as Error).message,
        });
      }
    }
    if (method === 'GET' && !id) {
      const start = Number(u.searchParams.get('start') ?? '0');
      const limit = Math.min(Number(u.searchParams.get('limit') ?? '25'), PAGE);
      const values = list.slice(start, start + limit).map(view);
      const isLastPage = start + limit >= list.length;
      return send(200, {
        size: values.length,
        limit,
        start,
        isLastPage,
        values,
        ...(isLastPage ? {} : { nextPageStart: start + limit }),
      });
    }
    const hook = id ? list.find((h) => h.id === id) : undefined;
    if (id && !hook)
      return err(404, `Webhook ${id} does not exist.`, 'com.atlassian.webhooks.NoSuchWebhookException');
    if (sub && method === 'GET') {
      // No invocation yet: 204 and no body.
      if (sub === 'latest') return hook!.latest ? send(200, hook!.latest) : send(204);
      const summary = hook!.summary ?? { successes: 0, failures: 0, errors: 0 };
      if (sub === 'statistics/summary') return send(200, summary);
      return send(200, { counts: summary, ...(hook!.latest ? { lastSuccess: hook!.latest } : {}) });
    }
    if (method === 'GET' && hook) return send(200, view(hook));
    if (method === 'DELETE' && hook) {
      list.splice(list.indexOf(hook), 1);
      return send(204);
    }
    if (method !== 'POST' && method !== 'PUT')
      return err(405, 'Method not allowed', 'com.atlassian.bitbucket.rest.MethodNotAllowedException');
    if (badJson || typeof body !== 'object' || body === null)
      return err(
        400,
        'The request body is not valid JSON.',
        'com.atlassian.bitbucket.rest.BadRequestException',
      );
    const b = body as Record<string, unknown>;
    const invalid = (context: string, message: string) =>
      err(400, message, 'com.atlassian.bitbucket.validation.ArgumentValidationException', context);
    const allowed = [
      'name',
      'url',
      'events',
      'active',
      'configuration',
      'sslVerificationRequired',
      'credentials',
    ];
    const unknown = Object.keys(b).find((k) => !allowed.includes(k));
    if (unknown) return invalid(unknown, `Unrecognized field "${unknown}"`);
    if (typeof b.name !== 'string' || !b.name) return invalid('name', 'A name is required.');
    if (typeof b.url !== 'string' || !/^https?:\/\//.test(b.url))
      return invalid('url', 'A valid URL is required.');
    if (!Array.isArray(b.events) || b.events.length === 0)
      return invalid('events', 'At least one event is required.');
    const bad = b.events.find((e) => typeof e !== 'string' || !DC_EVENTS.has(e));
    if (bad !== undefined) return invalid('events', `${String(bad)} is not a valid event.`);
    if ('active' in b && typeof b.active !== 'boolean') return invalid('active', 'active must be a boolean');
    if ('sslVerificationRequired' in b && typeof b.sslVerificationRequired !== 'boolean')
      return invalid('sslVerificationRequired', 'sslVerificationRequired must be a boolean');
    const configuration = (b.configuration ?? {}) as Record<string, unknown>;
    if (
      typeof configuration !== 'object' ||
      ('secret' in configuration && typeof configuration.secret !== 'string')
    )
      return invalid('configuration', 'configuration.secret must be a string');
    // A whole replacement: what the body leaves out is gone (active defaults to true, the SSL check to on).
    const next: FakeHook = {
      id: hook?.id ?? this.newId('datacenter'),
      name: b.name,
      url: b.url,
      events: b.events as string[],
      active: (b.active as boolean | undefined) ?? true,
      configuration,
      ...(typeof configuration.secret === 'string' ? { secret: configuration.secret } : {}),
      sslVerificationRequired: (b.sslVerificationRequired as boolean | undefined) ?? true,
    };
    if (method === 'POST' && !id) {
      list.push(next);
      return send(201, view(next));
    }
    if (method === 'PUT' && hook) {
      for (const k of Object.keys(hook))
        if (k !== 'latest' && k !== 'summary') delete (hook as Partial<FakeHook>)[k as keyof FakeHook];
      Object.assign(hook, next);
      return send(200, view(hook));
    }
    return err(405, 'Method not allowed', 'com.atlassian.bitbucket.rest.MethodNotAllowedException');
  }
}
