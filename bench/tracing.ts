import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { startEmbeddedRedis } from '../src/queue/embedded-redis.js';
import { benchRedisUrl, cpuSeconds, waitReady, writeYaml } from './harness.js';
import { makeSignedPushes } from './payloads.js';
import { type WrkResult, wrkLoad } from './wrk.js';

const SECRET = 'bench-secret-0123456789abcdef';

export interface TracingBench {
  off: WrkResult;
  on: WrkResult;
  /** Ingest rate with tracing on over tracing off, same run, alternating rounds. */
  ratio: number;
  /** Ingress CPU ms per accepted webhook. */
  cpuMsPerEvent: { off: number; on: number };
  spansReceived: number;
}

/** An OTLP/HTTP receiver that takes every export and answers as a collector does (`{}`), counting bytes. */
async function startSink(): Promise<{ url: string; exports: () => number; close(): Promise<void> }> {
  let exports = 0;
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      exports += 1;
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    exports: () => exports,
    close: () => new Promise((done) => server.close(() => done())),
  };
}

/** `npm run bench tracing`: the ingress with tracing off and on (every request sampled), under wrk. */
export async function benchTracing(seconds = 6): Promise<TracingBench> {
  const dir = mkdtempSync(join(tmpdir(), 'hookrelay-bench-tracing-'));
  const redis = await startEmbeddedRedis({ dir });
  const inspect = new Redis(redis.url);
  const sink = await startSink();
  const reqs = makeSignedPushes(40_000, SECRET);
  const start = async (name: string, env: Record<string, string>) => {
    const port = 20000 + Math.floor(Math.random() * 20000);
    const cfg = writeYaml(
      dir,
      `${name}.yaml`,
      `
redis: { url: "${benchRedisUrl(redis)}", prefix: ${name} }
ingress: { host: 127.0.0.1, port: ${port}, bodyLimit: 1048576 }
sources: [{ id: cloud, platform: cloud, secrets: ["${SECRET}"] }]
targets: [{ id: ci, url: "http://127.0.0.1:9/hook" }]
routes: [{ source: cloud, targets: [ci] }]
log: { level: info }
`,
    );
    const child = spawn(process.execPath, ['bin/hookrelay.js', 'ingress', '--config', cfg], {
      stdio: ['ignore', 'ignore', 'inherit'],
      env: { ...process.env, ...env },
    });
    children.push(child);
    const url = `http://127.0.0.1:${port}`;
    await waitReady(`${url}/readyz`);
    return { url, child };
  };
  const children: ReturnType<typeof spawn>[] = [];
  try {
    const off = await start('off', {});
    const on = await start('on', { OTEL_EXPORTER_OTLP_ENDPOINT: sink.url, OTEL_TRACES_SAMPLER: 'always_on' });
    const cpuMs = (pid: number) => cpuSeconds((p) => p === pid) * 1000;
    await wrkLoad(off.url, '/hooks/cloud', reqs.slice(0, 2000), 2);
    await wrkLoad(on.url, '/hooks/cloud', reqs.slice(2000, 4000), 2);
    const runs = { off: [] as WrkResult[], on: [] as WrkResult[] };
    const cpu = { off: 0, on: 0 };
    const events = { off: 0, on: 0 };
    // Alternating rounds, each on requests neither relay has seen: drift on a noisy machine hits both alike.
    for (let round = 0; round < 2; round++) {
      for (const [name, relay] of [
        ['off', off],
        ['on', on],
      ] as const) {
        const slice = reqs.slice(4000 + (round * 2 + (name === 'on' ? 1 : 0)) * 9000);
        await inspect.flushall();
        const before = cpuMs(relay.child.pid!);
        const result = await wrkLoad(relay.url, '/hooks/cloud', slice, seconds / 2);
        cpu[name] += cpuMs(relay.child.pid!) - before;
        events[name] += result.sent;
        runs[name].push(result);
      }
    }
    const mean = (rs: WrkResult[]): WrkResult => ({
      rps: rs.reduce((n, r) => n + r.rps, 0) / rs.length,
      p50: Math.max(...rs.map((r) => r.p50)),
      p99: Math.max(...rs.map((r) => r.p99)),
      non2xx: rs.reduce((n, r) => n + r.non2xx, 0),
      errors: rs.reduce((n, r) => n + r.errors, 0),
      sent: rs.reduce((n, r) => n + r.sent, 0),
      available: Math.min(...rs.map((r) => r.available)),
    });
    const offMean = mean(runs.off);
    const onMean = mean(runs.on);
    return {
      off: offMean,
      on: onMean,
      ratio: onMean.rps / offMean.rps,
      cpuMsPerEvent: { off: cpu.off / events.off, on: cpu.on / events.on },
      spansReceived: sink.exports(),
    };
  } finally {
    for (const child of children) child.kill();
    inspect.disconnect();
    await sink.close();
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

export function printTracing(b: TracingBench): void {
  const row = (name: string, r: WrkResult, cpu: number) =>
    `${name.padEnd(12)} ${r.rps.toFixed(0).padStart(6)} webhooks/s  p50 ${r.p50.toFixed(1)} ms  p99 ${r.p99.toFixed(1)} ms  non-2xx ${r.non2xx}  ${cpu.toFixed(3)} ms CPU/webhook`;
  console.log('\n== tracing: ingress with OpenTelemetry off and on (wrk, 16 connections) ==');
  console.log(row('tracing off', b.off, b.cpuMsPerEvent.off));
  console.log(row('tracing on', b.on, b.cpuMsPerEvent.on));
  console.log(`on / off: ${b.ratio.toFixed(2)}×  (OTLP exports received: ${b.spansReceived})`);
}
