import { afterEach, describe, expect, it } from 'vitest';
import { verifySignature } from '../../src/bitbucket/signature.js';
import { newSecret } from '../../src/delivery/signing.js';
import { readAttemptSummaries } from '../../src/queue/target-stats.js';
import type { DeliveryJobData } from '../../src/relay/job-types.js';
import { cloudPullRequest, cloudPush, dcRefsChanged } from '../fixtures/payloads.js';
import { cloudRequest, dcRequest, send } from '../helpers/bitbucket.js';
import { SECRETS } from '../helpers/config.js';
import { startRelay, type TestRelay, target } from '../helpers/delivery.js';
import { useTestRedis } from '../helpers/redis.js';
import { verifyStandardWebhook } from '../helpers/standard-webhooks.js';
import { startTargetServer, type TargetServer, waitUntil } from '../helpers/target-server.js';

const db = useTestRedis();
const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  // Relays first (their workers hold connections to the targets), then the target servers.
  const all = open.splice(0);
  for (const o of all.reverse()) await o.close();
});

async function server(...args: Parameters<typeof startTargetServer>): Promise<TargetServer> {
  const s = await startTargetServer(...args);
  open.push(s);
  return s;
}

async function relay(...args: Parameters<typeof startRelay>): Promise<TestRelay> {
  const r = await startRelay(...args);
  open.push(r);
  return r;
}

async function push(r: TestRelay, payload = cloudPush(), o: Parameters<typeof cloudRequest>[2] = {}) {
  const req = cloudRequest('repo:push', payload, o);
  const res = await send(r.ing.url, 'cloud', req);
  expect(res.status).toBe(202);
  return { id: String(res.json.id), req };
}

describe('http target', () => {
  it('forwards the exact bytes, the original Bitbucket headers and signature, plus the relay headers', async () => {
    const t = await server();
    const r = await relay(db.url, [
      target('ci', `${t.url}/bitbucket-hook/`, { headers: { 'X-Team': 'core' } }),
    ]);
    const { id, req } = await push(r);
    const dc = dcRequest('repo:refs_changed', dcRefsChanged());
    const dcRes = await send(r.ing.url, 'dc', dc);
    expect(dcRes.status).toBe(202);
    const [cloudGot, dcGot] = await Promise.all([
      r.settled(id, 'ci'),
      r.settled(String(dcRes.json.id), 'ci'),
    ]);
    expect(cloudGot.state).toBe('delivered');
    expect(dcGot.state).toBe('delivered');

    const got = t.received.find((x) => x.headers['x-hookrelay-event'] === id)!;
    expect(got.method).toBe('POST');
    expect(got.url).toBe('/bitbucket-hook/');
    expect(got.body.equals(req.body)).toBe(true);
    expect(verifySignature(String(got.headers['x-hub-signature']), got.body, [SECRETS.cloud])).toBe('ok');
    for (const h of [
      'content-type',
      'user-agent',
      'x-event-key',
      'x-request-uuid',
      'x-hook-uuid',
      'x-attempt-number',
      'x-hub-signature',
    ]) {
      expect(got.headers[h], h).toBe(req.headers[h]);
    }
    // No relay.id configured: the deployment's own, generated once and kept in Redis.
    const relayId = await db.inspect.get(r.ing.runtime.keys.relayId);
    expect(relayId).toMatch(/^relay-[0-9a-f]{12}$/);
    expect(got.headers).toMatchObject({
      'idempotency-key': `${id}.ci`,
      'x-hookrelay-event': id,
      'x-hookrelay-attempt': '1',
      'x-hookrelay-source': 'cloud',
      'x-hookrelay-hop': relayId,
      via: `1.1 hookrelay-${relayId}`,
      'x-team': 'core',
    });
    expect(got.headers.authorization).toBeUndefined();
    expect(cloudGot.attempts).toMatchObject([{ number: 1, status: 200, trigger: 'bitbucket' }]);

    const dcAt = t.received.find((x) => x.headers['x-hookrelay-event'] === dcRes.json.id)!;
    expect(dcAt.body.equals(dc.body)).toBe(true);
    expect(dcAt.headers['x-request-id']).toBe(dc.headers['x-request-id']);
    expect(dcAt.headers['content-type']).toBe('application/json; charset=UTF-8');
    expect(verifySignature(String(dcAt.headers['x-hub-signature']), dcAt.body, [SECRETS.dc])).toBe('ok');
  });

  it('signs with Standard Webhooks headers that the official library verifies, the id stable across retries', async () => {
    const t = await server();
    t.next({ status: 503 });
    const secret = newSecret(32);
    const r = await relay(db.url, [target('ci', t.url, { signingSecret: secret })]);
    const { id } = await push(r);
    expect((await r.settled(id, 'ci')).state).toBe('delivered');
    expect(t.received).toHaveLength(2);
    for (const got of t.received) {
      expect(String(got.headers['webhook-id'])).not.toContain('.');
      expect(Math.abs(Number(got.headers['webhook-timestamp']) - Date.now() / 1000)).toBeLessThan(60);
      verifyStandardWebhook(secret, got);
    }
    expect(t.received[1]!.headers['webhook-id']).toBe(t.received[0]!.headers['webhook-id']);
    expect(() => verifyStandardWebhook(newSecret(32), t.received[0]!)).toThrow();
  });

  it('retries 503s and 502s with backoff, keeping one Idempotency-Key, and records every attempt', async () => {
    const t = await server();
    t.next({ status: 503, body: 'busy' }, { status: 502 });
    const r = await relay(db.url, [target('ci', t.url)]);
    const { id } = await push(r);
    const final = await r.settled(id, 'ci');
    expect(final.state).toBe('delivered');
    expect(t.received).toHaveLength(3);
    expect(new Set(t.received.map((x) => x.headers['idempotency-key']))).toEqual(new Set([`${id}.ci`]));
    expect(t.received.map((x) => x.headers['x-hookrelay-attempt'])).toEqual(['1', '2', '3']);
    expect(final.attempts.map((a) => [a.number, a.status])).toEqual([
      [1, 503],
      [2, 502],
      [3, 200],
    ]);
    // The targets page's aggregates count each attempt (written by the worker within a second).
    const summaries = () => readAttemptSummaries(r.ing.runtime.redis, r.ing.runtime.keys, 'ci');
    await waitUntil(async () => (await summaries()).hour.attempts === 3);
    const stats = await summaries();
    expect(stats.hour.successRate).toBeCloseTo(1 / 3);
    expect(stats.day.attempts).toBe(3);
    expect(stats.hour.p50Ms).not.toBeNull();
  });

  it('honours Retry-After on 429 (seconds), and clamps a huge one to maxRetryAfter', async () => {
    const t = await server();
    const clamped = await server();
    t.next({ status: 429, headers: { 'retry-after': '1' } });
    clamped.next({ status: 503, headers: { 'retry-after': '86400' } });
    const r = await relay(db.url, [
      target('ci', t.url),
      target('clamped', clamped.url, { retry: { attempts: 3, delay: 50, maxRetryAfter: 300 } }),
    ]);
    const { id } = await push(r);
    expect((await r.settled(id, 'ci')).state).toBe('delivered');
    expect((await r.settled(id, 'clamped')).state).toBe('delivered');
    const [first, second] = t.received;
    expect(second!.at - first!.at).toBeGreaterThanOrEqual(950);
    expect(clamped.received).toHaveLength(2);
  });

  it("a dead letter's excerpt holds no form of the target's credentials, however the target echoes them", async () => {
    const token = 'bearer/tok+en=with odd&chars';
    // An error page that echoes the request the way proxies and CI front-ends do: the URL as received (query
    // percent-encoded), the Authorization value base64-wrapped, the token percent-encoded, the API key header.
    const echo = await server((req) => ({
      status: 403,
      body: [
        `url=${req.url}`,
        `auth=${Buffer.from(String(req.headers.authorization)).toString('base64')}`,
        `form=${encodeURIComponent(String(req.headers.authorization).slice(7))}`,
        `key=${req.headers['x-api-key']}`,
      ].join(' '),
    }));
    const r = await relay(db.url, [
      target('echo', `${echo.url}/invoke?token=query%2Btoken%2F99&job=main`, {
        auth: { type: 'bearer', token },
        headers: { 'X-Api-Key': 'api-key-0451' },
      }),
    ]);
    const { id } = await push(r);
    const dead = await r.settled(id, 'echo');
    expect(dead).toMatchObject({ state: 'dead', reason: 'status 403' });
    expect(echo.received[0]!.url).toContain('query%2Btoken%2F99');
    const forms = [
      token,
      encodeURIComponent(token),
      Buffer.from(`Bearer ${token}`).toString('base64'),
      'query+token/99',
      'query%2Btoken%2F99',
      'api-key-0451',
    ];
    for (const form of forms) expect(dead.excerpt, form).not.toContain(form);
    expect(dead.excerpt).toContain('url=/invoke?token=[redacted]');
    expect(dead.excerpt).toContain('key=[redacted]');
  });

  it('410 and 400 go straight to the dead letters: reason, excerpt, the attempt, and the job in the failed set', async () => {
    const gone = await server(() => ({ status: 410, body: 'gone: token s3cret-target-token is revoked' }));
    const bad = await server(() => ({ status: 400, body: '{"error":"bad payload"}' }));
    const r = await relay(db.url, [
      target('gone', gone.url, { auth: { type: 'bearer', token: 's3cret-target-token' } }),
      target('bad', bad.url),
    ]);
    const { id } = await push(r);
    const g = await r.settled(id, 'gone');
    const b = await r.settled(id, 'bad');
    expect(g).toMatchObject({ state: 'dead', reason: 'status 410' });
    expect(g.attempts).toMatchObject([{ number: 1, status: 410, trigger: 'bitbucket' }]);
    expect(g.excerpt).toContain('gone: token');
    expect(g.excerpt).not.toContain('s3cret-target-token');
    expect(b).toMatchObject({ state: 'dead', reason: 'status 400', excerpt: '{"error":"bad payload"}' });
    expect(gone.received).toHaveLength(1);
    expect(gone.received[0]!.headers.authorization).toBe('Bearer s3cret-target-token');
    // The attempt keeps the headers as sent and answered, for the timeline: credentials masked, the rest as is.
    const recorded = g.attempts[0]!;
    expect(recorded.requestHeaders).toMatchObject({
      authorization: '[masked]',
      'idempotency-key': `${id}.gone`,
      'x-event-key': 'repo:push',
      'x-hub-signature': '[masked]',
    });
    expect(recorded.responseHeaders).toMatchObject({ 'content-type': 'text/plain' });
    expect(JSON.stringify(recorded)).not.toContain('s3cret-target-token');
    const job = await r.ing.runtime.queues.get('gone')!.getJob(`${id}.gone`);
    expect(await job!.getState()).toBe('failed');
    expect(job!.failedReason).toBe('status 410');
    // Both are in the dead-letter index the lists read.
    const indexed = await r.ing.runtime.redis.zrange(r.ing.runtime.keys.deadLetters, 0, -1);
    expect(indexed.sort()).toEqual([`${id}.bad`, `${id}.gone`]);
  });

  it('timeouts are retried until the attempts run out, then dead-lettered as max attempts', async () => {
    const t = await server(() => ({ hang: true }));
    const r = await relay(db.url, [
      target('ci', t.url, { timeout: 300, retry: { attempts: 3, delay: 50, maxDelay: 100 } }),
    ]);
    const { id } = await push(r);
    const final = await r.settled(id, 'ci', ['dead']);
    expect(final.reason).toBe('max attempts');
    expect(final.attempts.map((a) => a.error)).toEqual(['timeout', 'timeout', 'timeout']);
    expect(t.received).toHaveLength(3);
  });

  it('does not follow redirects (a 3xx is permanent) and dead-letters what cannot make its max age', async () => {
    const moved = await server(() => ({ status: 302, headers: { location: '/elsewhere' } }));
    const slow = await server(() => ({ status: 503, headers: { 'retry-after': '30' } }));
    const r = await relay(db.url, [
      target('moved', moved.url),
      target('old', slow.url, { retry: { attempts: 5, delay: 50, maxAge: '5s' } }),
    ]);
    const { id } = await push(r);
    expect(await r.settled(id, 'moved')).toMatchObject({ state: 'dead', reason: 'status 302' });
    expect(moved.received.map((x) => x.url)).toEqual(['/']);
    expect(await r.settled(id, 'old')).toMatchObject({ state: 'dead', reason: 'max age' });
    expect(slow.received).toHaveLength(1);
  });

  it('a replayed dead letter gets one try with the same key: a failure goes straight back, no retries', async () => {
    const t = await server(() => ({ status: 410 }));
    const r = await relay(db.url, [target('ci', t.url)]);
    const { id } = await push(r);
    await r.settled(id, 'ci', ['dead']);
    const queue = r.ing.runtime.queues.get('ci')!;
    const job = await queue.getJob(`${id}.ci`);
    t.script(() => ({ status: 503 }));
    // What the ops side does for a replay.
    await job!.updateData({ ...(job!.data as DeliveryJobData), trigger: 'replay' });
    await job!.retry('failed');
    await waitUntil(
      async () => (await r.state(id, 'ci'))?.attempts.length === 2,
      20_000,
      'the replay attempt',
    );
    const after = await r.settled(id, 'ci', ['dead']);
    expect(after.reason).toBe('status 503');
    expect(after.attempts.map((a) => [a.number, a.status, a.trigger])).toEqual([
      [1, 410, 'bitbucket'],
      [2, 503, 'replay'],
    ]);
    await waitUntil(
      async () => (await queue.getJob(`${id}.ci`).then((j) => j!.getState())) === 'failed',
      20_000,
      'the replayed job back in the failed set',
    );
    expect(t.received).toHaveLength(2);
    expect(t.received[1]!.headers['idempotency-key']).toBe(`${id}.ci`);
  });

  it('a slow answer that outlasts the lock renewal is delivered once', async () => {
    const t = await server(() => ({ status: 200, delayMs: 1600 }));
    // timeout 2 s → lock 4 s, renewed every 1 s: the answer comes after a renewal, within the timeout.
    const r = await relay(db.url, [target('ci', t.url, { timeout: 2000 })]);
    const { id } = await push(r);
    expect((await r.settled(id, 'ci')).state).toBe('delivered');
    const first = t.received[0]!.at;
    // Long enough for a stalled check to have redelivered it if the lock had lapsed (lock + stalled interval).
    await waitUntil(() => Date.now() > first + 8500, 15_000);
    expect(t.received).toHaveLength(1);
  });
});

describe('CI target types', () => {
  it('jenkins-generic: token as ?token=, original body; 404 permanent, 500 dead as "may have fired"', async () => {
    const t = await server((req) => {
      if (!req.url.includes('token=gwt-token')) return { status: 403 };
      return req.url.startsWith('/nojob') ? { status: 404 } : { status: 500, body: 'trigger failed' };
    });
    const gwt = { type: 'jenkins-generic', auth: { type: 'token', token: 'gwt-token' } };
    const r = await relay(db.url, [
      target('gwt', `${t.url}/generic-webhook-trigger/invoke`, gwt),
      target('nojob', `${t.url}/nojob`, gwt),
    ]);
    const { id, req } = await push(r);
    expect(await r.settled(id, 'gwt')).toMatchObject({ state: 'dead', reason: 'status 500, may have fired' });
    expect(await r.settled(id, 'nojob')).toMatchObject({ state: 'dead', reason: 'status 404' });
    expect(t.received).toHaveLength(2);
    const got = t.received.find((x) => x.url.startsWith('/generic'))!;
    expect(got.body.equals(req.body)).toBe(true);
    expect(got.headers['x-event-key']).toBe('repo:push');
  });

  it('teamcity: commitHookNotification with the locator, Bearer token and an empty body', async () => {
    const t = await server(() => ({ status: 202 }));
    const r = await relay(db.url, [
      target('tc', `${t.url}/tc`, {
        type: 'teamcity',
        locator: 'vcsRoot:(id:Widgets_Git)',
        auth: { type: 'bearer', token: 'tc-token' },
      }),
    ]);
    const { id } = await push(r);
    expect((await r.settled(id, 'tc')).state).toBe('delivered');
    const got = t.received[0]!;
    const url = new URL(got.url, t.url);
    expect(url.pathname).toBe('/tc/app/rest/vcs-root-instances/commitHookNotification');
    expect(url.searchParams.get('locator')).toBe('vcsRoot:(id:Widgets_Git)');
    expect(got.headers.authorization).toBe('Bearer tc-token');
    expect(got.headers.accept).toBe('text/plain');
    expect(got.headers['content-length']).toBe('0');
    expect(got.body.length).toBe(0);
    expect(got.headers['idempotency-key']).toBe(`${id}.tc`);
  });

  it('buildkite: creates a build from the push (commit, branch, message) with a Bearer token', async () => {
    const t = await server(() => ({ status: 201, body: '{}' }));
    const r = await relay(db.url, [
      target('bk', `${t.url}/v2/organizations/acme/pipelines/widgets/builds`, {
        type: 'buildkite',
        auth: { type: 'bearer', token: 'bk-token' },
      }),
    ]);
    const { id } = await push(r, cloudPush({ ref: 'feature/x', message: 'Add the thing\n' }));
    expect((await r.settled(id, 'bk')).state).toBe('delivered');
    const got = t.received[0]!;
    expect(got.headers.authorization).toBe('Bearer bk-token');
    expect(got.headers['content-type']).toBe('application/json');
    expect(JSON.parse(got.body.toString())).toMatchObject({
      commit: '9fdd7b96d3f5c276d0b9e0bf38c879eb112d889a',
      branch: 'feature/x',
      message: 'Add the thing',
      env: { BITBUCKET_EVENT_KEY: 'repo:push', HOOKRELAY_EVENT_ID: id },
    });
    const pr = await send(
      r.ing.url,
      'cloud',
      cloudRequest('pullrequest:created', cloudPullRequest({ state: 'OPEN', mergeCommit: null })),
    );
    expect((await r.settled(String(pr.json.id), 'bk')).state).toBe('delivered');
    expect(JSON.parse(t.received[1]!.body.toString())).toMatchObject({
      branch: 'feature/thing',
      pull_request_id: 7,
    });
  });

  it('oauth2: fetches a client-credentials token once, caches it, and refreshes it on a 401', async () => {
    let issued = 0;
    const idp = await server(() => ({
      status: 200,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ access_token: `tok-${++issued}`, expires_in: 3600, token_type: 'Bearer' }),
    }));
    let accepted = 'Bearer tok-1';
    const t = await server((req) => ({ status: req.headers.authorization === accepted ? 200 : 401 }));
    const r = await relay(db.url, [
      target('iap', t.url, {
        auth: {
          type: 'oauth2',
          tokenUrl: `${idp.url}/token`,
          clientId: 'relay',
          clientSecret: 'client-s3cret',
          scope: 'ci',
        },
      }),
    ]);
    const first = await push(r);
    expect((await r.settled(first.id, 'iap')).state).toBe('delivered');
    const second = await push(r, cloudPush({ newHash: 'c'.repeat(40) }));
    expect((await r.settled(second.id, 'iap')).state).toBe('delivered');
    expect(idp.received).toHaveLength(1);
    const form = new URLSearchParams(idp.received[0]!.body.toString());
    expect(Object.fromEntries(form)).toMatchObject({
      grant_type: 'client_credentials',
      client_id: 'relay',
      scope: 'ci',
    });
    // The proxy rotates its keys: the cached token is refused once, a fresh one is fetched and used.
    accepted = 'Bearer tok-2';
    const third = await push(r, cloudPush({ newHash: 'd'.repeat(40) }));
    const s = await r.settled(third.id, 'iap');
    expect(s.state).toBe('delivered');
    expect(s.attempts).toHaveLength(1);
    expect(idp.received).toHaveLength(2);
    expect(t.received.map((x) => x.headers.authorization)).toEqual([
      'Bearer tok-1',
      'Bearer tok-1',
      'Bearer tok-1',
      'Bearer tok-2',
    ]);
  });
});

describe('isolation', () => {
  it('a dead target does not slow a healthy one; its circuit opens, stays open for the cooldown, then a probe closes it', async () => {
    const dead = await server(() => ({ status: 503 }));
    const healthy = await server();
    const r = await relay(db.url, [
      target('dead', dead.url, {
        concurrency: 1,
        retry: { attempts: 20, delay: 50, maxDelay: 100 },
        circuit: { failureThreshold: 2, cooldown: 3000 },
      }),
      target('healthy', healthy.url, { concurrency: 1 }),
    ]);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await push(r, cloudPush({ newHash: `${i}`.repeat(40) }))).id);
    const circuitKey = r.ing.runtime.keys.circuit('dead');
    await waitUntil(
      async () => Number(await db.inspect.hget(circuitKey, 'openUntil')) > 0,
      20_000,
      'circuit open',
    );
    const openUntil = Number(await db.inspect.hget(circuitKey, 'openUntil'));
    const callsWhenOpened = dead.received.length;
    expect(callsWhenOpened).toBe(2);
    // The healthy target gets everything while the dead one is paused.
    await Promise.all(ids.map((id) => r.settled(id, 'healthy')));
    expect(healthy.received).toHaveLength(5);
    await waitUntil(() => Date.now() > openUntil - 1500, 5000);
    if (Date.now() < openUntil) expect(dead.received.length).toBe(callsWhenOpened);
    // The target recovers: after the cooldown one probe succeeds, the circuit closes, the backlog drains.
    dead.script(() => ({ status: 200 }));
    await Promise.all(ids.map((id) => r.settled(id, 'dead', ['delivered'], 30_000)));
    expect(await db.inspect.exists(circuitKey)).toBe(0);
    expect(dead.received[callsWhenOpened]!.at).toBeGreaterThanOrEqual(openUntil - 5);
  });
});
