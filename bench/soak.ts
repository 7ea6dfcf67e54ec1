/**
 * Memory soak (issue #6, not in CI): a fixed rate of distinct signed webhooks through a real `hookrelay ingress`
 * process, a real `hookrelay worker` process and a local idempotent target, for several minutes. Every 10 s it
 * samples the RSS of both relay processes and Redis `used_memory`, and how many completed jobs BullMQ still
 * holds; at the end it prints the series and the slope of each (least squares over the samples after warm-up).
 *
 *   npm run soak                         # SOAK_RATE=200 webhooks/s for SOAK_SECONDS=300
 *   SOAK_RATE=100 SOAK_SECONDS=120 npm run soak
 *
 * Retention is short so that a few minutes show the steady state: completed jobs are kept 30 s
 * (`retention.completedJobs`), event hashes expire after events + deadLetters = 60 s, dedupe keys and
 * per-ref loop-guard windows after 60 s.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import type { Config } from '../src/config/types.js';
import { makeKeys } from '../src/queue/keys.js';
import { uniquePush } from '../test/edge/helpers/clients.js';
import { freePort, spawnTracked, stopAll, waitFor } from '../test/edge/helpers/processes.js';
import { REPO, requireBuild } from '../test/edge/helpers/stack.js';
import { startIdempotentTarget } from '../test/faults/helpers/idempotent-target.js';
import { startRedisNode } from '../test/faults/helpers/redis-procs.js';
import { inspector, writeFaultConfig } from '../test/faults/helpers/relay.js';

const RATE = Number(process.env.SOAK_RATE ?? 200);
const SECONDS = Number(process.env.SOAK_SECONDS ?? 300);
const SAMPLE_MS = 10_000;
const PREFIX = 'soak';
const KEYS = makeKeys({ redis: { prefix: PREFIX } as Config['redis'] });
const TICK_MS = 50;
const MAX_OUTSTANDING = 400;

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0);
  return kb / 1024;
}

/** Least-squares slope of y over x. */
function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  if (n < 2) return 0;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i]! - mx) * (ys[i]! - my);
    den += (xs[i]! - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

interface Sample {
  t: number;
  sent: number;
  accepted: number;
  delivered: number;
  ingressRss: number;
  workerRss: number;
  redisMb: number;
  completedHeld: number;
  redisKeys: number;
  eventIndex: number;
}

async function main(): Promise<void> {
  requireBuild();
  const dir = mkdtempSync(join(tmpdir(), 'hookrelay-soak-'));
  const target = await startIdempotentTarget();
  try {
    const redis = await startRedisNode('redis', dir);
    const cfg = {
      dir,
      redis: { url: redis.url },
      prefix: PREFIX,
      targetUrl: target.url,
      targets: ['ci'],
      target: { concurrency: 16 },
      retention: { completedJobs: '30s', events: '30s', deadLetters: '30s' },
      // Delivery-id dedupe keys live 24 h by default: over a few minutes they would only ever grow.
      ingress: { dedupe: { deliveryIdWindow: '1m', contentWindow: '1m' } },
      // Every soak webhook is on its own ref: per-ref loop-guard windows (10 min by default) hold one key each.
      loop: { maxTriggersPerRef: { count: 100000, window: '1m' }, collapseWindow: '1m' },
    };
    const port = await freePort();
    const { HOOKRELAY_CONFIG: _drop, ...env } = process.env;
    const bin = join(REPO, 'bin', 'hookrelay.js');
    // quiet: one log line per webhook and per delivery goes to /dev/null, not into this process's memory.
    const ingress = spawnTracked(
      'ingress',
      process.execPath,
      [bin, 'ingress', '--config', writeFaultConfig(cfg, 'ingress', port)],
      { cwd: REPO, env, quiet: true },
    );
    const worker = spawnTracked(
      'worker',
      process.execPath,
      [bin, 'worker', '--config', writeFaultConfig(cfg, 'worker', 0)],
      { cwd: REPO, env, quiet: true },
    );
    const url = `http://127.0.0.1:${port}`;
    await waitFor(
      'the ingress to be ready',
      async () => (await fetch(`${url}/readyz`)).status === 200,
      30_000,
    );

    const agent = new Agent({ connections: 64 });
    const status: Record<string, number> = {};
    let sent = 0;
    let accepted = 0;
    let outstanding = 0;
    let skipped = 0;
    const fire = async () => {
      const { req } = uniquePush();
      sent += 1;
      outstanding += 1;
      try {
        const res = await request(`${url}/hooks/cloud`, {
          method: 'POST',
          headers: req.headers,
          body: req.body,
          dispatcher: agent,
        });
        await res.body.dump();
        status[res.statusCode] = (status[res.statusCode] ?? 0) + 1;
        if (res.statusCode === 202) accepted += 1;
      } catch {
        status.error = (status.error ?? 0) + 1;
      } finally {
        outstanding -= 1;
      }
    };
    // Readiness of the whole chain: one webhook delivered.
    await fire();
    await waitFor('the first delivery', () => target.processedCount() >= 1, 30_000);

    const inspect = inspector(redis.url);
    const samples: Sample[] = [];
    const started = Date.now();
    const sample = async () => {
      const info = await inspect.info('memory');
      const used = Number(/^used_memory:(\d+)/m.exec(info)?.[1] ?? 0);
      const completedHeld = await inspect.zcard(KEYS.queueKey('ci', 'completed'));
      const eventIndex = await inspect.zcard(KEYS.eventIndex);
      const keyspace = await inspect.info('keyspace');
      const keys = Number(/keys=(\d+)/.exec(keyspace)?.[1] ?? 0);
      const s: Sample = {
        t: Math.round((Date.now() - started) / 1000),
        sent,
        accepted,
        delivered: target.processedCount(),
        ingressRss: rssMb(ingress.pid),
        workerRss: rssMb(worker.pid),
        redisMb: used / 1024 / 1024,
        completedHeld,
        redisKeys: keys,
        eventIndex,
      };
      samples.push(s);
      process.stdout.write(
        `t=${String(s.t).padStart(4)}s sent=${s.sent} accepted=${s.accepted} delivered=${s.delivered} ` +
          `ingressRSS=${s.ingressRss.toFixed(1)}MB workerRSS=${s.workerRss.toFixed(1)}MB ` +
          `redis=${s.redisMb.toFixed(1)}MB completedHeld=${s.completedHeld} redisKeys=${s.redisKeys} ` +
          `eventIndex=${s.eventIndex}\n`,
      );
    };

    process.stdout.write(`soak: ${RATE} webhooks/s for ${SECONDS} s, sampling every ${SAMPLE_MS / 1000} s\n`);
    await sample();
    let nextSample = started + SAMPLE_MS;
    // Paced on the clock, not on the ticks: a late tick sends what is due, so the rate holds under load.
    let launched = 0;
    const end = started + SECONDS * 1000;
    while (Date.now() < end) {
      const due = Math.floor(((Date.now() - started) * RATE) / 1000);
      while (launched < due) {
        launched += 1;
        if (outstanding >= MAX_OUTSTANDING) skipped += 1;
        else void fire();
      }
      if (Date.now() >= nextSample) {
        nextSample += SAMPLE_MS;
        await sample();
      }
      await sleep(TICK_MS);
    }
    await waitFor('in-flight webhooks', () => outstanding === 0, 30_000);
    await waitFor('the backlog to drain', () => target.processedCount() >= accepted, 60_000).catch(() => {});
    await sample();

    // Slopes over the steady part: once the longest window (60 s) has expired keys for half a minute.
    const steady = samples.filter((s) => s.t >= 90);
    const xs = steady.map((s) => s.t / 60);
    const per = (f: (s: Sample) => number) => slope(xs, steady.map(f));
    const summary = {
      rate: RATE,
      seconds: SECONDS,
      sent,
      accepted,
      delivered: target.processedCount(),
      duplicatesAtTarget: target.duplicateCount(),
      skippedBehind: skipped,
      status,
      slopePerMinute: {
        ingressRssMb: Number(per((s) => s.ingressRss).toFixed(2)),
        workerRssMb: Number(per((s) => s.workerRss).toFixed(2)),
        redisUsedMb: Number(per((s) => s.redisMb).toFixed(2)),
        completedHeld: Math.round(per((s) => s.completedHeld)),
        redisKeys: Math.round(per((s) => s.redisKeys)),
        eventIndexEntries: Math.round(per((s) => s.eventIndex)),
      },
      completedHeldMax: Math.max(...samples.map((s) => s.completedHeld)),
      steadySamples: steady.length,
    };
    process.stdout.write(`SOAK-SUMMARY ${JSON.stringify(summary)}\n`);
    // What the keys left in Redis are, by kind (the prefix's second segment).
    const kinds: Record<string, number> = {};
    let cursor = '0';
    do {
      const [next, batch] = await inspect.scan(cursor, 'COUNT', 1000);
      cursor = next;
      for (const k of batch) {
        const kind = k.split(':').slice(0, 2).join(':');
        kinds[kind] = (kinds[kind] ?? 0) + 1;
      }
    } while (cursor !== '0');
    process.stdout.write(`SOAK-KEYS ${JSON.stringify(kinds)}\n`);
    // Background AOF rewrites fork Redis: the moments where a 503 (command timeout) is most likely.
    const rewrites = redis.proc.lines.filter((l) => /Background append only file rewriting started/.test(l));
    process.stdout.write(`SOAK-AOF-REWRITES ${rewrites.length}\n`);
    inspect.disconnect();
    await agent.close();
  } finally {
    await stopAll();
    await target.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
