import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import calculateSlot from 'cluster-key-slot';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeKeys } from '../../src/queue/keys.js';
import { uniquePush } from '../edge/helpers/clients.js';
import { stopAll, waitFor } from '../edge/helpers/processes.js';
import { type RelayProc, requireBuild } from '../edge/helpers/stack.js';
import { send } from '../helpers/bitbucket.js';
import { type IdempotentTarget, startIdempotentTarget } from './helpers/idempotent-target.js';
import { type RedisNode, startRedisCluster } from './helpers/redis-procs.js';
import { type FaultConfig, nodeClients, printReport, startIngressAndWorker } from './helpers/relay.js';

/*
 * `durability: replicated` on Redis Cluster: three primaries with one replica each. Each event's write and its
 * WAIT go to the primary that holds the event's shard, so when one primary loses its replica exactly the
 * repositories whose shards live there are answered 503 (nothing acknowledged without a replica), while the
 * others are still accepted.
 */

const PREFIX = 'fclr';
const SHARDS = 12;
const REPOS = Array.from({ length: 24 }, (_, i) => `acme/lib-${i}`);

let dir: string;
let nodes: RedisNode[] = [];
let target: IdempotentTarget;
let ingress: RelayProc;
const clients = nodeClients();
const node = (port: number) => clients.node(port);

beforeAll(async () => {
  requireBuild();
  dir = mkdtempSync(join(tmpdir(), 'hookrelay-fault-cluster-repl-'));
  nodes = await startRedisCluster(dir, 3, 1);
  target = await startIdempotentTarget();
  const cfg: FaultConfig = {
    dir,
    redis: {
      cluster: nodes.map((n) => `127.0.0.1:${n.port}`),
      shards: SHARDS,
      durability: 'replicated',
      replicas: 1,
    },
    prefix: PREFIX,
    targetUrl: target.url,
    targets: ['ci'],
  };
  [ingress] = await startIngressAndWorker(cfg);
}, 120_000);

afterAll(async () => {
  clients.closeAll();
  await stopAll();
  await target?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** One push per repository, all at once: repository → HTTP status. */
async function pushEach(): Promise<Map<string, number>> {
  const answers = await Promise.all(
    REPOS.map(
      async (repo) => [repo, (await send(ingress.url!, 'cloud', uniquePush({ repo }).req)).status] as const,
    ),
  );
  return new Map(answers);
}

describe('Redis Cluster with durability replicated', () => {
  it('acknowledges only what the shard’s own primary replicated: one replica down → 503 for its shards only', async () => {
    const first = await pushEach();
    expect([...first.values()]).toEqual(REPOS.map(() => 202));

    // Which primary holds each repository's shard, and which node replicates which primary.
    const keys = makeKeys({ redis: { prefix: PREFIX, cluster: [], shards: SHARDS } as never });
    const slots = (await node(nodes[0]!.port).call('CLUSTER', 'SLOTS')) as [
      number,
      number,
      [string, number],
    ][];
    const primaryOf = (repo: string) => {
      const slot = calculateSlot(keys.eventIndexOf(keys.shardOf('cloud', repo)));
      const range = slots.find(([from, to]) => slot >= from && slot <= to)!;
      return range[2][1];
    };
    const lines = String(await node(nodes[0]!.port).call('CLUSTER', 'NODES'))
      .trim()
      .split('\n');
    const idOf = new Map(lines.map((l) => [Number(/:(\d+)@/.exec(l)![1]), l.split(' ')[0]!]));
    const victim = primaryOf(REPOS[0]!);
    const replicaLine = lines.find((l) => l.includes(' slave ') && l.split(' ')[3] === idOf.get(victim))!;
    const replicaPort = Number(/:(\d+)@/.exec(replicaLine)![1]);
    await nodes.find((n) => n.port === replicaPort)!.kill();
    await waitFor(
      'the primary to notice its replica is gone',
      async () => /connected_slaves:0/.test(await node(victim).info('replication')),
      20_000,
      100,
    );

    const second = await pushEach();
    const expected = new Map(REPOS.map((r) => [r, primaryOf(r) === victim ? 503 : 202]));
    printReport('cluster-replicated', {
      victimPrimary: victim,
      refused: [...second.values()].filter((s) => s === 503).length,
      accepted: [...second.values()].filter((s) => s === 202).length,
    });
    expect(second).toEqual(expected);
    expect([...expected.values()]).toContain(503);
    expect([...expected.values()]).toContain(202);
  });
});
