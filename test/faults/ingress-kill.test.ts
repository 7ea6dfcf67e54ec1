import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, stopAll, waitFor } from '../edge/helpers/processes.js';
import { type RelayProc, requireBuild, startIngressProc, startWorkerProc } from '../edge/helpers/stack.js';
import { startDriver } from './helpers/driver.js';
import { type IdempotentTarget, startIdempotentTarget } from './helpers/idempotent-target.js';
import { type RedisNode, startRedisNode } from './helpers/redis-procs.js';
import { inspector, printReport, verifyRun, writeFaultConfig } from './helpers/relay.js';

/*
 * Two ingress processes take a stream round-robin; one is SIGKILLed under load. The driver fails over to the
 * other (a request that got no answer is sent again there, as Bitbucket would retry it). Everything the killed
 * ingress acknowledged before it died is delivered and indexed.
 */

const TARGETS = ['ci-a', 'ci-b'];
const PREFIX = 'fingress';

let dir: string;
let redis: RedisNode;
let target: IdempotentTarget;
let ingress1: RelayProc;
let ingress2: RelayProc;
let worker: RelayProc;
let inspect: Redis | undefined;

beforeAll(async () => {
  requireBuild();
  dir = mkdtempSync(join(tmpdir(), 'hookrelay-fault-ingress-'));
  redis = await startRedisNode('redis', dir);
  target = await startIdempotentTarget();
  const cfg = { dir, redis: { url: redis.url }, prefix: PREFIX, targetUrl: target.url, targets: TARGETS };
  const [p1, p2] = [await freePort(), await freePort()];
  [ingress1, ingress2, worker] = await Promise.all([
    startIngressProc('ingress1', writeFaultConfig(cfg, 'ingress1', p1), p1),
    startIngressProc('ingress2', writeFaultConfig(cfg, 'ingress2', p2), p2),
    startWorkerProc('worker', writeFaultConfig(cfg, 'worker', 0)),
  ]);
});

afterAll(async () => {
  inspect?.disconnect();
  await stopAll();
  await target?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('fault: an ingress SIGKILLed under load', () => {
  it('loses nothing the killed ingress acknowledged; the other one takes the stream', async () => {
    const driver = startDriver({ urls: () => [ingress1.url!, ingress2.url!], concurrency: 6, pauseMs: 5 });
    const ackedBy = (url: string) => [...driver.stats.acked.values()].filter((u) => u === url).length;
    try {
      await waitFor('ingress1 acknowledging under load', () => ackedBy(ingress1.url!) >= 200, 30_000, 20);
      ingress1.kill('SIGKILL');
      await ingress1.exited;
      const ackedByKilled = ackedBy(ingress1.url!);
      const ackedBy2AtKill = ackedBy(ingress2.url!);
      await waitFor(
        'ingress2 carrying the stream',
        () => ackedBy(ingress2.url!) >= ackedBy2AtKill + 200,
        30_000,
      );
      const stats = await driver.stop();

      inspect = inspector(redis.url);
      const run = await verifyRun({ stats, target, targets: TARGETS, redis: inspect, prefix: PREFIX });
      printReport('ingress-kill', {
        ...run.report,
        ackedByKilledIngress: ackedByKilled,
        ackedBySurvivor: ackedBy(ingress2.url!),
      });
      expect(run.missing).toEqual([]);
      expect(run.notIndexed).toEqual([]);
      expect(run.mismatched).toEqual([]);
      expect(ackedByKilled).toBeGreaterThan(0);
      expect(ingress2.isRunning()).toBe(true);
      expect(worker.isRunning()).toBe(true);
    } finally {
      await driver.stop();
    }
  });
});
