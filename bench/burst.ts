/**
 * A burst: 20,000 signed pushes sent as fast as the client can (32 connections), to hookrelay's ingress in
 * one process and its fan-out and delivery workers in another (`hookrelay ingress`, `hookrelay worker`),
 * delivering to a local target
 * that answers 200 at once. Reports the 202's latency percentiles, any answer that was not a 202, the time
 * until the target has every event, and Redis's memory at its peak per event against the payload's size.
 * Run: `npm run bench burst` (or `node --import tsx bench/burst.ts [events]`).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { Pool } from 'undici';
import { startEmbeddedRedis } from '../src/queue/embedded-redis.js';
import { child, percentile, Receipts } from './e2e.js';
import { benchRedisUrl } from './harness.js';
import { averageSize, makeSignedPushes } from './payloads.js';

const SECRET = 'bench-secret-0123456789';

export interface BurstResult {
  events: number;
  avgBytes: number;
  /** The 202's latency at the client (ms). */
  p50: number;
  p99: number;
  max: number;
  /** Answers other than 202 (a 503 would mean Redis could not take it). */
  not202: Record<string, number>;
  /** First send → last 202, and first send → the target has every event (ms). */
  sendMs: number;
  deliveredMs: number;
  /** Redis used_memory at its peak over the baseline, per event, and that against the average payload. */
  peakBytesPerEvent: number;
  memoryRatio: number;
}

function usedMemory(info: string): number {
  return Number(/used_memory:(\d+)/.exec(info)![1]);
}

export async function benchBurst(events = 20_000, connections = 32): Promise<BurstResult> {
  const dir = mkdtempSync(join(tmpdir(), 'hookrelay-bench-burst-'));
  const redis = await startEmbeddedRedis({ dir });
  const inspect = new Redis(redis.url);
  const receipts = new Receipts();
  const target = await child('./e2e-target.ts');
  receipts.attach(target.proc);
  // One set: each push a distinct change (a second set would repeat the first's ref moves: duplicates).
  const all = makeSignedPushes(300 + events, SECRET);
  const warm = all.slice(0, 300);
  const reqs = all.slice(300);
  // As deployed on two cores: `hookrelay ingress` and `hookrelay worker` (fan-out and delivery), a process each.
  const relayArgs = {
    mode: 'hookrelay',
    redisUrl: benchRedisUrl(redis),
    targetUrl: `${target.url}/hook`,
    concurrency: 16,
    secret: SECRET,
    logLevel: 'info',
    prefix: 'bench-burst',
  };
  const relay = await child('./e2e-relay.ts', { ...relayArgs, roles: 'ingress' });
  const worker = await child('./e2e-relay.ts', { ...relayArgs, roles: 'worker' });
  const pool = new Pool(relay.url, { connections });
  const rid = (r: (typeof reqs)[number]) => r.headers['x-request-uuid']!;
  const sendAll = async (batch: typeof reqs, latencies: number[], not202: Record<string, number>) => {
    let next = 0;
    await Promise.all(
      Array.from({ length: connections }, async () => {
        while (next < batch.length) {
          const r = batch[next++]!;
          const t0 = performance.now();
          const res = await pool.request({
            path: '/hooks/cloud',
            method: 'POST',
            headers: r.headers,
            body: r.body,
          });
          await res.body.dump();
          latencies.push(performance.now() - t0);
          if (res.statusCode !== 202) not202[res.statusCode] = (not202[res.statusCode] ?? 0) + 1;
        }
      }),
    );
  };
  try {
    // Queue metadata, scripts and connections are paid once: measure from after a warm-up.
    await sendAll(warm, [], {});
    await receipts.all(warm.map(rid));
    const baseline = usedMemory(await inspect.info('memory'));
    let peak = baseline;
    const sampler = setInterval(() => {
      inspect.info('memory').then(
        (info) => {
          peak = Math.max(peak, usedMemory(info));
        },
        () => undefined,
      );
    }, 50);
    const latencies: number[] = [];
    const not202: Record<string, number> = {};
    const start = Date.now();
    await sendAll(reqs, latencies, not202);
    const sent = Date.now();
    const last = await receipts.all(reqs.map(rid), 300_000);
    clearInterval(sampler);
    peak = Math.max(peak, usedMemory(await inspect.info('memory')));
    latencies.sort((a, b) => a - b);
    const avgBytes = averageSize(reqs);
    const perEvent = (peak - baseline) / events;
    return {
      events,
      avgBytes,
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      max: latencies[latencies.length - 1]!,
      not202,
      sendMs: sent - start,
      deliveredMs: last - start,
      peakBytesPerEvent: perEvent,
      memoryRatio: perEvent / avgBytes,
    };
  } finally {
    await pool.close();
    relay.proc.kill('SIGKILL');
    worker.proc.kill('SIGKILL');
    target.proc.kill('SIGKILL');
    inspect.disconnect();
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

export function printBurst(r: BurstResult): void {
  const ms = (n: number) => `${n.toFixed(1)} ms`;
  console.log(
    `\n== burst: ${r.events} signed pushes (avg ${(r.avgBytes / 1024).toFixed(1)} KB) as fast as sent ==`,
  );
  console.log(`202 latency: p50 ${ms(r.p50)}, p99 ${ms(r.p99)}, max ${ms(r.max)} (target p99 ≤ 50 ms)`);
  const others = Object.entries(r.not202);
  console.log(
    `answers other than 202: ${others.length ? others.map(([s, n]) => `${n} × ${s}`).join(', ') : 'none'}`,
  );
  console.log(
    `all 202s after ${(r.sendMs / 1000).toFixed(1)} s (${(r.events / (r.sendMs / 1000)).toFixed(0)}/s); all delivered after ${(r.deliveredMs / 1000).toFixed(1)} s (${(r.events / (r.deliveredMs / 1000)).toFixed(0)}/s)`,
  );
  console.log(
    `redis memory at the peak: ${Math.round(r.peakBytesPerEvent)} bytes per event = ${r.memoryRatio.toFixed(2)} × payload (target ≤ 0.50)`,
  );
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  printBurst(await benchBurst(process.argv[2] ? Number(process.argv[2]) : undefined));
  process.exit(0);
}
