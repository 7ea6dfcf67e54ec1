import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load-config.js';
import { createLogger } from '../../src/log.js';
import { makeKeys } from '../../src/queue/keys.js';
import { createRuntime, waitForRedis } from '../../src/runtime.js';
import { stopAll } from '../edge/helpers/processes.js';
import { type RelayProc, requireBuild } from '../edge/helpers/stack.js';
import { startAdmin } from '../helpers/admin.js';
import { runCli } from '../helpers/cli.js';
import { startDriver } from './helpers/driver.js';
import { type IdempotentTarget, startIdempotentTarget } from './helpers/idempotent-target.js';
import { type RedisNode, startRedisCluster } from './helpers/redis-procs.js';
import {
  type FaultConfig,
  nodeClients,
  printReport,
  startIngressAndWorker,
  verifyRun,
  writeFaultConfig,
} from './helpers/relay.js';

/*
 * Redis Cluster: three primaries on loopback (`--cluster-enabled yes`, joined by `redis-cli --cluster create`).
 * The relay runs with `redis: { cluster: [...], shards: 12 }` and the end-to-end flow runs on it: a stream of
 * pushes to many repositories through an ingress process to a worker process and two targets. Every
 * acknowledged event is delivered once to each target, and the events and their queues are spread over all
 * three primaries, not pinned to one.
 */

const PREFIX = 'fcluster';
const SHARDS = 12;
const TARGETS = ['ci-a', 'ci-b'];
// Per target and worker process, whatever the number of shard queues.
const CONCURRENCY = 3;
const REPOS = Array.from({ length: 24 }, (_, i) => `acme/service-${i}`);

const TOKEN = 'cluster-ops-token-0123456789';

let dir: string;
let cfg: FaultConfig;
let nodes: RedisNode[] = [];
let target: IdempotentTarget;
let ingress: RelayProc;
let worker: RelayProc;
const clients = nodeClients();
const node = (port: number) => clients.node(port);

beforeAll(async () => {
  requireBuild();
  dir = mkdtempSync(join(tmpdir(), 'hookrelay-fault-cluster-'));
  nodes = await startRedisCluster(dir, 3);

  // A target that takes a while, so deliveries queue up in every shard at once.
  target = await startIdempotentTarget({ delayMs: 15 });
  cfg = {
    dir,
    redis: { cluster: nodes.map((n) => `127.0.0.1:${n.port}`), shards: SHARDS },
    prefix: PREFIX,
    targetUrl: target.url,
    targets: TARGETS,
    target: { concurrency: CONCURRENCY },
  };
  [ingress, worker] = await startIngressAndWorker(cfg);
}, 90_000);

afterAll(async () => {
  clients.closeAll();
  await stopAll();
  await target?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('Redis Cluster: three primaries', () => {
  it('refuses to start a relay whose shard count differs from the one the data was written with', async () => {
    // The ingress and worker of this file recorded 12; a worker configured with 8 would read the wrong shards.
    const wrong = writeFaultConfig({ ...cfg, redis: { ...cfg.redis, shards: 8 } }, 'worker-8-shards', 0);
    const run = await runCli(['worker', '--config', wrong], {}, 30_000);
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain('redis.shards is 8 but the data in this cluster was written with 12 shards');
  });

  it('runs the end-to-end flow: every acknowledged event delivered once per target, spread over all primaries', async () => {
    const driver = startDriver({ urls: () => [ingress.url!], concurrency: 4, max: 300, repos: REPOS });
    const stats = await driver.finished();
    expect(stats.acked.size).toBe(300);

    const cluster = new Cluster(nodes.map((n) => ({ host: '127.0.0.1', port: n.port })));
    cluster.on('error', () => {});
    clients.track(cluster);
    const keys = makeKeys({ redis: { prefix: PREFIX, cluster: [], shards: SHARDS } as never });
    const run = await verifyRun({
      stats,
      target,
      targets: TARGETS,
      redis: cluster,
      prefix: PREFIX,
      keys,
    });

    // Where the events and the delivery jobs ended up: per primary, by key pattern.
    const perNode = await Promise.all(
      nodes.map(async (n) => ({
        port: n.port,
        events: (await node(n.port).keys(`{${PREFIX}:*}:ev:*`)).length,
        completedQueues: (await node(n.port).keys(`{${PREFIX}:*}:deliver-*:completed`)).length,
        loopGuardKeys: (await node(n.port).keys(`{${PREFIX}:*}:loop:rate:*`)).length,
      })),
    );
    const shardsUsed = new Set([...stats.acked.keys()].map((id) => keys.shardOfId(id)));
    const peak = Object.fromEntries(target.peakInFlight);
    printReport('cluster', { ...run.report, shardsUsed: shardsUsed.size, perNode, peakInFlight: peak });

    expect(run.missing).toEqual([]);
    expect(run.notIndexed).toEqual([]);
    expect(run.mismatched).toEqual([]);
    expect(run.report.keysWithDuplicates).toBe(0);
    // Each event's hash lives on exactly one primary, and every primary holds some events, queues and guard keys.
    expect(perNode.reduce((n, p) => n + p.events, 0)).toBe(300);
    for (const p of perNode) {
      expect(p.events).toBeGreaterThan(0);
      expect(p.completedQueues).toBeGreaterThan(0);
      // The loop guard's per-ref counters live with their repository's shard, not on one hot primary.
      expect(p.loopGuardKeys).toBeGreaterThan(0);
    }
    // Twelve shard queues per target, one BullMQ worker each, and still at most `concurrency` requests at once.
    for (const t of TARGETS) expect(target.peakInFlight.get(`/${t}`)).toBeLessThanOrEqual(CONCURRENCY);
    expect(Math.max(...target.peakInFlight.values())).toBe(CONCURRENCY);
    expect(worker.isRunning()).toBe(true);

    // Ops over the cluster: the admin API lists every event once, newest first, merged from the 12 per-shard
    // indexes, and finds one by id alone (the id names its shard).
    const config = loadConfig(writeFaultConfig(cfg, 'admin', 0), {});
    const adminConfig = {
      ...config,
      admin: { ...config.admin, tokens: [{ name: 'ops', token: TOKEN, role: 'viewer' }] },
    };
    const runtime = await createRuntime(adminConfig as typeof config, createLogger('silent'));
    await waitForRedis(runtime.redis, 10_000);
    const admin = await startAdmin(runtime);
    try {
      const listed: { id: string; receivedAt: string }[] = [];
      let cursor: string | null = null;
      do {
        const res = await fetch(`${admin.url}/api/events?limit=70${cursor ? `&cursor=${cursor}` : ''}`, {
          headers: { authorization: `Bearer ${TOKEN}` },
        });
        const page = (await res.json()) as {
          events: { id: string; receivedAt: string }[];
          nextCursor: string | null;
        };
        expect(res.status, JSON.stringify(page)).toBe(200);
        listed.push(...page.events);
        cursor = page.nextCursor;
      } while (cursor);
      expect(new Set(listed.map((e) => e.id))).toEqual(new Set(stats.acked.keys()));
      expect(listed).toHaveLength(300);
      const times = listed.map((e) => Date.parse(e.receivedAt));
      expect(times).toEqual([...times].sort((a, b) => b - a));
      const one = listed[150]!.id;
      const shown = (await (
        await fetch(`${admin.url}/api/events/${one}`, { headers: { authorization: `Bearer ${TOKEN}` } })
      ).json()) as { targets: { target: string; state: string }[] };
      expect(shown.targets.map((t) => [t.target, t.state])).toEqual(TARGETS.map((t) => [t, 'delivered']));
    } finally {
      await admin.close();
      await runtime.close();
    }
  });
});
