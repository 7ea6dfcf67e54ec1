import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
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
 * Two worker processes share the queue; the target is slow, so deliveries are in flight when one worker is
 * SIGKILLed. Its in-flight jobs are redelivered once by the other worker, with the same Idempotency-Key (the
 * idempotent target answers the copy as a duplicate), and no acknowledged event is lost.
 */

const TARGETS = ['ci'];
const PREFIX = 'fworker';
const EVENTS = 300;

let dir: string;
let redis: RedisNode;
let target: IdempotentTarget;
let ingress: RelayProc;
let worker1: RelayProc;
let worker2: RelayProc;
let inspect: Redis | undefined;

/** Local ports of a process's TCP connections to `remotePort` (Linux /proc: fd socket inodes → /proc/net/tcp). */
function connectionPorts(pid: number, remotePort: number): Set<number> {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    } catch {
      // closed meanwhile
    }
  }
  const ports = new Set<number>();
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const local = Number.parseInt(f[1]!.split(':')[1]!, 16);
    const remote = Number.parseInt(f[2]!.split(':')[1]!, 16);
    if (remote === remotePort && inodes.has(f[9]!)) ports.add(local);
  }
  return ports;
}

beforeAll(async () => {
  requireBuild();
  dir = mkdtempSync(join(tmpdir(), 'hookrelay-fault-worker-'));
  redis = await startRedisNode('redis', dir);
  target = await startIdempotentTarget({ delayMs: 400 });
  const cfg = {
    dir,
    redis: { url: redis.url },
    prefix: PREFIX,
    targetUrl: target.url,
    targets: TARGETS,
    // Lock = timeout + 2 s: a dead worker's jobs are free again within seconds.
    target: { timeout: 2000, concurrency: 6 },
  };
  const port = await freePort();
  const workerFile = writeFaultConfig(cfg, 'worker', 0);
  [ingress, worker1, worker2] = await Promise.all([
    startIngressProc('ingress', writeFaultConfig(cfg, 'ingress', port), port),
    startWorkerProc('worker1', workerFile),
    startWorkerProc('worker2', workerFile),
  ]);
});

afterAll(async () => {
  inspect?.disconnect();
  await stopAll();
  await target?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('fault: a worker SIGKILLed mid-delivery', () => {
  it('redelivers its in-flight jobs once, with the same Idempotency-Key, and loses nothing', async () => {
    const driver = startDriver({ urls: () => [ingress.url!], concurrency: 3, pauseMs: 20, max: EVENTS });
    try {
      // Kill worker1 while the target is in the middle of answering some of *its* requests (told apart by the
      // local port of its connections to the target).
      let cutOff: string[] = [];
      await waitFor(
        'deliveries of worker1 in flight',
        () => {
          if (target.processedCount() < 40) return false;
          const mine = connectionPorts(worker1.pid, target.port);
          cutOff = target
            .inFlightKeys()
            .filter((e) => mine.has(e.remotePort))
            .map((e) => e.key);
          if (cutOff.length < 2) return false;
          worker1.kill('SIGKILL');
          return true;
        },
        40_000,
        10,
      );
      const inFlightAtKill = target.inFlight();
      await worker1.exited;
      const stats = await driver.finished();

      inspect = inspector(redis.url);
      const run = await verifyRun({ stats, target, targets: TARGETS, redis: inspect, prefix: PREFIX });
      const aborted = cutOff;
      const copies = aborted.map((k) => target.keys.get(k)?.copies ?? 0);
      // Jobs of worker1 that were answered before the kill but not yet marked done: sent again, same key.
      const answeredThenRedelivered = [...target.keys].filter(
        ([k, r]) => r.duplicates > 0 && !cutOff.includes(k),
      ).length;
      printReport('worker-kill', {
        ...run.report,
        inFlightAtKill,
        cutOffByKill: aborted.length,
        answeredThenRedelivered,
        copiesOfCutOffKeys: copies.reduce<Record<number, number>>((m, c) => {
          m[c] = (m[c] ?? 0) + 1;
          return m;
        }, {}),
      });
      expect(run.missing).toEqual([]);
      expect(run.notIndexed).toEqual([]);
      expect(run.mismatched).toEqual([]);
      // The kill really cut deliveries off mid-request, and each of those came back once, with the same key.
      expect(aborted.length).toBeGreaterThan(0);
      await waitFor('redeliveries of the cut-off requests', () =>
        aborted.every((k) => (target.keys.get(k)?.copies ?? 0) >= 2),
      );
      for (const k of aborted) expect(target.keys.get(k)?.copies, k).toBe(2);
      expect(worker2.isRunning()).toBe(true);
    } finally {
      await driver.stop();
    }
  });
});
