/**
 * Edge benchmark: ingest rate straight to one ingress process against the same ingress behind HAProxy
 * (haproxy/haproxy.cfg, TLS with a generated certificate, keep-alive on both sides), same run, same load.
 *
 *   npm run build && node --import tsx bench/edge.ts
 *
 * Load: autocannon, EDGE_BENCH_CONNECTIONS (16) keep-alive connections for EDGE_BENCH_SECONDS (10) per
 * phase after a 2 s warm-up, each request a signed Bitbucket Cloud push of 6–20 KB with its own
 * X-Request-UUID and commit hash (so neither the delivery-id nor the content dedupe short-cuts it). Only 2xx
 * answers count toward req/s. No delivery worker runs: this measures ingest (verify, dedupe, store, enqueue).
 * Target (issue #5): haproxy/direct ≥ 0.8.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
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

export interface Figures {
  rps: number;
  p50: number;
  p99: number;
  /** Answers that were not 2xx, and transport errors/timeouts: both should be 0. */
  non2xx: number;
  errors: number;
  meanBodyBytes: number;
}

export interface EdgeBench {
  direct: Figures;
  haproxy: Figures;
  ratio: number;
  connections: number;
  seconds: number;
}

// autocannon ships no types; this is the part of its API used here.
interface AutocannonRequest {
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  body?: Buffer | string;
}
interface AutocannonOptions {
  url: string;
  connections: number;
  duration: number;
  pipelining?: number;
  timeout?: number;
  servername?: string;
  requests: { method: string; setupRequest: (req: AutocannonRequest) => AutocannonRequest }[];
}
interface AutocannonResult {
  duration: number;
  '2xx': number;
  non2xx: number;
  errors: number;
  timeouts: number;
  latency: { p50: number; p99: number };
}
const autocannon = createRequire(import.meta.url)('autocannon') as (
  opts: AutocannonOptions,
) => Promise<AutocannonResult>;

const PLACEHOLDER = 'f'.repeat(40);

/** Compact JSON pushes of ~7 to ~20 KB (2..12 commits) with a placeholder for a per-request commit hash. */
function templates(): string[] {
  return Array.from({ length: 11 }, (_, i) =>
    JSON.stringify(cloudPush({ ref: 'bench', newHash: PLACEHOLDER, commits: i + 2 })),
  );
}

function requestFactory() {
  const bodies = templates();
  let n = 0;
  let bytes = 0;
  const next = (): AutocannonRequest => {
    n += 1;
    const tpl = bodies[n % bodies.length]!;
    const hash = `${process.pid.toString(16).padStart(8, '0')}${n.toString(16).padStart(32, '0')}`;
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

async function load(url: string, connections: number, seconds: number): Promise<Figures> {
  const factory = requestFactory();
  const run = (duration: number) =>
    autocannon({
      url,
      connections,
      duration,
      pipelining: 1,
      timeout: 10,
      servername: 'localhost',
      requests: [{ method: 'POST', setupRequest: () => factory.next() }],
    });
  await run(2); // warm-up: JIT, TLS sessions, connection pools
  const r = await run(seconds);
  return {
    rps: Math.round(r['2xx'] / r.duration),
    p50: r.latency.p50,
    p99: r.latency.p99,
    non2xx: r.non2xx,
    errors: r.errors + r.timeouts,
    meanBodyBytes: factory.meanBytes(),
  };
}

export async function benchEdge(o: { connections?: number; seconds?: number } = {}): Promise<EdgeBench> {
  const connections = o.connections ?? Number(process.env.EDGE_BENCH_CONNECTIONS ?? 16);
  const seconds = o.seconds ?? Number(process.env.EDGE_BENCH_SECONDS ?? 10);
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
    });
    const direct = await load(ingress.url!, connections, seconds);
    const haproxy = await load(edge.httpsUrl, connections, seconds);
    return {
      direct,
      haproxy,
      ratio: Math.round((haproxy.rps / direct.rps) * 100) / 100,
      connections,
      seconds,
    };
  } finally {
    await stopAll();
    await redis.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
}

export function formatEdgeBench(b: EdgeBench): string {
  const row = (name: string, f: Figures) =>
    `${name.padEnd(24)} ${String(f.rps).padStart(7)} req/s   p50 ${String(f.p50).padStart(4)} ms   p99 ${String(f.p99).padStart(4)} ms   non-2xx ${f.non2xx}   errors ${f.errors}   body ~${Math.round(f.meanBodyBytes / 1024)} KB`;
  return [
    `edge bench: ${b.connections} keep-alive connections, ${b.seconds} s per phase, signed Cloud pushes 7–20 KB`,
    row('direct (HTTP)', b.direct),
    row('through HAProxy (TLS)', b.haproxy),
    `ratio haproxy/direct: ${b.ratio} (target ≥ 0.8)`,
  ].join('\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const b = await benchEdge();
  process.stdout.write(`${formatEdgeBench(b)}\n`);
}
