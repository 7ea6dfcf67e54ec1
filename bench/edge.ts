/**
 * Edge benchmark: ingest rate straight to one ingress process against the same ingress behind HAProxy
 * (haproxy/haproxy.cfg, TLS with a generated certificate, keep-alive on both sides), same run, same load.
 *
 *   npm run build && node --import tsx bench/edge.ts
 *
 * Load: autocannon, EDGE_BENCH_CONNECTIONS (16) keep-alive connections; after a 2 s warm-up of each, the two
 * phases alternate for EDGE_BENCH_ROUNDS (3) rounds of EDGE_BENCH_SECONDS (5) and each figure is the median
 * of its rounds. Each request a signed Bitbucket Cloud push of 6–20 KB with its own
 * X-Request-UUID and commit hash (so neither the delivery-id nor the content dedupe short-cuts it). Only 2xx
 * answers count toward req/s. No delivery worker runs: this measures ingest (verify, dedupe, store, enqueue).
 * Target (issue #5): haproxy/direct ≥ 0.8. EDGE_BENCH_CFG=path runs a variant of haproxy.cfg instead.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import autocannon from 'autocannon';
import { sign } from '../src/bitbucket/signature.js';
import { freePort, stopAll } from '../test/edge/helpers/processes.js';
import {
  makeDevCert,
  requireBuild,
  requireHaproxy,
  startEdge,
  startIngressProc,
  writeRelayConfig,
} from '../test/edge/helpers/stack.js';
import { cloudPush } from '../test/fixtures/payloads.js';
import { SECRETS } from '../test/helpers/config.js';
import { startTestRedis } from '../test/helpers/redis.js';
import { cpuSeconds } from './harness.js';

export interface Figures {
  rps: number;
  p50: number;
  p99: number;
  /** Answers that were not 202 (a 200 would be a duplicate), and transport errors/timeouts: all should be 0. */
  non202: number;
  errors: number;
  meanBodyBytes: number;
  /** CPU time per accepted request, in microseconds, by process (Linux /proc; 10 ms clock ticks, so rough). */
  cpuUsPerRequest: { ingress: number; haproxy: number; redis: number; client: number };
}

export interface EdgeBench {
  direct: Figures;
  haproxy: Figures;
  ratio: number;
  connections: number;
  seconds: number;
  rounds: number;
  /** From HAProxy's stats: keep-alive on both sides means few connections for many requests. */
  edgeStats: { requests: number; clientConnections: number; serverConnects: number; serverReuses: number };
}

/** The part of autocannon's result used here (bench/autocannon.d.ts types it as any). */
interface AutocannonResult {
  duration: number;
  '2xx': number;
  non2xx: number;
  errors: number;
  timeouts: number;
  latency: { p50: number; p99: number };
  statusCodeStats: Record<string, { count: number }>;
}

const PLACEHOLDER = 'f'.repeat(40);

/** Compact JSON pushes of ~7 to ~20 KB (2..12 commits) with a placeholder for a per-request commit hash. */
function templates(): string[] {
  return Array.from({ length: 11 }, (_, i) =>
    JSON.stringify(cloudPush({ ref: 'bench', newHash: PLACEHOLDER, commits: i + 2 })),
  );
}

const bodies = templates();
/** One counter for every phase: a request id (and commit hash) is never sent twice in a run, or the second
 * copy would take the ingress's cheap duplicate path and flatter whichever phase ran later. */
let sequence = 0;

function requestFactory() {
  let n = 0;
  let bytes = 0;
  const next = (): { method: string; path: string; headers: Record<string, string>; body: Buffer } => {
    n += 1;
    sequence += 1;
    const tpl = bodies[sequence % bodies.length]!;
    const hash = `${process.pid.toString(16).padStart(8, '0')}${sequence.toString(16).padStart(32, '0')}`;
    const body = Buffer.from(tpl.replaceAll(PLACEHOLDER, hash));
    bytes += body.length;
    return {
      method: 'POST',
      path: '/hooks/cloud',
      headers: {
        'content-type': 'application/json',
        'user-agent': 'Bitbucket-Webhooks/2.0',
        'x-event-key': 'repo:push',
        'x-hook-uuid': '{d3f1b2a4-5c6e-4f70-8192-a3b4c5d6e7f8}',
        'x-request-uuid': `${hash.slice(0, 8)}-${hash.slice(8, 12)}-${hash.slice(12, 16)}-${hash.slice(16, 20)}-${hash.slice(28, 40)}`,
        'x-attempt-number': '1',
        'x-hub-signature': sign(SECRETS.cloud, body),
      },
      body,
    };
  };
  return { next, meanBytes: () => (n ? Math.round(bytes / n) : 0) };
}

type Cpu = { ingress: number; haproxy: number; redis: number; client: number };

interface Phase {
  url: string;
  factory: ReturnType<typeof requestFactory>;
  rounds: AutocannonResult[];
  cpu: Cpu;
}

function phase(url: string): Phase {
  return { url, factory: requestFactory(), rounds: [], cpu: { ingress: 0, haproxy: 0, redis: 0, client: 0 } };
}

async function run(p: Phase, connections: number, duration: number): Promise<AutocannonResult> {
  return (await autocannon({
    url: p.url,
    connections,
    duration,
    pipelining: 1,
    timeout: 10,
    servername: 'localhost',
    requests: [{ method: 'POST', setupRequest: () => p.factory.next() }],
  })) as AutocannonResult;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

function figures(p: Phase): Figures {
  const accepted = p.rounds.reduce((n, r) => n + (r.statusCodeStats['202']?.count ?? 0), 0);
  const per = (sec: number) => Math.round((sec * 1e6) / Math.max(1, accepted));
  return {
    cpuUsPerRequest: {
      ingress: per(p.cpu.ingress),
      haproxy: per(p.cpu.haproxy),
      redis: per(p.cpu.redis),
      client: per(p.cpu.client),
    },
    rps: Math.round(median(p.rounds.map((r) => r['2xx'] / r.duration))),
    p50: median(p.rounds.map((r) => r.latency.p50)),
    p99: median(p.rounds.map((r) => r.latency.p99)),
    non202: p.rounds.reduce((n, r) => n + r['2xx'] + r.non2xx - (r.statusCodeStats['202']?.count ?? 0), 0),
    errors: p.rounds.reduce((n, r) => n + r.errors + r.timeouts, 0),
    meanBodyBytes: p.factory.meanBytes(),
  };
}

export async function benchEdge(
  o: { connections?: number; seconds?: number; rounds?: number } = {},
): Promise<EdgeBench> {
  const connections = o.connections ?? Number(process.env.EDGE_BENCH_CONNECTIONS ?? 16);
  const seconds = o.seconds ?? Number(process.env.EDGE_BENCH_SECONDS ?? 5);
  const rounds = o.rounds ?? Number(process.env.EDGE_BENCH_ROUNDS ?? 3);
  requireHaproxy();
  requireBuild();
  const dir = mkdtempSync(join(tmpdir(), 'hookrelay-edge-bench-'));
  const redis = await startTestRedis();
  try {
    const cert = makeDevCert(join(dir, 'cert'));
    const port = await freePort();
    const cfg = writeRelayConfig(join(dir, 'ingress.yaml'), {
      redisUrl: redis.url,
      prefix: 'bench',
      // Nothing delivers during the bench; the target is never called.
      targetUrl: 'http://127.0.0.1:9/hook',
      port,
    });
    const ingress = await startIngressProc('ingress', cfg, port, { quiet: true });
    // Both server lines point at the one ingress: the same process serves both phases.
    const edge = await startEdge({
      name: 'edge-bench',
      dir,
      cert: cert.pem,
      ingress: [`127.0.0.1:${port}`, `127.0.0.1:${port}`],
      admin: '127.0.0.1:9',
      env: { HR_RATE_LIMIT: '1000000000' },
      quiet: true,
      ...(process.env.EDGE_BENCH_CFG ? { cfg: process.env.EDGE_BENCH_CFG } : {}),
    });
    const direct = phase(ingress.url!);
    const haproxy = phase(edge.httpsUrl);
    // Warm-up (JIT, TLS sessions, connection pools), then the two phases take turns, so drift on a shared
    // machine (another job starting, Redis growing) hits both alike; each figure is the median of the rounds.
    await run(direct, connections, 2);
    await run(haproxy, connections, 2);
    const redisPid = redis.pid;
    const sample = (): Cpu => ({
      ingress: cpuSeconds((_pid, pgrp) => pgrp === ingress.pid),
      haproxy: cpuSeconds((_pid, pgrp) => pgrp === edge.proc.pid),
      redis: cpuSeconds((pid) => pid === redisPid),
      client: (process.cpuUsage().user + process.cpuUsage().system) / 1e6,
    });
    for (let i = 0; i < rounds; i += 1) {
      for (const p of i % 2 ? [haproxy, direct] : [direct, haproxy]) {
        const before = sample();
        p.rounds.push(await run(p, connections, seconds));
        const after = sample();
        for (const k of ['ingress', 'haproxy', 'redis', 'client'] as const) p.cpu[k] += after[k] - before[k];
      }
    }
    const st = await edge.stats();
    const fe = st['edge/FRONTEND'] ?? {};
    const be = st['ingress/BACKEND'] ?? {};
    const edgeStats = {
      requests: Number(fe.req_tot),
      clientConnections: Number(fe.conn_tot),
      serverConnects: Number(be.connect),
      serverReuses: Number(be.reuse),
    };
    const d = figures(direct);
    const h = figures(haproxy);
    return {
      direct: d,
      haproxy: h,
      ratio: Math.round((h.rps / d.rps) * 100) / 100,
      connections,
      seconds,
      rounds,
      edgeStats,
    };
  } finally {
    await stopAll();
    await redis.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
}

export function formatEdgeBench(b: EdgeBench): string {
  const row = (name: string, f: Figures) =>
    `${name.padEnd(24)} ${String(f.rps).padStart(7)} req/s   p50 ${String(f.p50).padStart(4)} ms   p99 ${String(f.p99).padStart(4)} ms   non-202 ${f.non202}   errors ${f.errors}   body ~${Math.round(f.meanBodyBytes / 1024)} KB`;
  const cpu = (f: Figures) =>
    `    CPU per request: ingress ${f.cpuUsPerRequest.ingress} µs, haproxy ${f.cpuUsPerRequest.haproxy} µs, ` +
    `redis ${f.cpuUsPerRequest.redis} µs, load generator ${f.cpuUsPerRequest.client} µs`;
  return [
    `edge bench: ${b.connections} keep-alive connections, ${b.rounds} alternating rounds of ${b.seconds} s per phase (medians), signed Cloud pushes 7–20 KB`,
    row('direct (HTTP)', b.direct),
    cpu(b.direct),
    row('through HAProxy (TLS)', b.haproxy),
    cpu(b.haproxy),
    `ratio haproxy/direct: ${b.ratio} (target ≥ 0.8)`,
    `haproxy: ${b.edgeStats.requests} requests over ${b.edgeStats.clientConnections} client connections; ` +
      `${b.edgeStats.serverConnects} connections to the ingress, ${b.edgeStats.serverReuses} reuses`,
  ].join('\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const b = await benchEdge();
  process.stdout.write(`${formatEdgeBench(b)}\n`);
}
