import { type Dispatcher, request } from 'undici';
import type { TargetAuth, TargetConfig } from '../config/types.js';

export interface AppliedAuth {
  headers: Record<string, string>;
  query?: [string, string];
}

/** Header names whose configured values are credentials (`X-Api-Key`, `X-Auth-Token`, …). */
const CREDENTIAL_HEADER = /auth|token|key|secret|password|signature|cookie/i;

/**
 * Secret values of a target's config, so response excerpts can be scrubbed of any echo of them: the auth
 * block's, the signing secret, credential-like configured headers, and every query value of the target URL
 * (Jenkins-style `?token=` URLs put the credential there). Userinfo (`user:pass@`) is refused by the config.
 */
export function secretsOf(target: TargetConfig): string[] {
  const out: string[] = [];
  for (const value of new URL(target.url).searchParams.values()) out.push(value);
  for (const [name, value] of Object.entries(target.headers ?? {})) {
    if (CREDENTIAL_HEADER.test(name)) out.push(value);
  }
  const a = target.auth;
  if (a?.type === 'bearer' || a?.type === 'token') out.push(a.token);
  if (a?.type === 'basic')
    out.push(a.password, Buffer.from(`${a.username}:${a.password}`).toString('base64'));
  if (a?.type === 'oauth2') out.push(a.clientSecret);
  if (target.signingSecret) out.push(target.signingSecret);
  return out.filter((s) => s.length >= 4);
}

interface CachedToken {
  value: string;
  expiresAt: number;
}

// Refresh a little before the server says the token expires, so a request never leaves with a dying token.
const EXPIRY_MARGIN_MS = 30_000;
const DEFAULT_TOKEN_TTL_MS = 300_000;

/**
 * OAuth2 client-credentials tokens (for CI behind an identity-aware proxy): fetched from `tokenUrl`, cached per
 * target until shortly before `expires_in`, shared by concurrent deliveries (one fetch at a time), and thrown
 * away when the target answers 401 so the next request fetches a fresh one.
 */
export class TokenCache {
  private readonly cache = new Map<string, CachedToken>();
  private readonly inflight = new Map<string, Promise<string>>();

  constructor(private readonly dispatcher?: Dispatcher) {}

  async get(
    targetId: string,
    auth: Extract<TargetAuth, { type: 'oauth2' }>,
    timeoutMs: number,
  ): Promise<string> {
    const hit = this.cache.get(targetId);
    if (hit && hit.expiresAt > Date.now()) return hit.value;
    let pending = this.inflight.get(targetId);
    if (!pending) {
      pending = this.fetch(auth, timeoutMs).then(
        (token) => {
          this.cache.set(targetId, token);
          this.inflight.delete(targetId);
          return token.value;
        },
        (err) => {
          this.inflight.delete(targetId);
          throw err;
        },
      );
      this.inflight.set(targetId, pending);
    }
    return pending;
  }

  invalidate(targetId: string, token?: string): void {
    const hit = this.cache.get(targetId);
    if (hit && (token === undefined || hit.value === token)) this.cache.delete(targetId);
  }

  private async fetch(
    auth: Extract<TargetAuth, { type: 'oauth2' }>,
    timeoutMs: number,
  ): Promise<CachedToken> {
    const form = new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: auth.clientId,
      client_secret: auth.clientSecret,
    });
    if (auth.scope) form.set('scope', auth.scope);
    if (auth.audience) form.set('audience', auth.audience);
    const res = await request(auth.tokenUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: form.toString(),
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      ...(this.dispatcher ? { dispatcher: this.dispatcher } : {}),
    });
    const text = await res.body.text();
    if (res.statusCode < 200 || res.statusCode >= 300) {
      throw new TokenError(`token endpoint answered ${res.statusCode}`, res.statusCode);
    }
    let json: { access_token?: unknown; expires_in?: unknown };
    try {
      json = JSON.parse(text);
    } catch {
      throw new TokenError('token endpoint answered no JSON', res.statusCode);
    }
    if (typeof json.access_token !== 'string' || !json.access_token) {
      throw new TokenError('token endpoint answered no access_token', res.statusCode);
    }
    const ttl = typeof json.expires_in === 'number' ? json.expires_in * 1000 : DEFAULT_TOKEN_TTL_MS;
    return { value: json.access_token, expiresAt: Date.now() + Math.max(0, ttl - EXPIRY_MARGIN_MS) };
  }
}

/** A failure to obtain a token: retried like a 5xx when the endpoint answered 5xx or not at all. */
export class TokenError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'TokenError';
  }
}

/**
 * Headers (and for `token` auth maybe a query parameter) for one request. `token` without `header` or `query`
 * goes as `?token=`, the way Jenkins' Generic Webhook Trigger reads it, except where the type says otherwise.
 */
export async function applyAuth(target: TargetConfig, tokens: TokenCache): Promise<AppliedAuth> {
  const a = target.auth;
  if (!a) return { headers: {} };
  switch (a.type) {
    case 'bearer':
      return { headers: { authorization: `Bearer ${a.token}` } };
    case 'basic':
      return {
        headers: { authorization: `Basic ${Buffer.from(`${a.username}:${a.password}`).toString('base64')}` },
      };
    case 'token':
      if (a.header) return { headers: { [a.header.toLowerCase()]: a.token } };
      // CircleCI reads its API token from the Circle-Token header; GitLab's trigger token goes in the form body.
      if (target.type === 'circleci') return { headers: { 'circle-token': a.token } };
      if (target.type === 'gitlab-trigger') return { headers: {} };
      return { headers: {}, query: [a.query ?? 'token', a.token] };
    case 'oauth2':
      return { headers: { authorization: `Bearer ${await tokens.get(target.id, a, target.timeout)}` } };
  }
}
