/**
 * The edge with real parts: the haproxy binary running haproxy/haproxy.cfg (TLS with a certificate from
 * haproxy/make-dev-cert.sh) in front of two real ingress processes and one delivery worker process
 * (`node bin/hookrelay.js ingress|worker`), a real redis-server and a local HTTP target.
 *
 * HAProxy is required: without it this file fails (CI installs it), it never skips.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Agent, request, Agent as UndiciAgent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRedis } from '../helpers/redis.js';
import { postExpectContinue, uniquePush } from './helpers/clients.js';
import { freePort, stopAll, waitFor } from './helpers/processes.js';
import {
  type Cert,
  call,
  type Edge,
  httpsAgent,
  makeDevCert,
  type RelayProc,
  requireBuild,
  requireHaproxy,
  startEdge,
  startIngressProc,
  startTarget,
  startWorkerProc,
  type Target,
  writeRelayConfig,
} from './helpers/stack.js';

const BODY_MAX = 12_000;
const RATE_LIMIT = 8;

let dir: string;
let redis: Awaited<ReturnType<typeof startTestRedis>> | undefined;
let target: Target;
let adminStub: Target;
let cert: Cert;
let ing1: RelayProc;
let ing2: RelayProc;
let worker: RelayProc;
/** Default limits (rate limit raised for the stream), default admin networks (loopback included). */
let edge: Edge;
/** HR_BODY_MAX=12000, HR_RATE_LIMIT=8. */
let small: Edge;
/** HR_ALLOWLIST=on (Bitbucket's ranges + 127.0.0.5), admin networks = 10.0.0.0/8 only. */
let restricted: Edge;
const agents: Agent[] = [];
let ca: Agent;

function agent(localAddress?: string, connections?: number): Agent {
  const a = httpsAgent(cert.ca, localAddress, connections);
  agents.push(a);
  return a;
}

const ingressLines = () => [...ing1.webhookLines(), ...ing2.webhookLines()];
/** A mark in both ingress logs; linesSince(mark) are the webhook lines logged after it. */
const mark = () => [ing1.webhookLines().length, ing2.webhookLines().length] as const;
const linesSince = (m: readonly [number, number]) => [
  ...ing1.webhookLines().slice(m[0]),
  ...ing2.webhookLines().slice(m[1]),
];
const lineFor = (deliveryId: string) => ingressLines().find((l) => l.deliveryId === deliveryId);
const waitLine = (deliveryId: string) =>
  waitFor(`the ingress log line of ${deliveryId}`, () => lineFor(deliveryId), 10_000, 50);
const waitDelivered = (id: string) =>
  waitFor(`delivery of ${id} at the target`, () => target.byRequestUuid().get(id)?.[0], 20_000, 50);

beforeAll(async () => {
  // Fail loudly, never skip: CI installs haproxy, and a skipped edge suite would hide a broken edge.
  requireHaproxy();
  requireBuild();
  dir = mkdtempSync(join(tmpdir(), 'hookrelay-edge-'));
  redis = await startTestRedis();
  [target, adminStub] = await Promise.all([startTarget(), startTarget()]);
  cert = makeDevCert(join(dir, 'cert'));

  const [p1, p2] = [await freePort(), await freePort()];
  const common = { redisUrl: redis.url, prefix: `edge${process.pid}`, targetUrl: target.url };
  const cfg1 = writeRelayConfig(join(dir, 'ingress1.yaml'), { ...common, port: p1 });
  const cfg2 = writeRelayConfig(join(dir, 'ingress2.yaml'), { ...common, port: p2 });
  [ing1, ing2, worker] = await Promise.all([
    startIngressProc('ingress1', cfg1, p1),
    startIngressProc('ingress2', cfg2, p2),
    startWorkerProc('worker', cfg1),
  ]);

  const adminNets = join(dir, 'admin-nets-10.lst');
  writeFileSync(adminNets, '# only 10/8: loopback is "outside"\n10.0.0.0/8\n');
  const allowlist = join(dir, 'allow.lst');
  writeFileSync(allowlist, '104.192.136.0/21\n185.166.140.0/22\n127.0.0.5/32\n');
  const adminAddr = new URL(adminStub.url).host;
  const base = { dir, cert: cert.pem, ingress: [`127.0.0.1:${p1}`, `127.0.0.1:${p2}`] as [string, string] };
  [edge, small, restricted] = await Promise.all([
    startEdge({
      ...base,
      name: 'edge-main',
      admin: adminAddr,
      env: { HR_RATE_LIMIT: '100000' },
      waitUp: ['ingress/ingress1', 'ingress/ingress2', 'admin/admin1'],
    }),
    startEdge({
      ...base,
      name: 'edge-small',
      admin: adminAddr,
      // Allowlist off, but the list still names Bitbucket's sources (+127.0.0.5), which the rate limit exempts.
      env: { HR_BODY_MAX: String(BODY_MAX), HR_RATE_LIMIT: String(RATE_LIMIT), HR_ALLOWLIST_FILE: allowlist },
    }),
    startEdge({
      ...base,
      name: 'edge-restricted',
      admin: adminAddr,
      env: { HR_ALLOWLIST: 'on', HR_ALLOWLIST_FILE: allowlist, HR_ADMIN_NETS_FILE: adminNets },
    }),
  ]);
  ca = agent();
}, 90_000);

afterAll(async () => {
  await Promise.allSettled(agents.map((a) => a.close()));
  await stopAll();
  await Promise.allSettled([target?.close(), adminStub?.close()]);
  await redis?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 30_000);

describe('through the edge: HTTPS → HAProxy → two ingress processes → Redis → worker → target', () => {
  it('delivers a signed webhook sent over HTTPS to the target with the original bytes', async () => {
    const { id, req } = uniquePush({ pretty: true });
    const res = await call(`${edge.httpsUrl}/hooks/cloud`, {
      headers: req.headers,
      body: req.body,
      dispatcher: ca,
    });
    expect(res.status).toBe(202);
    expect(res.json.duplicate).toBe(false);
    expect(res.headers['strict-transport-security']).toBe('max-age=31536000');
    expect(String(res.headers['x-edge-request-id'])).toMatch(/^[0-9a-f-]{36}$/);

    const got = await waitDelivered(id);
    expect(got.body.equals(req.body)).toBe(true);
    expect(got.headers['x-hub-signature']).toBe(req.headers['x-hub-signature']);
    expect(got.headers['x-event-key']).toBe('repo:push');
    expect(got.headers['x-hookrelay-event']).toBe(res.json.id);
    // The edge's access log names the delivery, never the signature.
    const logLine = await waitFor('the access-log line', () =>
      edge.logs().find((l) => l.includes(`bb_uuid="${id}"`)),
    );
    expect(logLine).toMatch(/ 202 /);
    expect(logLine).toContain('"/hooks/cloud"');
    expect(edge.logs().join('\n')).not.toContain(req.headers['x-hub-signature']!.slice(7, 30));
  });

  it('the ingress logs the real client address, never a spoofed X-Forwarded-For', async () => {
    // From 127.0.0.2: HAProxy connects to the ingress from 127.0.0.1 (trusted), so a logged 127.0.0.2 can only
    // have come from the X-Forwarded-For HAProxy wrote.
    const spoof = {
      'x-forwarded-for': '6.6.6.6',
      'x-real-ip': '6.6.6.6',
      forwarded: 'for=6.6.6.6',
      'x-forwarded-proto': 'http',
    };
    const { id, req } = uniquePush({ headers: spoof });
    const res = await call(`${edge.httpsUrl}/hooks/cloud`, {
      headers: req.headers,
      body: req.body,
      dispatcher: agent('127.0.0.2'),
    });
    expect(res.status).toBe(202);
    const line = await waitLine(id);
    expect(line.ip).toBe('127.0.0.2');
    expect(JSON.stringify(ingressLines())).not.toContain('6.6.6.6');

    // Straight to an ingress (not through HAProxy) from an untrusted address: its X-Forwarded-For is ignored.
    const direct = uniquePush({ headers: spoof });
    const plain = new UndiciAgent({ localAddress: '127.0.0.3' });
    agents.push(plain);
    const res2 = await call(`${ing1.url}/hooks/cloud`, {
      headers: direct.req.headers,
      body: direct.req.body,
      dispatcher: plain,
    });
    expect(res2.status).toBe(202);
    expect((await waitLine(direct.id)).ip).toBe('127.0.0.3');
  });

  it("passes the relay's hop marker through untouched, so the ingress loop guard still sees it", async () => {
    const hop = uniquePush({ headers: { 'x-hookrelay-hop': 'other-relay, hookrelay' } });
    const res = await call(`${edge.httpsUrl}/hooks/cloud`, {
      headers: hop.req.headers,
      body: hop.req.body,
      dispatcher: ca,
    });
    expect(res.status).toBe(508);
    expect(res.json.error).toBe('LOOP_DETECTED');
    const via = uniquePush({ headers: { via: '1.1 hookrelay-hookrelay' } });
    const res2 = await call(`${edge.httpsUrl}/hooks/cloud`, {
      headers: via.req.headers,
      body: via.req.body,
      dispatcher: ca,
    });
    expect(res2.status).toBe(508);
  });

  it('redirects plain HTTP to HTTPS with 308 (a POST stays a POST), whatever the path', async () => {
    const { req } = uniquePush();
    const res = await call(`${edge.httpUrl}/hooks/cloud?x=1`, { headers: req.headers, body: req.body });
    expect(res.status).toBe(308);
    const location = new URL(String(res.headers.location));
    expect(location.protocol).toBe('https:');
    expect(location.pathname + location.search).toBe('/hooks/cloud?x=1');
    expect(res.headers['strict-transport-security']).toBeUndefined();
    const admin = await call(`${edge.httpUrl}/admin/api/events`);
    expect(admin.status).toBe(308);
    expect(adminStub.deliveries).toHaveLength(0);
  });

  it('answers 404 at the edge for anything but /hooks/, /admin and /metrics', async () => {
    for (const path of ['/', '/readyz', '/healthz', '/hooksx', '/api/events']) {
      const res = await call(`${edge.httpsUrl}${path}`, { dispatcher: ca });
      expect(res.status, path).toBe(404);
      expect(res.json.error, path).toBe('NOT_FOUND');
    }
  });

  it('sends /admin/… (prefix stripped) and /metrics from an admin network to the admin service', async () => {
    const res = await call(`${edge.httpsUrl}/admin/api/events?limit=5`, { dispatcher: ca });
    expect(res.status).toBe(200);
    const metrics = await call(`${edge.httpsUrl}/metrics`, { dispatcher: ca });
    expect(metrics.status).toBe(200);
    const [first, second] = adminStub.deliveries;
    expect(first?.url).toBe('/api/events?limit=5');
    expect(first?.headers['x-forwarded-prefix']).toBe('/admin');
    expect(second?.url).toBe('/metrics');
  });
});

describe('edge protections', () => {
  it('413 for a body over HR_BODY_MAX, answered before any ingress sees the request', async () => {
    const before = mark();
    const big = uniquePush({ pretty: true, commits: 3 });
    expect(big.req.body.length).toBeGreaterThan(BODY_MAX);
    const res = await postExpectContinue(
      `${small.httpsUrl}/hooks/cloud`,
      big.req.headers,
      big.req.body,
      cert.ca,
    );
    expect(res.status).toBe(413);
    expect(JSON.parse(res.text).error).toBe('PAYLOAD_TOO_LARGE');
    expect(res.sentBody).toBe(false); // refused from the request head alone

    // Under the cap: passes, with Content-Length and chunked (measured by the edge).
    const ok = uniquePush({ commits: 3 });
    expect(ok.req.body.length).toBeLessThan(BODY_MAX);
    const res2 = await call(`${small.httpsUrl}/hooks/cloud`, {
      headers: ok.req.headers,
      body: ok.req.body,
      dispatcher: ca,
    });
    expect(res2.status).toBe(202);
    const chunked = uniquePush({ commits: 3 });
    const res3 = await request(`${small.httpsUrl}/hooks/cloud`, {
      method: 'POST',
      headers: chunked.req.headers,
      body: Readable.from([chunked.req.body.subarray(0, 4000), chunked.req.body.subarray(4000)]),
      dispatcher: ca,
    });
    await res3.body.dump();
    expect(res3.statusCode).toBe(202);

    await waitLine(ok.id);
    await waitLine(chunked.id);
    // The two accepted requests are the only ones the ingress pool logged: none for the refused one.
    const after = linesSince(before);
    expect(after.map((l) => l.deliveryId).sort()).toEqual([ok.id, chunked.id].sort());
    expect(after.some((l) => l.status === 413)).toBe(false);
  });

  it('429 past HR_RATE_LIMIT requests per 10 s from one address; other addresses are unaffected', async () => {
    const client = agent('127.0.0.4');
    const statuses: number[] = [];
    let limited: Awaited<ReturnType<typeof call>> | undefined;
    for (let i = 0; i < RATE_LIMIT + 4; i += 1) {
      const res = await call(`${small.httpsUrl}/no-such-path`, { dispatcher: client });
      statuses.push(res.status);
      if (res.status === 429) limited ??= res;
    }
    expect(statuses.slice(0, RATE_LIMIT)).toEqual(Array(RATE_LIMIT).fill(404));
    expect(statuses.slice(RATE_LIMIT)).toEqual(Array(4).fill(429));
    expect(limited?.json.error).toBe('RATE_LIMITED');
    expect(limited?.headers['retry-after']).toBe('10');
    // 127.0.0.1 has made only a handful of requests to this edge: not limited.
    const other = await call(`${small.httpsUrl}/no-such-path`, { dispatcher: ca });
    expect(other.status).toBe(404);
  });

  it('never answers 429 to an address in the Bitbucket list: Bitbucket does not retry a 4xx', async () => {
    const bitbucket = agent('127.0.0.5');
    const statuses: number[] = [];
    for (let i = 0; i < RATE_LIMIT * 2; i += 1) {
      statuses.push((await call(`${small.httpsUrl}/no-such-path`, { dispatcher: bitbucket })).status);
    }
    expect(statuses).toEqual(Array(RATE_LIMIT * 2).fill(404));
  });

  it('403 for /hooks/ from an address outside the allowlist when HR_ALLOWLIST=on; listed addresses pass', async () => {
    const before = mark();
    const denied = uniquePush();
    const res = await call(`${restricted.httpsUrl}/hooks/cloud`, {
      headers: denied.req.headers,
      body: denied.req.body,
      dispatcher: ca,
    });
    expect(res.status).toBe(403);
    expect(res.json.error).toBe('FORBIDDEN');
    expect(String(res.json.message)).toContain('Bitbucket');

    const allowed = uniquePush();
    const res2 = await call(`${restricted.httpsUrl}/hooks/cloud`, {
      headers: allowed.req.headers,
      body: allowed.req.body,
      dispatcher: agent('127.0.0.5'),
    });
    expect(res2.status).toBe(202);
    await waitLine(allowed.id);
    // The ingress pool logged the allowed request only: the refused one never left the edge.
    expect(linesSince(before).map((l) => l.deliveryId)).toEqual([allowed.id]);
  });

  it('403 for /admin/… and /metrics from outside the admin networks, before the admin service', async () => {
    const seen = adminStub.deliveries.length;
    for (const path of ['/admin', '/admin/', '/admin/api/events', '/metrics']) {
      const res = await call(`${restricted.httpsUrl}${path}`, { dispatcher: ca });
      expect(res.status, path).toBe(403);
      expect(res.json.error, path).toBe('FORBIDDEN');
    }
    expect(adminStub.deliveries.length).toBe(seen);
  });
});

describe('an ingress SIGKILLed during a stream of webhooks', () => {
  it('HAProxy routes around it and every event answered 2xx is delivered', async () => {
    const N = 200;
    const CONCURRENCY = 8;
    const KILL_AFTER = 50;
    const PACE_MS = 15; // request i starts no earlier than i × 15 ms: the stream outlasts the failover
    const client = agent(undefined, CONCURRENCY);
    interface Result {
      id: string;
      status: number;
      start: number;
      error?: string;
    }
    const results: Result[] = [];
    let killedAt = 0;
    let servedBy2BeforeKill = 0;
    let downAt = 0;
    let streaming = true;
    const watch = (async () => {
      while (streaming || !downAt) {
        const s = await edge.serverStatus().catch(() => ({}) as Record<string, string>);
        if (killedAt && !downAt && String(s['ingress/ingress2']).startsWith('DOWN')) downAt = Date.now();
        if (!streaming && Date.now() - killedAt > 15_000) return;
        await sleep(50);
      }
    })();

    const sendOne = async (): Promise<Result> => {
      const { id, req } = uniquePush();
      const start = Date.now();
      try {
        const res = await call(`${edge.httpsUrl}/hooks/cloud`, {
          headers: req.headers,
          body: req.body,
          dispatcher: client,
        });
        return { id, status: res.status, start };
      } catch (err) {
        return { id, status: 0, start, error: (err as Error).message };
      }
    };
    const t0 = Date.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        for (;;) {
          const i = next++;
          if (i >= N) return;
          const wait = t0 + i * PACE_MS - Date.now();
          if (wait > 0) await sleep(wait);
          results.push(await sendOne());
          if (results.length === KILL_AFTER && !killedAt) {
            servedBy2BeforeKill = ing2.webhookLines().length;
            ing2.kill('SIGKILL');
            killedAt = Date.now();
          }
        }
      }),
    );
    streaming = false;
    await waitFor('HAProxy to mark ingress2 DOWN', () => downAt, 15_000, 50);
    await watch;
    // After the health checks took ingress2 out, the pool is ingress1 alone and nothing fails.
    const after: Result[] = [];
    for (let i = 0; i < 20; i += 1) after.push(await sendOne());

    const ok = (r: Result) => r.status >= 200 && r.status < 300;
    const accepted = [...results, ...after].filter(ok);
    const fivexx = results.filter((r) => r.status >= 500);
    const errors = results.filter((r) => r.status === 0);
    const other = results.filter((r) => r.status !== 0 && !ok(r) && r.status < 500);
    const startedAfterDown = results.filter((r) => r.start > downAt);

    const missing = () => accepted.filter((r) => !target.byRequestUuid().has(r.id));
    await waitFor(
      'every 2xx-acknowledged event at the target',
      () => missing().length === 0,
      30_000,
      100,
    ).catch((err: Error) => {
      throw new Error(`${err.message}: ${missing().length} of ${accepted.length} missing`);
    });
    const byId = target.byRequestUuid();
    const duplicates = accepted.filter((r) => (byId.get(r.id)?.length ?? 0) > 1).length;
    const summary = {
      sent: results.length + after.length,
      accepted: accepted.length,
      fivexx: fivexx.length,
      fivexxStatuses: [...new Set(fivexx.map((r) => r.status))],
      networkErrors: errors.length,
      otherStatuses: other.map((r) => r.status),
      servedByIngress2BeforeKill: servedBy2BeforeKill,
      downDetectedMs: downAt - killedAt,
      startedAfterDown: startedAfterDown.length,
      deliveredOfAccepted: accepted.length - missing().length,
      deliveredTwice: duplicates,
      streamMs: Date.now() - t0,
    };
    console.log(`[edge] SIGKILL scenario: ${JSON.stringify(summary)}`);

    expect(servedBy2BeforeKill).toBeGreaterThan(0); // both ingresses were in use before the kill
    expect(other).toEqual([]); // nothing but 2xx and 5xx (Bitbucket retries 5xx)
    // Not acknowledged: what was in flight on ingress2 when it died. HAProxy answers 502, or — for a request
    // that came on a kept-alive client connection — closes that connection without an answer (and without
    // an access-log line), the keep-alive-race signal for "retry". Bitbucket retries both.
    expect(errors.every((r) => r.error === 'other side closed')).toBe(true);
    expect(fivexx.length + errors.length).toBeLessThanOrEqual(2 * CONCURRENCY);
    expect(startedAfterDown.filter((r) => !ok(r))).toEqual([]);
    expect(after.every(ok)).toBe(true);
    expect(ing1.isRunning()).toBe(true);
    expect(worker.isRunning()).toBe(true);
  }, 90_000);
});
