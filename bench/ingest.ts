import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { startEmbeddedRedis } from '../src/queue/embedded-redis.js';
import { unixSocketPath } from '../src/queue/redis-connection.js';
import {
  benchRedisUrl,
  cpuSeconds,
  fmt,
  ioredisEndpoint,
  type LoadResult,
  spawnServer,
  waitReady,
  writeYaml,
} from './harness.js';
import { averageSize, makeSignedPushes } from './payloads.js';
import { wrkLoad } from './wrk.js';

const SECRET = 'bench-secret';

/** User + system CPU time of one process so far, in ms. */
const cpuMs = (pid: number) => cpuSeconds((p) => p === pid) * 1000;

function relayConfig(redisUrl: string, port: number, targets: number): string {
  const ids = Array.from({ length: targets }, (_, i) => `t${i}`);
  return `
redis: { url: "${redisUrl}", prefix: bench }
ingress: { host: 127.0.0.1, port: ${port}, bodyLimit: 1048576 }
sources: [{ id: cloud, platform: cloud, secrets: ["${SECRET}"] }]
targets:
${ids.map((id) => `  - { id: ${id}, url: "http://127.0.0.1:9/${id}" }`).join('\n')}
routes: [{ source: cloud, targets: [${ids.join(', ')}] }]
log: { level: info }
`;
}

async function startRelayIngress(dir: string, redisUrl: string, targets: number) {
  const port = 20000 + Math.floor(Math.random() * 20000);
  const cfg = writeYaml(dir, `relay-${targets}.yaml`, relayConfig(redisUrl, port, targets));
  const { spawn } = await import('node:child_process');
  // stdout is /dev/null: the ingress still builds and writes its one line per request, as it does in production.
  // BENCH_CPU_PROF=dir: profile the ingress (node --cpu-prof; written when it exits on SIGTERM).
  const profile = process.env.BENCH_CPU_PROF
    ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`]
    : [];
  const child = spawn(process.execPath, [...profile, 'bin/hookrelay.js', 'ingress', '--config', cfg], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  await waitReady(`${url}/readyz`);
  return { url, child };
}

export interface IngestBench {
  /** How the reference and hookrelay reached Redis (see benchRedisUrl). */
  redisVia: 'unix socket' | 'tcp';
  bare: LoadResult;
  /** The issue's reference point: HMAC + JSON.parse + one BullMQ Queue.add per request. */
  straight: LoadResult;
  hookrelay: LoadResult;
  ratio: number;
  /** CPU ms per accepted webhook in the hookrelay ingress process and in redis-server. */
  cpuMsPerEvent: { ingress: number; redis: number };
  payloadBytes: number;
  redisBytesPerEvent: Record<string, number>;
  memoryRatio: Record<string, number>;
}

export async function benchIngest(seconds = 9): Promise<IngestBench> {
  const dir = mkdtempSync(join(tmpdir(), 'hookrelay-bench-'));
  const redis = await startEmbeddedRedis({ dir });
  const inspect = new Redis(redis.url);
  const redisUrl = benchRedisUrl(redis);
  // Enough distinct requests for a round of hookrelay at a few thousand a second (wrk reads them from a file).
  const reqs = makeSignedPushes(50_000, SECRET);
  const payloadBytes = averageSize(reqs);
  try {
    const bare = await spawnServer(process.execPath, ['--import', 'tsx', 'bench/bare-server.ts']);
    const straight = await spawnServer(process.execPath, ['--import', 'tsx', 'bench/straight-server.ts'], {
      REDIS_URL: ioredisEndpoint(redisUrl),
      SECRET,
    });
    const relay = await startRelayIngress(dir, redisUrl, 1);
    const redisPid = Number(/process_id:(\d+)/.exec(await inspect.info('server'))![1]);
    // Warm all up, then alternate rounds so drift on a noisy machine hits each alike. wrk (C) drives every
    // contender: a load generator in Node would take one of the two cores from the server it measures.
    await wrkLoad(bare.url, '/hooks/cloud', reqs.slice(0, 2000), 2);
    await wrkLoad(straight.url, '/hooks/cloud', reqs.slice(0, 2000), 2);
    await wrkLoad(relay.url, '/hooks/cloud', reqs.slice(0, 2000), 2);
    await inspect.flushall();
    const bareRuns: LoadResult[] = [];
    const straightRuns: LoadResult[] = [];
    const relayRuns: LoadResult[] = [];
    const cpu = { ingress: 0, redis: 0, events: 0 };
    const rounds = 3;
    const perRound = Math.floor((reqs.length - 2000) / rounds);
    // Bare Fastify stores nothing, so a request sent twice costs it the same: it may cycle through them.
    for (let round = 0; round < rounds; round++) {
      // Each round's requests are new to Redis (a request sent twice is a cheaper duplicate).
      const fresh = reqs.slice(2000 + round * perRound, 2000 + (round + 1) * perRound);
      bareRuns.push(await wrkLoad(bare.url, '/hooks/cloud', fresh, seconds / rounds));
      straightRuns.push(await wrkLoad(straight.url, '/hooks/cloud', fresh, seconds / rounds));
      await inspect.flushall();
      const before = { ingress: cpuMs(relay.child.pid!), redis: cpuMs(redisPid) };
      const run = await wrkLoad(relay.url, '/hooks/cloud', fresh, seconds / rounds);
      cpu.ingress += cpuMs(relay.child.pid!) - before.ingress;
      cpu.redis += cpuMs(redisPid) - before.redis;
      cpu.events += Math.min(run.sent, run.available);
      if (run.sent > run.available) console.warn(`  round ${round}: wrk sent some requests twice`);
      relayRuns.push(run);
      await inspect.flushall();
    }
    bare.child.kill();
    straight.child.kill();
    relay.child.kill();
    const avg = (runs: LoadResult[]): LoadResult => ({
      rps: runs.reduce((n, r) => n + r.rps, 0) / runs.length,
      p50: Math.max(...runs.map((r) => r.p50)),
      p99: Math.max(...runs.map((r) => r.p99)),
      non2xx: runs.reduce((n, r) => n + r.non2xx, 0),
      errors: runs.reduce((n, r) => n + r.errors, 0),
    });

    // Redis memory per received event (its hash, index entry, dedupe keys and inbox entry), nothing routed:
    // the ingress alone runs here. The burst bench measures the whole relay's peak.
    const redisBytesPerEvent: Record<string, number> = {};
    const memoryRatio: Record<string, number> = {};
    for (const targets of [1]) {
      await inspect.flushall();
      const ing = await startRelayIngress(dir, redisUrl, targets);
      const sample = makeSignedPushes(3000, SECRET);
      // Queue metadata and script caches are paid once: measure after a first event.
      await fetch(`${ing.url}/hooks/cloud`, {
        method: 'POST',
        headers: sample[0]!.headers,
        body: sample[0]!.body,
      });
      const before = Number(/used_memory:(\d+)/.exec(await inspect.info('memory'))![1]);
      let next = 1;
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          while (next < sample.length) {
            const r = sample[next++]!;
            const res = await fetch(`${ing.url}/hooks/cloud`, {
              method: 'POST',
              headers: r.headers,
              body: r.body,
            });
            if (res.status !== 202) throw new Error(`unexpected ${res.status}`);
          }
        }),
      );
      const after = Number(/used_memory:(\d+)/.exec(await inspect.info('memory'))![1]);
      const perEvent = (after - before) / (sample.length - 1);
      redisBytesPerEvent[`${targets} target${targets > 1 ? 's' : ''}`] = Math.round(perEvent);
      memoryRatio[`${targets} target${targets > 1 ? 's' : ''}`] = perEvent / averageSize(sample);
      ing.child.kill();
    }
    const b = avg(bareRuns);
    const h = avg(relayRuns);
    return {
      redisVia: unixSocketPath(redisUrl) ? 'unix socket' : 'tcp',
      bare: b,
      straight: avg(straightRuns),
      hookrelay: h,
      ratio: h.rps / b.rps,
      cpuMsPerEvent: { ingress: cpu.ingress / cpu.events, redis: cpu.redis / cpu.events },
      payloadBytes,
      redisBytesPerEvent,
      memoryRatio,
    };
  } finally {
    inspect.disconnect();
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

export function printIngest(r: IngestBench): void {
  console.log(
    '\n== ingest: signed Bitbucket pushes (avg %d bytes), wrk, 16 connections, Redis over %s ==',
    Math.round(r.payloadBytes),
    r.redisVia,
  );
  console.log(`bare Fastify (parse + 202):  ${fmt(r.bare)}`);
  console.log(
    `HMAC + Queue.add (reference): ${fmt(r.straight)}  = ${(r.straight.rps / r.bare.rps).toFixed(2)} × bare`,
  );
  console.log(`hookrelay ingress:           ${fmt(r.hookrelay)}`);
  console.log(`ratio: ${r.ratio.toFixed(2)} × bare Fastify (target ≥ 0.60)`);
  console.log(
    `CPU per accepted webhook: ingress ${r.cpuMsPerEvent.ingress.toFixed(3)} ms, redis-server ${r.cpuMsPerEvent.redis.toFixed(3)} ms`,
  );
  for (const [k, v] of Object.entries(r.redisBytesPerEvent)) {
    console.log(
      `redis memory per received event (${k}): ${v} bytes = ${r.memoryRatio[k]!.toFixed(2)} × payload (target ≤ 0.50)`,
    );
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  printIngest(await benchIngest());
}
