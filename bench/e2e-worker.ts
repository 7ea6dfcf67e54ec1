/**
 * The delivery side alone: N events are accepted through the real ingress (in-process inject), then the real
 * delivery workers start and send them all to the e2e target (its own process, answering 200 at once). Reports
 * the worker process's CPU per delivery (fan-out included; user + system) and the delivery rate, for `rounds` rounds. The e2e
 * bench's relay process carries the ingress too; this isolates what the delivery path costs.
 * Run: `node --import tsx bench/e2e-worker.ts [events] [rounds]`.
 */
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { buildIngressApp } from '../src/app.js';
import { startDeliveryWorkers } from '../src/delivery/workers.js';
import { startFanOut } from '../src/fanout/fan-out.js';
import { createLogger } from '../src/log.js';
import { startEmbeddedRedis } from '../src/queue/embedded-redis.js';
import { createRuntime, waitForRedis } from '../src/runtime.js';
import { e2eRelayConfig } from './e2e-config.js';
import { benchRedisUrl } from './harness.js';
import { makeSignedPushes } from './payloads.js';

const SECRET = 'bench-secret-0123456789';
const events = Number(process.argv[2] ?? 3000);
const rounds = Number(process.argv[3] ?? 3);
const dir = mkdtempSync(join(tmpdir(), 'hookrelay-bench-worker-'));
const redis = await startEmbeddedRedis({ dir });
const target = fork(fileURLToPath(new URL('./e2e-target.ts', import.meta.url)), [], {
  execArgv: ['--import', 'tsx'],
  stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
});
let received = 0;
const targetUrl = await new Promise<string>((res) => {
  target.on('message', (m: { url?: string; receipts?: unknown[] }) => {
    if (m.url) res(m.url);
    received += m.receipts?.length ?? 0;
  });
});
const reqs = makeSignedPushes(events * rounds, SECRET);
const results: { cpuMs: number; rate: number }[] = [];
try {
  for (let round = 0; round < rounds; round++) {
    const config = e2eRelayConfig({
      redisUrl: benchRedisUrl(redis),
      prefix: `bench-worker-${round}`,
      targetUrl: `${targetUrl}/hook`,
      secret: SECRET,
      concurrency: 16,
      logLevel: 'info',
    });
    const log = createLogger('info', pino.destination({ dest: '/dev/null', sync: false }));
    const runtime = await createRuntime(config, log);
    await waitForRedis(runtime.redis, 10_000);
    const app = buildIngressApp(runtime);
    await app.ready();
    const mine = reqs.slice(round * events, (round + 1) * events);
    for (let i = 0; i < mine.length; i += 32) {
      await Promise.all(
        mine.slice(i, i + 32).map(async (r) => {
          const res = await app.inject({
            method: 'POST',
            url: '/hooks/cloud',
            headers: r.headers,
            payload: r.body,
          });
          if (res.statusCode !== 202) throw new Error(`ingress answered ${res.statusCode}`);
        }),
      );
    }
    const start = received;
    const cpu0 = process.cpuUsage();
    const t0 = Date.now();
    const fanOut = startFanOut(runtime);
    const workers = startDeliveryWorkers(runtime);
    while (received - start < events) await new Promise((r) => setTimeout(r, 5));
    const cpu = process.cpuUsage(cpu0);
    const ms = Date.now() - t0;
    results.push({ cpuMs: (cpu.user + cpu.system) / 1000 / events, rate: events / (ms / 1000) });
    await fanOut.close();
    await workers.close();
    await app.close();
    await runtime.close();
  }
} finally {
  target.kill('SIGKILL');
  await redis.stop();
  rmSync(dir, { recursive: true, force: true });
}
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;
console.log(
  `delivery only (${events} events × ${rounds}): CPU ${med(results.map((r) => r.cpuMs)).toFixed(3)} ms/delivery, ${med(results.map((r) => r.rate)).toFixed(0)} deliveries/s (medians; rounds: ${results.map((r) => `${r.cpuMs.toFixed(3)} ms ${r.rate.toFixed(0)}/s`).join(', ')})`,
);
process.exit(0);
