import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeliveryJobData } from '../../src/relay/job-types.js';
import { stopAll, waitFor } from '../edge/helpers/processes.js';
import { type RelayProc, requireBuild } from '../edge/helpers/stack.js';
import { startDriver } from './helpers/driver.js';
import { type IdempotentTarget, startIdempotentTarget } from './helpers/idempotent-target.js';
import { type RedisNode, startRedisNode } from './helpers/redis-procs.js';
import { inspector, printReport, startIngressAndWorker, verifyRun } from './helpers/relay.js';

/*
 * The target answers 503 for a while under a short retry policy (3 attempts, 50 ms base delay): every delivery
 * is tried 3 times with backoff and dead-letters (BullMQ failed set of `deliver-ci`). The target comes back and
 * the dead letters are replayed through the replay contract (trigger 'replay', then retry from failed): every
 * one arrives, with the Idempotency-Key it had from the start.
 */

const TARGETS = ['ci'];
const PREFIX = 'fdown';
const EVENTS = 120;
const ATTEMPTS = 3;

let dir: string;
let redis: RedisNode;
let target: IdempotentTarget;
let ingress: RelayProc;
let worker: RelayProc;
let queue: Queue<DeliveryJobData> | undefined;
let inspect: Redis | undefined;

beforeAll(async () => {
  requireBuild();
  dir = mkdtempSync(join(tmpdir(), 'hookrelay-fault-down-'));
  redis = await startRedisNode('redis', dir);
  target = await startIdempotentTarget();
  target.mode = 'down';
  const cfg = {
    dir,
    redis: { url: redis.url },
    prefix: PREFIX,
    targetUrl: target.url,
    targets: TARGETS,
    target: { retry: { attempts: ATTEMPTS, delay: 50, maxDelay: 200 } },
  };
  [ingress, worker] = await startIngressAndWorker(cfg);
});

afterAll(async () => {
  await queue?.close();
  inspect?.disconnect();
  await stopAll();
  await target?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('fault: a target down for a while', () => {
  it('backs off, dead-letters at the limit, and a replay brings every delivery home with the same key', async () => {
    const driver = startDriver({ urls: () => [ingress.url!], concurrency: 3, pauseMs: 10, max: EVENTS });
    try {
      const stats = await driver.finished();
      const ids = [...stats.acked.keys()];
      expect(ids.length).toBe(EVENTS);
      queue = new Queue<DeliveryJobData>('deliver-ci', {
        connection: { host: '127.0.0.1', port: redis.port },
        prefix: PREFIX,
      });
      await waitFor(
        'every delivery dead-lettered',
        async () => (await queue!.getFailedCount()) === ids.length,
        60_000,
        200,
      );
      const refusedWhileDown = [...target.keys.values()].reduce((n, r) => n + r.refused, 0);
      // Each delivery was tried exactly `attempts` times, numbered 1..attempts, all with its own one key.
      for (const id of ids) {
        const rec = target.keys.get(`${id}.ci`);
        expect(rec?.refused, id).toBe(ATTEMPTS);
        expect(rec?.attempts).toEqual(['1', '2', '3']);
      }
      expect(target.processedCount()).toBe(0);

      target.mode = 'up';
      const failed = await queue.getFailed(0, -1);
      for (const job of failed) {
        await job.updateData({ ...job.data, trigger: 'replay' });
        await job.retry('failed');
      }

      inspect = inspector(redis.url);
      const run = await verifyRun({ stats, target, targets: TARGETS, redis: inspect, prefix: PREFIX });
      await waitFor('the failed set to drain', async () => (await queue!.getFailedCount()) === 0, 20_000);
      printReport('target-down', {
        ...run.report,
        attemptsPerDelivery: ATTEMPTS,
        refusedWhileDown,
        deadLettered: failed.length,
        replayed: failed.length,
      });
      expect(run.missing).toEqual([]);
      expect(run.notIndexed).toEqual([]);
      expect(run.mismatched).toEqual([]);
      expect(failed.map((j) => j.data.idempotencyKey).sort()).toEqual(ids.map((id) => `${id}.ci`).sort());
      // The replay is attempt 4 of the same key: one delivery per key, no duplicate.
      for (const id of ids) expect(target.keys.get(`${id}.ci`)?.attempts.at(-1)).toBe('4');
      expect(run.report.duplicates).toBe(0);
      expect(worker.isRunning()).toBe(true);
    } finally {
      await driver.stop();
    }
  });
});
