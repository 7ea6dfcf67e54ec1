import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stopAll, waitFor } from '../edge/helpers/processes.js';
import { type RelayProc, requireBuild } from '../edge/helpers/stack.js';
import { startDriver } from './helpers/driver.js';
import { type IdempotentTarget, startIdempotentTarget } from './helpers/idempotent-target.js';
import { type RedisNode, type SentinelNode, startRedisNode, startSentinel } from './helpers/redis-procs.js';
import { printReport, startIngressAndWorker, verifyRun } from './helpers/relay.js';

/*
 * Redis Sentinel: a primary, a replica and three sentinels (quorum 2) on loopback. The relay runs with
 * `redis: { sentinels, name: mymaster, durability: replicated }`. In the middle of a stream the primary is
 * SIGKILLed (a real failure, not a polite SENTINEL FAILOVER); the sentinels promote the replica; the old
 * primary comes back and is turned into a replica of the new one (so `replicated` can acknowledge again).
 * Nothing acknowledged before, during or after is lost, and the same worker process delivers it all from the
 * new primary.
 */

const NAME = 'mymaster';
const TARGETS = ['ci-a', 'ci-b'];
const PREFIX = 'fsentinel';

let dir: string;
let primary: RedisNode;
let replica: RedisNode;
let sentinels: SentinelNode[] = [];
let target: IdempotentTarget;
let ingress: RelayProc;
let worker: RelayProc;
const clients: Redis[] = [];

function client(port: number): Redis {
  const c = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 1, retryStrategy: () => 200 });
  c.on('error', () => {});
  clients.push(c);
  return c;
}

async function masterPort(): Promise<number> {
  const addr = (await client(sentinels[0]!.port).call('SENTINEL', 'get-master-addr-by-name', NAME)) as
    | string[]
    | null;
  return Number(addr?.[1] ?? 0);
}

const infoField = (info: string, name: string) => new RegExp(`^${name}:(.*)$`, 'm').exec(info)?.[1]?.trim();

beforeAll(async () => {
  requireBuild();
  dir = mkdtempSync(join(tmpdir(), 'hookrelay-fault-sentinel-'));
  primary = await startRedisNode('primary', dir, ['--repl-diskless-sync-delay', '0']);
  replica = await startRedisNode('replica', dir, [
    '--repl-diskless-sync-delay',
    '0',
    '--replicaof',
    '127.0.0.1',
    String(primary.port),
  ]);
  await waitFor('the replica in sync', async () => {
    return infoField(await client(replica.port).info('replication'), 'master_link_status') === 'up';
  });
  sentinels = await Promise.all(
    ['sentinel1', 'sentinel2', 'sentinel3'].map((n) =>
      startSentinel(
        n,
        dir,
        { name: NAME, port: primary.port },
        { downAfterMs: 1000, failoverTimeoutMs: 3000 },
      ),
    ),
  );
  // Each sentinel must know the replica and the two other sentinels before a failover can be agreed.
  await waitFor(
    'sentinels to discover each other and the replica',
    async () => {
      for (const s of sentinels) {
        const flat = (await client(s.port).call('SENTINEL', 'master', NAME)) as string[];
        const m = Object.fromEntries(flat.flatMap((v, i) => (i % 2 === 0 ? [[v, flat[i + 1]]] : [])));
        if (m['num-other-sentinels'] !== '2' || m['num-slaves'] !== '1') return false;
      }
      return true;
    },
    30_000,
    200,
  );

  target = await startIdempotentTarget();
  const cfg = {
    dir,
    redis: {
      sentinels: sentinels.map((s) => `127.0.0.1:${s.port}`),
      name: NAME,
      durability: 'replicated',
      replicas: 1,
    },
    prefix: PREFIX,
    targetUrl: target.url,
    targets: TARGETS,
  };
  [ingress, worker] = await startIngressAndWorker(cfg);
}, 90_000);

afterAll(async () => {
  for (const c of clients) c.disconnect();
  await stopAll();
  await target?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('fault: Redis Sentinel failover (durability replicated)', () => {
  it('loses nothing acknowledged when the primary dies, and the worker carries on against the new one', async () => {
    const driver = startDriver({ urls: () => [ingress.url!], concurrency: 4, pauseMs: 10 });
    try {
      await waitFor('acknowledged events before the failure', () => driver.ackedCount() >= 150, 30_000);
      const ackedBefore = driver.ackedCount();
      await primary.kill();
      const killedAt = Date.now();
      await waitFor(
        'the sentinels to promote the replica',
        async () => (await masterPort()) === replica.port,
        30_000,
        100,
      );
      const failoverMs = Date.now() - killedAt;
      // The old primary returns (its AOF) and the sentinels turn it into a replica of the new primary.
      await primary.start();
      const oldPrimary = client(primary.port);
      const following = async () => {
        const info = await oldPrimary.info('replication');
        return infoField(info, 'role') === 'slave' && infoField(info, 'master_link_status') === 'up';
      };
      // Sentinel converts a returning primary once it has seen it up for 8 s (sentinel.c), about 10 s here;
      // once, on a loaded CI machine, not within 40 s. What is under test is the relay, not Sentinel: past 25 s
      // the test points the old primary at the new one itself, and the report says it did.
      let replicaOfByTest = false;
      try {
        await waitFor('the sentinels to turn the old primary into a replica', following, 25_000, 200);
      } catch {
        replicaOfByTest = true;
        // Left in the CI log on purpose: what Sentinel was doing instead is not understood yet.
        console.warn(
          `sentinel did not convert the old primary; sentinel1 says:\n${sentinels[0]!.proc.output()}`,
        );
        await oldPrimary.call('REPLICAOF', '127.0.0.1', String(replica.port));
        await waitFor('the old primary to replicate from the new one', following, 40_000, 200).catch(
          (err: Error) => {
            throw new Error(
              `${err.message}\n--- old primary:\n${primary.proc.output()}\n--- sentinel1:\n${sentinels[0]!.proc.output()}`,
            );
          },
        );
      }
      const atRecovery = driver.ackedCount();
      await waitFor(
        'acknowledged events after the failover',
        () => driver.ackedCount() >= atRecovery + 150,
        40_000,
      );
      const stats = await driver.stop();

      const inspect = new Redis({
        sentinels: sentinels.map((s) => ({ host: '127.0.0.1', port: s.port })),
        name: NAME,
      });
      inspect.on('error', () => {});
      clients.push(inspect);
      const run = await verifyRun({ stats, target, targets: TARGETS, redis: inspect, prefix: PREFIX });
      printReport('sentinel-failover', {
        ...run.report,
        ackedBefore,
        ackedAfterRecovery: stats.acked.size - atRecovery,
        msUntilPromoted: failoverMs,
        replicaOfByTest,
      });
      expect(run.missing).toEqual([]);
      expect(run.notIndexed).toEqual([]);
      expect(run.mismatched).toEqual([]);
      expect(worker.isRunning()).toBe(true);
      expect(ingress.isRunning()).toBe(true);
      expect(infoField(await inspect.info('replication'), 'role')).toBe('master');
      expect(await masterPort()).toBe(replica.port);
    } finally {
      await driver.stop();
    }
  });
});
