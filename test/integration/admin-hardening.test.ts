/**
 * The admin service under attack: audit lines a log pipeline can read, sessions bound to the token they were
 * made from, the login's `next` and its throttle. Real admin app on 127.0.0.1:0, real Redis; other client
 * addresses are other loopback addresses (127.0.0.x) used as the socket's local address.
 */
import type { FastifyInstance } from 'fastify';
import { Agent, request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { buildAdminApp } from '../../src/admin/admin-app.js';
import { CONSOLE_PATH } from '../../src/admin/console/console-routes.js';
import type { Config } from '../../src/config/types.js';
import { createRuntime, type Runtime, waitForRedis } from '../../src/runtime.js';
import { api } from '../helpers/admin.js';
import { testConfig } from '../helpers/config.js';
import { captureLogs, duplicateKeys } from '../helpers/logs.js';
import { useTestRedis } from '../helpers/redis.js';

/** Where a sign-in lands when `next` is refused: the console's default page. */
const HOME = `${CONSOLE_PATH}/events`;

const OPERATOR = 'operator-token-0123456789abcdef';
const VIEWER = 'viewer-token-0123456789abcdef';

const db = useTestRedis();

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

const TOKENS = [
  { name: 'alice', token: OPERATOR, role: 'operator' },
  { name: 'victor', token: VIEWER, role: 'viewer' },
];

async function startAdminService(
  tokens: { name: string; token: string; role: string }[] = TOKENS,
  shared?: { runtime: Runtime; logs: ReturnType<typeof captureLogs> },
) {
  const logs = shared?.logs ?? captureLogs();
  let runtime: Runtime;
  if (shared) {
    // Same Redis and key prefix, another admin config: what a restart with an edited config looks like.
    const config: Config = {
      ...shared.runtime.config,
      admin: { ...shared.runtime.config.admin, tokens: tokens as never },
    };
    runtime = { ...shared.runtime, config };
  } else {
    runtime = await createRuntime(testConfig(db.url, { admin: { tokens } }), logs.log);
    closers.push(() => runtime.close());
    await waitForRedis(runtime.redis, 5000);
  }
  const app: FastifyInstance = await buildAdminApp(runtime);
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  closers.push(() => app.close());
  return { url, app, runtime, logs };
}

/** A request from another loopback address (the socket's source address, not a header). */
async function from(
  address: string,
  url: string,
  opts: { method?: 'GET' | 'POST'; body?: string; headers?: Record<string, string> } = {},
) {
  const dispatcher = new Agent({ localAddress: address });
  closers.push(() => dispatcher.close());
  const res = await request(url, {
    method: opts.method ?? 'GET',
    dispatcher,
    headers: opts.headers ?? {},
    ...(opts.body !== undefined ? { body: opts.body } : {}),
  });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, text };
}

async function login(url: string, token: string, next = '/api/whoami', address = '127.0.0.1') {
  return from(address, `${url}/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token, next }).toString(),
  });
}

function sessionCookieOf(res: { headers: Record<string, string | string[] | undefined> }): string {
  const raw = res.headers['set-cookie'];
  const first = Array.isArray(raw) ? raw[0] : raw;
  return String(first ?? '').split(';')[0]!;
}

describe('audit lines', () => {
  it('carry every key once: the actor role and the required role have keys of their own', async () => {
    const { url, logs } = await startAdminService();
    expect((await api(url, 'GET', '/api/events', { token: VIEWER })).status).toBe(200);
    expect((await api(url, 'POST', '/api/dead-letters/replay', { token: VIEWER, body: {} })).status).toBe(
      403,
    );

    const auditLines = logs
      .raw()
      .split('\n')
      .filter((line) => line.includes('"audit":true'));
    expect(auditLines.length).toBeGreaterThanOrEqual(2);
    for (const line of auditLines) expect(duplicateKeys(line), line).toEqual([]);
    const parsed = auditLines.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(parsed.find((l) => l.action === 'events.list')).toMatchObject({
      role: 'admin',
      identity: 'victor',
      actorRole: 'viewer',
      outcome: 'ok',
    });
    expect(parsed.find((l) => l.outcome === 'denied')).toMatchObject({
      role: 'admin',
      identity: 'victor',
      actorRole: 'viewer',
      requiredRole: 'operator',
    });
  });
});

describe('browser sessions', () => {
  it('end when the token they were made from gets a new value under the same name and role', async () => {
    const first = await startAdminService();
    const signedIn = await login(first.url, OPERATOR);
    expect(signedIn.status).toBe(303);
    const cookie = sessionCookieOf(signedIn);
    const whoami = (url: string) => api(url, 'GET', '/api/whoami', { headers: { cookie } });
    expect((await whoami(first.url)).json).toMatchObject({ name: 'alice', role: 'operator' });

    // The same session on an admin instance whose config says alice's token is now another value.
    const rotated = await startAdminService(
      [{ name: 'alice', token: 'rotated-operator-token-fedcba9876543210', role: 'operator' }],
      first,
    );
    expect((await whoami(rotated.url)).status).toBe(401);
    // An unchanged token keeps its session: the binding is to the value, not to the restart.
    const unchanged = await startAdminService(TOKENS, first);
    expect((await whoami(unchanged.url)).status).toBe(200);
    // Nothing of the token is readable from the session in Redis but the fingerprint.
    const stored = await first.runtime.redis.keys(first.runtime.keys.adminSession('*'));
    const raw = String(await first.runtime.redis.get(stored[0]!));
    expect(raw).not.toContain(OPERATOR);
    expect(JSON.parse(raw)).toMatchObject({
      name: 'alice',
      tokenFingerprint: expect.stringMatching(/^[0-9a-f]{32}$/),
    });
  });
});

describe('sign-in', () => {
  it('ignores a next that would leave the origin or break the Location header, before any session exists', async () => {
    const { url, runtime } = await startAdminService();
    const sessionCount = async () => (await runtime.redis.keys(runtime.keys.adminSession('*'))).length;
    const offOrigin = [
      '//evil.example/x',
      '/\\evil.example/x',
      '/\t/evil.example/x',
      '/\n/evil.example',
      '/\r\nSet-Cookie: x=1',
      '/\u0085/evil.example',
      '/\u2028x',
      'https://evil.example/',
      'javascript:alert(1)',
      '',
    ];
    for (const next of offOrigin) {
      const before = await sessionCount();
      const res = await login(url, OPERATOR, next);
      expect(res.status, JSON.stringify(next)).toBe(303);
      expect(res.headers.location, JSON.stringify(next)).toBe(HOME);
      expect(await sessionCount()).toBe(before + 1);
    }
    // The same through the query string, where `%09` arrives decoded as a tab.
    const viaQuery = await from('127.0.0.1', `${url}/login?token=${OPERATOR}&next=/%09/evil.example`);
    expect(viaQuery.status).toBe(303);
    expect(viaQuery.headers.location).toBe(HOME);
    const newline = await from('127.0.0.1', `${url}/login?token=${OPERATOR}&next=/%0aX`);
    expect(newline.status).toBe(303);
    expect(newline.headers.location).toBe(HOME);
    // A path of ours, query and all, is kept.
    const own = await login(url, OPERATOR, '/api/events?limit=5');
    expect(own.headers.location).toBe('/api/events?limit=5');
  });

  it('answers 429 with Retry-After to an address that keeps sending wrong tokens; others still sign in', async () => {
    const { url, logs } = await startAdminService();
    const statuses: number[] = [];
    for (let i = 0; i < 50; i += 1)
      statuses.push((await login(url, `wrong-token-${i}-0123456789`, '/', '127.0.0.2')).status);
    expect(statuses.slice(0, 10).every((s) => s === 401)).toBe(true);
    expect(statuses.filter((s) => s === 429).length).toBe(40);
    const throttled = await login(url, OPERATOR, '/', '127.0.0.2');
    expect(throttled.status).toBe(429);
    expect(Number(throttled.headers['retry-after'])).toBeGreaterThan(0);
    // A wrong Bearer token from the throttled address waits too.
    const bearer = await from('127.0.0.2', `${url}/api/events`, { headers: { authorization: 'Bearer x' } });
    expect(bearer.status).toBe(429);
    expect(JSON.parse(bearer.text)).toMatchObject({ error: 'RATE_LIMITED' });

    const elsewhere = await login(url, OPERATOR, '/api/whoami', '127.0.0.3');
    expect(elsewhere.status).toBe(303);
    const refused = logs.lines.filter((l) => l.msg === 'admin login refused');
    expect(refused.find((l) => l.reason === 'bad token')).toMatchObject({ ip: '127.0.0.2' });
    expect(refused.find((l) => l.reason === 'throttled')).toMatchObject({ ip: '127.0.0.2' });
    expect(logs.raw()).not.toContain('wrong-token-');
  });
});
