// biome-ignore-all lint/suspicious/noExplicitAny: JSON answers are read loosely; the assertions check their shape
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { cloudPush, dcRefsChanged } from '../fixtures/payloads.js';
import { api, type Outcome, scriptedWorker, startAdmin, waitFor } from '../helpers/admin.js';
import { cloudRequest, dcRequest, send } from '../helpers/bitbucket.js';
import { SECRETS, testConfig } from '../helpers/config.js';
import { startIngress } from '../helpers/ingress.js';
import { captureLogs } from '../helpers/logs.js';
import { useTestRedis } from '../helpers/redis.js';

const OPERATOR = 'operator-token-0123456789abcdef';
const VIEWER = 'viewer-token-0123456789abcdef';

const db = useTestRedis();

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

async function relay(
  overrides: Record<string, unknown> = {},
  outcome: (e: string, t: string) => Outcome = () => ({ ok: true }),
) {
  const config = testConfig(db.url, {
    admin: {
      tokens: [
        { name: 'alice', token: OPERATOR, role: 'operator' },
        { name: 'victor', token: VIEWER, role: 'viewer' },
      ],
    },
    targets: [
      { id: 'ci', url: 'http://127.0.0.1:9/a' },
      { id: 'ci2', url: 'http://127.0.0.1:9/b' },
    ],
    routes: [
      { source: 'cloud', targets: ['ci', 'ci2'] },
      { source: 'dc', targets: ['ci'] },
    ],
    ...overrides,
  });
  const logs = captureLogs();
  const ing = await startIngress(config, logs.log);
  closers.push(() => ing.close());
  const admin = await startAdmin(ing.runtime);
  closers.push(() => admin.close());
  const workers = config.targets.map((t) =>
    scriptedWorker(ing.runtime, t.id, (job) => outcome(job.data.eventId, t.id)),
  );
  closers.push(async () => {
    await Promise.all(workers.map((w) => w.close()));
  });
  const state = async (id: string, target: string) =>
    (await ing.runtime.queues.get(target)!.getJobState(`${id}.${target}`)) as string;
  const push = async (n: number, o: Parameters<typeof cloudPush>[0] = {}) => {
    const res = await send(
      ing.url,
      'cloud',
      cloudRequest('repo:push', cloudPush({ ref: `branch-${n}`, ...o })),
    );
    expect(res.status).toBe(202);
    return String(res.json.id);
  };
  const dcPush = async (n: number) => {
    const res = await send(ing.url, 'dc', dcRequest('repo:refs_changed', dcRefsChanged({ ref: `dc-${n}` })));
    expect(res.status).toBe(202);
    return String(res.json.id);
  };
  const settled = async (id: string, target: string) =>
    waitFor(async () => ['completed', 'failed'].includes(await state(id, target)));
  return { config, ing, admin, logs, workers, state, push, dcPush, settled, url: admin.url };
}

function audits(lines: Record<string, unknown>[], action?: string) {
  return lines.filter((l) => l.audit === true && (!action || l.action === action));
}

describe('auth', () => {
  it('401 without or with a bad token, 403 when a viewer acts, viewers read, health checks are open', async () => {
    const r = await relay();
    expect((await api(r.url, 'GET', '/healthz')).status).toBe(200);
    const none = await api(r.url, 'GET', '/api/events');
    expect(none.status).toBe(401);
    expect(none.json).toEqual({ error: 'UNAUTHORIZED', message: expect.any(String) });
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect((await api(r.url, 'GET', '/api/events', { token: 'nope-nope-nope-nope' })).status).toBe(401);
    expect((await api(r.url, 'GET', '/metrics')).status).toBe(401);
    // A prefix of a real token is not a token.
    expect((await api(r.url, 'GET', '/api/events', { token: OPERATOR.slice(0, -1) })).status).toBe(401);

    expect((await api(r.url, 'GET', '/api/events', { token: VIEWER })).status).toBe(200);
    const who = await api(r.url, 'GET', '/api/whoami', { token: VIEWER });
    expect(who.json).toEqual({ name: 'victor', role: 'viewer', kind: 'token' });
    const denied = await api(r.url, 'POST', '/api/dead-letters/replay', {
      token: VIEWER,
      body: { target: 'ci' },
    });
    expect(denied.status).toBe(403);
    expect(denied.json.error).toBe('FORBIDDEN');
    expect(audits(r.logs.lines).find((l) => l.outcome === 'denied')).toMatchObject({
      identity: 'victor',
      actorRole: 'viewer',
      requiredRole: 'operator',
    });
    const ok = await api(r.url, 'POST', '/api/dead-letters/replay', {
      token: OPERATOR,
      body: { target: 'ci', dryRun: true },
    });
    expect(ok.status).toBe(200);
    // Tokens never reach the log.
    expect(r.logs.raw()).not.toContain(OPERATOR);
    expect(r.logs.raw()).not.toContain(VIEWER);
  });

  it('accepts OIDC access tokens from the configured issuer, roles from a nested claim', async () => {
    const { publicKey, privateKey } = await generateKeyPair('RS256');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
    const jwks: Server = createServer((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((res) => jwks.listen(0, '127.0.0.1', res));
    closers.push(() => new Promise((res) => jwks.close(() => res())));
    const jwksUrl = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks`;
    const r = await relay({
      admin: {
        tokens: [],
        oidc: {
          issuer: 'https://sso.example.com/realms/ops',
          audience: 'hookrelay',
          jwksUrl,
          rolesClaim: 'realm_access.roles',
        },
      },
    });
    const jwt = (
      claims: Record<string, unknown>,
      o: { aud?: string; iss?: string; exp?: string | number } = {},
    ) =>
      new SignJWT(claims)
        .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
        .setIssuer(o.iss ?? 'https://sso.example.com/realms/ops')
        .setAudience(o.aud ?? 'hookrelay')
        .setSubject('u-1')
        .setIssuedAt()
        .setExpirationTime(o.exp ?? '10m')
        .sign(privateKey);
    const operator = await jwt({
      preferred_username: 'olga',
      realm_access: { roles: ['operator', 'other'] },
    });
    const who = await api(r.url, 'GET', '/api/whoami', { token: operator });
    expect(who.status).toBe(200);
    expect(who.json).toEqual({ name: 'olga', role: 'operator', kind: 'oidc' });
    const viewer = await jwt({ preferred_username: 'vera', realm_access: { roles: ['viewer'] } });
    expect((await api(r.url, 'GET', '/api/events', { token: viewer })).status).toBe(200);
    expect(
      (await api(r.url, 'POST', '/api/dead-letters/replay', { token: viewer, body: { target: 'ci' } }))
        .status,
    ).toBe(403);
    const noRole = await jwt({ preferred_username: 'nina', realm_access: { roles: ['user'] } });
    expect((await api(r.url, 'GET', '/api/events', { token: noRole })).status).toBe(403);
    const wrongAud = await jwt({ realm_access: { roles: ['operator'] } }, { aud: 'someone-else' });
    expect((await api(r.url, 'GET', '/api/events', { token: wrongAud })).status).toBe(401);
    const wrongIss = await jwt(
      { realm_access: { roles: ['operator'] } },
      { iss: 'https://evil.example.com' },
    );
    expect((await api(r.url, 'GET', '/api/events', { token: wrongIss })).status).toBe(401);
    const expired = await jwt(
      { realm_access: { roles: ['operator'] } },
      { exp: Math.floor(Date.now() / 1000) - 3600 },
    );
    expect((await api(r.url, 'GET', '/api/events', { token: expired })).status).toBe(401);
    const { privateKey: otherKey } = await generateKeyPair('RS256');
    const forged = await new SignJWT({ realm_access: { roles: ['operator'] } })
      .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
      .setIssuer('https://sso.example.com/realms/ops')
      .setAudience('hookrelay')
      .setExpirationTime('10m')
      .sign(otherKey);
    expect((await api(r.url, 'GET', '/api/events', { token: forged })).status).toBe(401);
  });
});

describe('events', () => {
  it('shows the life of one event, per target, without body, signature or secrets', async () => {
    const r = await relay({}, (_e, t) =>
      t === 'ci2' ? { status: 503, excerpt: 'Jenkins is restarting' } : { ok: true },
    );
    const id = await r.push(1);
    await r.settled(id, 'ci');
    await r.settled(id, 'ci2');
    const res = await api<Record<string, any>>(r.url, 'GET', `/api/events/${id}`, { token: VIEWER });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({
      id,
      source: 'cloud',
      platform: 'cloud',
      eventKey: 'repo:push',
      repository: 'acme/widgets',
      refs: [expect.objectContaining({ name: 'branch-1' })],
      clientIp: '127.0.0.1',
    });
    expect(res.json.deliveryId).toEqual(expect.any(String));
    expect(Date.parse(res.json.receivedAt)).toBeGreaterThan(Date.now() - 60_000);
    const byTarget = Object.fromEntries(res.json.targets.map((t: any) => [t.target, t]));
    expect(byTarget.ci).toMatchObject({
      state: 'delivered',
      attempts: [{ number: 1, status: 200 }],
      job: { state: 'completed' },
    });
    expect(byTarget.ci2).toMatchObject({
      state: 'dead',
      reason: 'status 503',
      excerpt: 'Jenkins is restarting',
      attempts: [{ number: 1, status: 503, trigger: 'bitbucket' }],
      job: { id: `${id}.ci2`, state: 'failed' },
    });
    const text = JSON.stringify(res.json);
    expect(text).not.toContain(SECRETS.cloud);
    expect(text).not.toContain('sha256=');
    expect(text).not.toContain('Fix the frobnicator'); // the commit message lives only in the body
    expect(text).not.toMatch(/"(body|hdr|headers)"/);

    expect(
      (await api(r.url, 'GET', '/api/events/00000000-0000-0000-0000-000000000000', { token: VIEWER })).json,
    ).toMatchObject({
      error: 'NOT_FOUND',
    });
  });

  it('lists events newest first, filtered, with an opaque cursor', async () => {
    const r = await relay({}, (_e, t) => (t === 'ci2' ? { status: 500 } : { ok: true }));
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push(await r.push(i));
    ids.push(await r.dcPush(1));
    ids.push(await r.push(9, { repo: 'acme/gadgets' }));
    for (const id of ids) await r.settled(id, 'ci');
    const newestFirst = [...ids].reverse();

    const all = await api<{ events: any[]; nextCursor: string | null }>(r.url, 'GET', '/api/events', {
      token: VIEWER,
    });
    expect(all.json.events.map((e) => e.id)).toEqual(newestFirst);
    expect(all.json.nextCursor).toBeNull();

    const seen: string[] = [];
    let cursor: string | null = '';
    do {
      const page: { json: { events: any[]; nextCursor: string | null } } = await api(
        r.url,
        'GET',
        `/api/events?limit=2${cursor ? `&cursor=${cursor}` : ''}`,
        { token: VIEWER },
      );
      expect(page.json.events.length).toBeLessThanOrEqual(2);
      seen.push(...page.json.events.map((e) => e.id));
      cursor = page.json.nextCursor;
    } while (cursor);
    expect(seen).toEqual(newestFirst);

    const dc = await api<{ events: any[] }>(r.url, 'GET', '/api/events?source=dc', { token: VIEWER });
    expect(dc.json.events.map((e) => e.id)).toEqual([ids[3]]);
    const gadgets = await api<{ events: any[] }>(r.url, 'GET', '/api/events?repo=acme/gadg*', {
      token: VIEWER,
    });
    expect(gadgets.json.events.map((e) => e.id)).toEqual([ids[4]]);
    await waitFor(async () => {
      const dead = await api<{ events: any[] }>(r.url, 'GET', '/api/events?target=ci2&state=dead', {
        token: VIEWER,
      });
      return dead.json.events.length === 4;
    });
    const since = await api<{ events: any[] }>(
      r.url,
      'GET',
      `/api/events?since=${new Date(Date.now() + 60_000).toISOString()}`,
      {
        token: VIEWER,
      },
    );
    expect(since.json.events).toEqual([]);
    expect((await api(r.url, 'GET', '/api/events?target=nope', { token: VIEWER })).json.error).toBe(
      'BAD_REQUEST',
    );
    expect((await api(r.url, 'GET', '/api/events?cursor=garbage', { token: VIEWER })).json.error).toBe(
      'BAD_REQUEST',
    );
    expect(audits(r.logs.lines, 'events.list').length).toBeGreaterThan(3);
  });

  it('answers exactly the events matching repo, branch, commit and state; an unknown filter is a 400', async () => {
    const r = await relay({}, (_e, t) => (t === 'ci2' ? { status: 500 } : { ok: true }));
    const onMain = await r.push(1, { ref: 'main', newHash: 'c0ffee'.padEnd(40, '1') });
    const onRelease = await r.push(2, { ref: 'release/2.4', newHash: 'beef00'.padEnd(40, '2') });
    const alsoRelease = await r.push(3, { ref: 'release/2.5', newHash: 'beef11'.padEnd(40, '3') });
    const otherRepo = await r.push(4, {
      ref: 'main',
      repo: 'acme/gadgets',
      newHash: 'c0ffee'.padEnd(40, '4'),
    });
    for (const id of [onMain, onRelease, alsoRelease, otherRepo]) {
      await r.settled(id, 'ci');
      await r.settled(id, 'ci2');
    }
    const ids = async (qs: string) =>
      (await api<{ events: any[] }>(r.url, 'GET', `/api/events?${qs}`, { token: VIEWER })).json.events
        .map((e) => e.id)
        .sort();
    const sorted = (...list: string[]) => [...list].sort();
    expect(await ids('branch=main')).toEqual(sorted(onMain, otherRepo));
    expect(await ids('branch=release/*')).toEqual(sorted(onRelease, alsoRelease));
    expect(await ids('repo=acme/widgets&branch=main')).toEqual([onMain]);
    expect(await ids('commit=C0FFEE')).toEqual(sorted(onMain, otherRepo));
    expect(await ids('commit=beef00')).toEqual([onRelease]);
    expect(await ids('target=ci&state=dead')).toEqual([]);
    expect(await ids('target=ci2&state=dead&branch=main')).toEqual(sorted(onMain, otherRepo));
    expect(await ids('target=ci&state=delivered&repo=acme/gadgets')).toEqual([otherRepo]);
    expect(await ids('state=no-route')).toEqual([]);
    expect(await ids(`eventId=${onRelease}`)).toEqual([onRelease]);

    const unknown = await api(r.url, 'GET', '/api/events?brnach=main', { token: VIEWER });
    expect(unknown.status).toBe(400);
    expect(unknown.json).toMatchObject({ error: 'UNKNOWN_FILTER' });
    expect(String(unknown.json.message)).toContain('brnach');
    expect((await api(r.url, 'GET', '/api/events?commit=xyz', { token: VIEWER })).status).toBe(400);
    expect((await api(r.url, 'GET', '/api/dead-letters?brnach=x', { token: VIEWER })).status).toBe(400);
    expect((await api(r.url, 'GET', '/api/suppressed?brnach=x', { token: VIEWER })).status).toBe(400);
  });
});

describe('dead letters', () => {
  it('lists with filters and shows one with its attempts', async () => {
    const r = await relay({}, (_e, t) =>
      t === 'ci2' ? { status: 503, excerpt: 'down' } : { error: 'timeout after 10000 ms' },
    );
    const a = await r.push(1);
    const b = await r.dcPush(2);
    for (const [id, t] of [
      [a, 'ci'],
      [a, 'ci2'],
      [b, 'ci'],
    ] as const)
      await r.settled(id, t);
    const list = await api<{ deadLetters: any[]; total: number }>(r.url, 'GET', '/api/dead-letters', {
      token: VIEWER,
    });
    expect(list.json.total).toBe(3);
    const q = async (qs: string) =>
      (
        await api<{ deadLetters: any[] }>(r.url, 'GET', `/api/dead-letters?${qs}`, { token: VIEWER })
      ).json.deadLetters
        .map((d) => d.id)
        .sort();
    expect(await q('target=ci2')).toEqual([`${a}.ci2`]);
    expect(await q('status=5xx')).toEqual([`${a}.ci2`]);
    expect(await q('status=503')).toEqual([`${a}.ci2`]);
    expect(await q('status=timeout')).toEqual([`${a}.ci`, `${b}.ci`].sort());
    expect(await q('source=dc')).toEqual([`${b}.ci`]);
    expect(await q('repo=ACME/*')).toEqual([`${b}.ci`]);
    expect(await q('eventKey=repo:push')).toEqual([`${a}.ci`, `${a}.ci2`].sort());
    expect(await q('since=1h')).toHaveLength(3);
    expect(await q(`until=${Date.now() - 3_600_000}`)).toHaveLength(0);
    const bad = await api(r.url, 'GET', '/api/dead-letters?status=6xx', { token: VIEWER });
    expect(bad.status).toBe(400);

    const one = await api<Record<string, any>>(r.url, 'GET', `/api/dead-letters/${a}.ci2`, { token: VIEWER });
    expect(one.json).toMatchObject({
      id: `${a}.ci2`,
      eventId: a,
      target: 'ci2',
      source: 'cloud',
      status: 503,
      statusClass: '5xx',
      reason: 'status 503',
      excerpt: 'down',
      idempotencyKey: `${a}.ci2`,
      attempts: [{ number: 1, status: 503 }],
      expired: false,
    });
    expect((await api(r.url, 'GET', `/api/dead-letters/${a}.nope`, { token: VIEWER })).status).toBe(404);
  });

  it('replays one, keeping the Idempotency-Key; fresh issues a new one; a failing replay comes back', async () => {
    let fail = true;
    const r = await relay({ routes: [{ source: 'cloud', targets: ['ci'] }] }, () =>
      fail ? { status: 502 } : { ok: true },
    );
    const a = await r.push(1);
    const b = await r.push(2);
    await r.settled(a, 'ci');
    await r.settled(b, 'ci');
    expect(await r.state(a, 'ci')).toBe('failed');

    // Still failing: the replay runs once and lands back in the dead letters (no automatic retries).
    const again = await api(r.url, 'POST', `/api/dead-letters/${a}.ci/replay`, { token: OPERATOR, body: {} });
    expect(again.status).toBe(200);
    expect(again.json).toMatchObject({ replayed: 1, id: `${a}.ci`, idempotencyKey: `${a}.ci` });
    await waitFor(async () => r.workers[0]!.seen.filter((s) => s.id === `${a}.ci`).length === 2);
    await waitFor(async () => (await r.state(a, 'ci')) === 'failed');
    const back = await api<Record<string, any>>(r.url, 'GET', `/api/dead-letters/${a}.ci`, { token: VIEWER });
    expect(back.json.trigger).toBe('replay');
    expect(back.json.attempts.map((x: any) => x.trigger)).toEqual(['bitbucket', 'replay']);

    fail = false;
    const res = await api(r.url, 'POST', `/api/dead-letters/${a}.ci/replay`, { token: OPERATOR, body: {} });
    expect(res.status).toBe(200);
    await waitFor(async () => (await r.state(a, 'ci')) === 'completed');
    const replays = r.workers[0]!.seen.filter((s) => s.id === `${a}.ci`);
    expect(replays.at(-1)!.data).toEqual({
      eventId: a,
      targetId: 'ci',
      idempotencyKey: `${a}.ci`,
      trigger: 'replay',
    });
    const ev = await api<Record<string, any>>(r.url, 'GET', `/api/events/${a}`, { token: VIEWER });
    expect(ev.json.targets[0].state).toBe('delivered');

    const fresh = await api<Record<string, any>>(r.url, 'POST', `/api/dead-letters/${b}.ci/replay`, {
      token: OPERATOR,
      body: { fresh: true },
    });
    expect(fresh.json.idempotencyKey).toMatch(new RegExp(`^${b}\\.ci\\.[0-9a-f-]{36}$`));
    await waitFor(async () => (await r.state(b, 'ci')) === 'completed');
    expect(r.workers[0]!.seen.filter((s) => s.id === `${b}.ci`).at(-1)!.data.idempotencyKey).toBe(
      fresh.json.idempotencyKey,
    );

    // Not a dead letter (anymore): 409, and unknown: 404.
    expect(
      (await api(r.url, 'POST', `/api/dead-letters/${a}.ci/replay`, { token: OPERATOR, body: {} })).json
        .error,
    ).toBe('CONFLICT');
    expect(
      (await api(r.url, 'POST', '/api/dead-letters/x.ci/replay', { token: OPERATOR, body: {} })).status,
    ).toBe(404);
    const lines = audits(r.logs.lines, 'dead-letters.replay');
    expect(lines.filter((l) => l.outcome === 'ok')).toHaveLength(3);
    expect(lines[0]).toMatchObject({ identity: 'alice', actorRole: 'operator', ids: [`${a}.ci`], count: 1 });
  });

  it('bulk replay needs a filter, counts on dryRun and replays what matches', async () => {
    let fail = true;
    const r = await relay({}, (_e, t) => (fail ? { status: t === 'ci' ? 503 : 404 } : { ok: true }));
    const ids = [await r.push(1), await r.push(2), await r.dcPush(3)];
    for (const id of ids) await r.settled(id, 'ci');
    await r.settled(ids[0]!, 'ci2');
    await r.settled(ids[1]!, 'ci2');

    for (const body of [{}, { dryRun: true }, { fresh: true }, { filter: {} }]) {
      const res = await api(r.url, 'POST', '/api/dead-letters/replay', { token: OPERATOR, body });
      expect(res.status).toBe(400);
      expect(res.json.error).toBe('FILTER_REQUIRED');
    }
    const dry = await api<Record<string, any>>(r.url, 'POST', '/api/dead-letters/replay', {
      token: OPERATOR,
      body: { target: 'ci', since: '1h', dryRun: true },
    });
    expect(dry.json).toMatchObject({ dryRun: true, matched: 3, wouldBe: 3 });
    expect(await r.state(ids[0]!, 'ci')).toBe('failed');

    fail = false;
    const done = await api<Record<string, any>>(r.url, 'POST', '/api/dead-letters/replay', {
      token: OPERATOR,
      body: { filter: { target: 'ci', source: 'cloud' } },
    });
    expect(done.json).toMatchObject({ dryRun: false, matched: 2, replayed: 2, failed: [] });
    await waitFor(
      async () =>
        (await r.state(ids[0]!, 'ci')) === 'completed' && (await r.state(ids[1]!, 'ci')) === 'completed',
    );
    expect(await r.state(ids[2]!, 'ci')).toBe('failed');
    expect(await r.state(ids[0]!, 'ci2')).toBe('failed');
    const line = audits(r.logs.lines, 'dead-letters.replay').at(-1)!;
    expect(line).toMatchObject({ identity: 'alice', count: 2, filter: { target: 'ci', source: 'cloud' } });
    expect(audits(r.logs.lines, 'dead-letters.replay.dry-run')[0]).toMatchObject({ count: 3 });
  });

  it('purges with a filter (required) and the event remembers who purged', async () => {
    const r = await relay({}, () => ({ status: 410 }));
    const a = await r.push(1);
    const b = await r.push(2);
    for (const id of [a, b]) for (const t of ['ci', 'ci2']) await r.settled(id, t);
    expect(
      (await api(r.url, 'POST', '/api/dead-letters/purge', { token: OPERATOR, body: {} })).json.error,
    ).toBe('FILTER_REQUIRED');
    expect((await api(r.url, 'DELETE', '/api/dead-letters', { token: OPERATOR })).json.error).toBe(
      'FILTER_REQUIRED',
    );
    const purged = await api<Record<string, any>>(r.url, 'POST', '/api/dead-letters/purge', {
      token: OPERATOR,
      body: { target: 'ci2' },
    });
    expect(purged.json).toMatchObject({ purged: 2 });
    expect(await r.ing.runtime.queues.get('ci2')!.getFailedCount()).toBe(0);
    expect(await r.ing.runtime.queues.get('ci')!.getFailedCount()).toBe(2);
    const del = await api(r.url, 'DELETE', `/api/dead-letters?target=ci&repo=acme/widgets`, {
      token: OPERATOR,
    });
    expect(del.json).toMatchObject({ purged: 2 });
    const ev = await api<Record<string, any>>(r.url, 'GET', `/api/events/${a}`, { token: VIEWER });
    expect(ev.json.targets[1]).toMatchObject({ state: 'dead', reason: 'status 410; purged by alice' });
    expect(audits(r.logs.lines, 'dead-letters.purge').map((l) => l.count)).toEqual([2, 2]);
  });
});

describe('suppressed deliveries', () => {
  it('lists with the loop-guard reason and releases with the same Idempotency-Key', async () => {
    const r = await relay({ routes: [{ source: 'cloud', targets: ['ci'] }] }, (e) => ({
      suppress: `skip marker [skip ci] in ${e.slice(0, 4)}`,
    }));
    const a = await r.push(1);
    const b = await r.push(2);
    await r.settled(a, 'ci');
    await r.settled(b, 'ci');
    const list = await api<{ suppressed: any[]; total: number }>(r.url, 'GET', '/api/suppressed', {
      token: VIEWER,
    });
    expect(list.json.total).toBe(2);
    expect(list.json.suppressed[0]).toMatchObject({
      id: `${b}.ci`,
      target: 'ci',
      reason: expect.stringContaining('[skip ci]'),
      repository: 'acme/widgets',
      refs: ['branch-2'],
    });
    const ev = await api<Record<string, any>>(r.url, 'GET', `/api/events/${a}`, { token: VIEWER });
    expect(ev.json.targets[0]).toMatchObject({
      state: 'suppressed',
      reason: expect.stringContaining('skip'),
    });

    expect(
      (await api(r.url, 'POST', '/api/suppressed/release', { token: OPERATOR, body: {} })).json.error,
    ).toBe('FILTER_REQUIRED');
    expect((await api(r.url, 'POST', `/api/suppressed/${a}.ci/release`, { token: VIEWER })).status).toBe(403);

    await r.workers[0]!.close();
    const one = await api<Record<string, any>>(r.url, 'POST', `/api/suppressed/${a}.ci/release`, {
      token: OPERATOR,
      body: {},
    });
    expect(one.json).toMatchObject({ released: 1, jobId: `${a}.ci.release-1` });
    const job = await r.ing.runtime.queues.get('ci')!.getJob(`${a}.ci.release-1`);
    expect(job?.data).toEqual({ eventId: a, targetId: 'ci', idempotencyKey: `${a}.ci`, trigger: 'release' });
    expect(await job?.getState()).toBe('waiting');
    expect(job?.opts.attempts).toBe(r.config.targets[0]!.retry.attempts);

    const dry = await api<Record<string, any>>(r.url, 'POST', '/api/suppressed/release', {
      token: OPERATOR,
      body: { reason: 'skip', dryRun: true },
    });
    expect(dry.json).toMatchObject({ dryRun: true, wouldBe: 1, ids: [`${b}.ci`] });
    const bulk = await api<Record<string, any>>(r.url, 'POST', '/api/suppressed/release', {
      token: OPERATOR,
      body: { repo: 'acme/*' },
    });
    expect(bulk.json).toMatchObject({ released: 1, ids: [`${b}.ci`] });
    expect(
      (await api<{ total: number }>(r.url, 'GET', '/api/suppressed', { token: VIEWER })).json.total,
    ).toBe(0);
    expect(audits(r.logs.lines, 'suppressed.release').map((l) => l.count)).toEqual([1, 1]);
  });
});

describe('metrics', () => {
  it('exposes queue depths, dead letters, suppressed, ingress counters and event-loop lag', async () => {
    const r = await relay({}, (_e, t) => (t === 'ci2' ? { status: 500 } : { ok: true }));
    await r.workers[0]!.close(); // ci jobs stay waiting
    const a = await r.push(1);
    await r.settled(a, 'ci2');
    await r.ing.runtime.redis.zadd(r.ing.runtime.keys.suppressed, Date.now(), `${a}.ci`);
    const res = await fetch(`${r.url}/metrics`, { headers: { authorization: `Bearer ${VIEWER}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/plain/);
    const text = await res.text();
    expect(text).toMatch(/hookrelay_queue_jobs\{target="ci",state="waiting"\} 1/);
    expect(text).toMatch(/hookrelay_queue_jobs\{target="ci2",state="failed"\} 1/);
    expect(text).toMatch(/hookrelay_dead_letters\{target="ci2"\} 1/);
    expect(text).toMatch(/hookrelay_dead_letters\{target="ci"\} 0/);
    expect(text).toMatch(/hookrelay_suppressed_deliveries 1/);
    expect(text).toMatch(/hookrelay_ingress_requests_total\{source="cloud",outcome="accepted"\} 1/);
    expect(text).toContain('hookrelay_process_nodejs_eventloop_lag_seconds');
    expect(text).toContain('# TYPE hookrelay_delivery_attempt_duration_seconds histogram');
  });
});
