import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stopAll, waitFor } from '../edge/helpers/processes.js';
import { type RelayProc, requireBuild } from '../edge/helpers/stack.js';
import { startDriver } from './helpers/driver.js';
import { type IdempotentTarget, startIdempotentTarget } from './helpers/idempotent-target.js';
import { type RedisNode, startRedisNode } from './helpers/redis-procs.js';
import { inspector, printReport, startIngressAndWorker, verifyRun } from './helpers/relay.js';

/*
 * Redis stopped for ~10 s in the middle of a stream and started again from its AOF: the ingress answers 503
 * with Retry-After meanwhile and recovers by itself; the worker process carries on without a restart; nothing
 * that got a 2xx is lost.
 */

const OUTAGE_MS = 10_000;
const TARGETS = ['ci-a', 'ci-b'];
const PREFIX = 'frestart';

let dir: string;
let redis: RedisNode;
let target: IdempotentTarget;
let ingress: RelayProc;
let worker: RelayProc;
let inspect: Redis | undefined;

beforeAll(async () => {
  requireBuild();
  dir = mkdtempSync(join(tmpdir(), 'hookrelay-fault-restart-'));
  redis = await startRedisNode('redis', dir);
  target = await startIdempotentTarget();
  const cfg = { dir, redis: { url: redis.url }, prefix: PREFIX, targetUrl: target.url, targets: TARGETS };
  [ingress, worker] = await startIngressAndWorker(cfg);
});

afterAll(async () => {
  inspect?.disconnect();
  await stopAll();
  await target?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('fault: Redis stopped and started again (AOF)', () => {
  it('answers 503 during the outage, recovers, and delivers every acknowledged event', async () => {
    const driver = startDriver({ urls: () => [ingress.url!], concurrency: 4, pauseMs: 10 });
    try {
      await waitFor('acknowledged events before the outage', () => driver.ackedCount() >= 150, 30_000);
      const ackedBefore = driver.ackedCount();
      await redis.stop();
      const stoppedAt = Date.now();
      await waitFor('503s while Redis is down', () => (driver.stats.status['503'] ?? 0) >= 10, 8_000, 50);
      // The fault itself lasts a fixed time; nothing is asserted on it.
      await sleep(Math.max(0, stoppedAt + OUTAGE_MS - Date.now()));
      const ackedDuringOutage = driver.ackedCount() - ackedBefore;
      const before = new Set(driver.stats.acked.keys());
      await redis.start();
      const restartedAt = Date.now();
      await waitFor(
        'acknowledged events after the restart',
        () => driver.ackedCount() >= before.size + 150,
        40_000,
      );
      const recoveredMs = Date.now() - restartedAt;
      const stats = await driver.stop();
      const after = [...stats.acked.keys()].filter((id) => !before.has(id));

      inspect = inspector(redis.url);
      const run = await verifyRun({ stats, target, targets: TARGETS, redis: inspect, prefix: PREFIX });
      printReport('redis-restart', {
        ...run.report,
        outageMs: OUTAGE_MS,
        ackedBefore,
        ackedDuringOutage,
        ackedAfterRestart: after.length,
        msUntil150AckedAfterRestart: recoveredMs,
      });
      expect(run.missing).toEqual([]);
      expect(run.notIndexed).toEqual([]);
      expect(run.mismatched).toEqual([]);
      expect(stats.retryAfter503).toBeGreaterThan(0);
      expect(after.length).toBeGreaterThan(0);
      // The same worker process delivered the events acknowledged after the restart: it resumed on its own.
      expect(worker.isRunning()).toBe(true);
      expect(ingress.isRunning()).toBe(true);
      expect(after.every((id) => TARGETS.every((t) => target.keys.get(`${id}.${t}`)?.processed))).toBe(true);
    } finally {
      await driver.stop();
    }
  });
});
