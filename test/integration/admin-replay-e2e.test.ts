// biome-ignore-all lint/suspicious/noExplicitAny: JSON answers are read loosely; the assertions check their shape
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startDeliveryWorkers } from '../../src/delivery/workers.js';
import { cloudPush } from '../fixtures/payloads.js';
import { api, startAdmin, waitFor } from '../helpers/admin.js';
import { cloudRequest, send } from '../helpers/bitbucket.js';
import { testConfig } from '../helpers/config.js';
import { startIngress } from '../helpers/ingress.js';
import { captureLogs } from '../helpers/logs.js';
import { useTestRedis } from '../helpers/redis.js';

/**
 * The admin side against the real delivery workers and a real HTTP target: the replay/release contract
 * end to end (what the admin writes, the worker reads).
 */
const TOKEN = 'e2e-operator-token-0123456789';

const db = useTestRedis();
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

/** Jenkins as a local server whose answer the test sets; it records every request's headers. */
async function jenkins() {
  const calls: IncomingHttpHeaders[] = [];
  let status = 503;
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      calls.push(req.headers);
      res
        .writeHead(status, { 'content-type': 'text/plain' })
        .end(status === 200 ? 'ok' : 'Jenkins is restarting');
    });
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  closers.push(() => new Promise((res) => server.close(() => res())));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/bitbucket-hook/`,
    calls,
    answer: (s: number) => {
      status = s;
    },
  };
}

async function relay(targetUrl: string) {
  const config = testConfig(db.url, {
    admin: { tokens: [{ name: 'ops', token: TOKEN, role: 'operator' }] },
    targets: [{ id: 'jenkins', url: targetUrl, retry: { attempts: 2, schedule: ['50ms'] } }],
    routes: [{ source: 'cloud', targets: ['jenkins'] }],
  });
  const ing = await startIngress(config, captureLogs().log);
  closers.push(() => ing.close());
  const admin = await startAdmin(ing.runtime);
  closers.push(() => admin.close());
  const workers = startDeliveryWorkers(ing.runtime);
  closers.push(() => workers.close());
  const state = (id: string) => ing.runtime.queues.get('jenkins')!.getJobState(`${id}.jenkins`);
  return { ing, url: admin.url, state };
}

describe('replay and release with the real delivery workers', () => {
  it('a delivery that died while Jenkins was down is replayed with its Idempotency-Key; a failing replay is not retried', async () => {
    const target = await jenkins();
    const r = await relay(target.url);
    const res = await send(r.ing.url, 'cloud', cloudRequest('repo:push', cloudPush()));
    const id = String(res.json.id);
    await waitFor(async () => (await r.state(id)) === 'failed');
    expect(target.calls).toHaveLength(2);
    const key = target.calls[0]!['idempotency-key'];
    expect(key).toBeTruthy();

    const dl = await api<Record<string, any>>(r.url, 'GET', '/api/dead-letters?target=jenkins&status=5xx', {
      token: TOKEN,
    });
    expect(dl.json.deadLetters.map((d: { id: string }) => d.id)).toEqual([`${id}.jenkins`]);

    // Still down: the replay is one try, back to the dead letters.
    const again = await api(r.url, 'POST', `/api/dead-letters/${id}.jenkins/replay`, {
      token: TOKEN,
      body: {},
    });
    expect(again.status).toBe(200);
    await waitFor(async () => target.calls.length === 3 && (await r.state(id)) === 'failed');
    await new Promise((res) => setTimeout(res, 500));
    expect(target.calls).toHaveLength(3);

    target.answer(200);
    const bulk = await api<Record<string, any>>(r.url, 'POST', '/api/dead-letters/replay', {
      token: TOKEN,
      body: { target: 'jenkins', since: '10m' },
    });
    expect(bulk.json).toMatchObject({ replayed: 1 });
    await waitFor(async () => (await r.state(id)) === 'completed');
    expect(target.calls.map((h) => h['idempotency-key'])).toEqual([key, key, key, key]);
    const ev = await api<Record<string, any>>(r.url, 'GET', `/api/events/${id}`, { token: TOKEN });
    expect(ev.json.targets[0].state).toBe('delivered');
    expect(ev.json.targets[0].attempts.map((a: { trigger?: string }) => a.trigger ?? 'bitbucket')).toEqual([
      'bitbucket',
      'bitbucket',
      'replay',
      'replay',
    ]);
  });

  it('a push the loop guard suppressed ([skip ci]) is listed with its reason and delivered on release', async () => {
    const target = await jenkins();
    target.answer(200);
    const r = await relay(target.url);
    const res = await send(
      r.ing.url,
      'cloud',
      cloudRequest('repo:push', cloudPush({ message: 'Bump version [skip ci]\n' })),
    );
    const id = String(res.json.id);
    const listed = await waitFor(async () => {
      const l = await api<{ suppressed: any[] }>(r.url, 'GET', '/api/suppressed', { token: TOKEN });
      return l.json.suppressed.length === 1 ? l.json.suppressed[0] : null;
    });
    expect(listed).toMatchObject({ id: `${id}.jenkins`, reason: 'skip-marker' });
    expect(target.calls).toHaveLength(0);

    const rel = await api(r.url, 'POST', `/api/suppressed/${id}.jenkins/release`, { token: TOKEN, body: {} });
    expect(rel.status).toBe(200);
    await waitFor(() => target.calls.length === 1);
    expect(target.calls[0]!['idempotency-key']).toBe(`${id}.jenkins`);
    const ev = await waitFor(async () => {
      const e = await api<Record<string, any>>(r.url, 'GET', `/api/events/${id}`, { token: TOKEN });
      return e.json.targets[0].state === 'delivered' ? e.json : null;
    });
    expect(ev.targets[0].attempts.at(-1)).toMatchObject({ status: 200, trigger: 'release' });
  });
});
