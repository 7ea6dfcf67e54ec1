import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { answersPing, redisServerArgs } from '../../../src/queue/embedded-redis.js';
import { freePort, type Proc, spawnTracked, waitFor } from '../../edge/helpers/processes.js';

/**
 * redis-server and redis-sentinel processes for the fault suite: each on a fixed free loopback port with its
 * own directory, so a test can stop one and start it again on the same port with its data (AOF on). Spawned
 * through the edge helpers' tracker, so stopAll() ends exactly these processes.
 */

export interface RedisNode {
  port: number;
  dir: string;
  url: string;
  proc: Proc;
  /** SIGTERM (Redis flushes and fsyncs the AOF on a clean shutdown), wait for the exit. */
  stop(): Promise<void>;
  /** SIGKILL: no shutdown at all. */
  kill(): Promise<void>;
  /** Start again on the same port with the same directory (AOF replayed). */
  start(): Promise<void>;
  running(): boolean;
}

export async function startRedisNode(
  name: string,
  baseDir: string,
  extraArgs: string[] = [],
  port?: number,
): Promise<RedisNode> {
  const p = port ?? (await freePort());
  const dir = join(baseDir, name);
  mkdirSync(dir, { recursive: true });
  const args = [...redisServerArgs(p, dir), '--daemonize', 'no', ...extraArgs];
  let proc!: Proc;
  const node: RedisNode = {
    port: p,
    dir,
    url: `redis://127.0.0.1:${p}`,
    get proc() {
      return proc;
    },
    async start() {
      proc = spawnTracked(name, 'redis-server', args, { cwd: dir });
      await waitFor(
        `${name} to answer PING on ${p}`,
        async () => {
          if (!proc.isRunning()) throw new Error(`${name} exited:\n${proc.output()}`);
          return answersPing({ host: '127.0.0.1', port: p });
        },
        15_000,
        50,
      );
    },
    async stop() {
      if (!proc.isRunning()) return;
      proc.kill('SIGTERM');
      await proc.exited;
    },
    async kill() {
      if (!proc.isRunning()) return;
      proc.kill('SIGKILL');
      await proc.exited;
    },
    running: () => proc.isRunning(),
  };
  await node.start();
  return node;
}

export interface SentinelNode {
  port: number;
  proc: Proc;
}

/** One `redis-server --sentinel` watching `name` at 127.0.0.1:primaryPort, quorum 2, fast failure detection. */
export async function startSentinel(
  label: string,
  baseDir: string,
  master: { name: string; port: number },
  timing = { downAfterMs: 1000, failoverTimeoutMs: 3000 },
): Promise<SentinelNode> {
  const port = await freePort();
  const dir = join(baseDir, label);
  mkdirSync(dir, { recursive: true });
  const conf = join(dir, 'sentinel.conf');
  // Sentinel rewrites its own config file (known replicas, epochs): it must be writable and its own.
  writeFileSync(
    conf,
    [
      `port ${port}`,
      'bind 127.0.0.1',
      `dir ${dir}`,
      'daemonize no',
      `sentinel monitor ${master.name} 127.0.0.1 ${master.port} 2`,
      `sentinel down-after-milliseconds ${master.name} ${timing.downAfterMs}`,
      `sentinel failover-timeout ${master.name} ${timing.failoverTimeoutMs}`,
      `sentinel parallel-syncs ${master.name} 1`,
      '',
    ].join('\n'),
  );
  const proc = spawnTracked(label, 'redis-server', [conf, '--sentinel'], { cwd: dir });
  await waitFor(
    `${label} to answer PING on ${port}`,
    async () => {
      if (!proc.isRunning()) throw new Error(`${label} exited:\n${proc.output()}`);
      return answersPing({ host: '127.0.0.1', port });
    },
    15_000,
    50,
  );
  return { port, proc };
}

/**
 * A Redis Cluster on loopback: `primaries × (1 + replicasEach)` redis-servers with `--cluster-enabled yes`,
 * joined by `redis-cli --cluster create`, resolved once every node reports `cluster_state:ok` and every
 * primary has its replicas connected.
 */
export async function startRedisCluster(
  baseDir: string,
  primaries: number,
  replicasEach = 0,
): Promise<RedisNode[]> {
  const nodes = await Promise.all(
    Array.from({ length: primaries * (1 + replicasEach) }, (_, i) =>
      startRedisNode(`c${i + 1}`, baseDir, [
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        'nodes.conf',
        '--cluster-node-timeout',
        '2000',
        '--repl-diskless-sync-delay',
        '0',
      ]),
    ),
  );
  const created = spawnSync(
    'redis-cli',
    [
      '--cluster',
      'create',
      ...nodes.map((n) => `127.0.0.1:${n.port}`),
      '--cluster-replicas',
      String(replicasEach),
      '--cluster-yes',
    ],
    { encoding: 'utf8', timeout: 30_000 },
  );
  if (created.status !== 0)
    throw new Error(`redis-cli --cluster create failed:\n${created.stdout}${created.stderr}`);
  await waitFor(
    'every node to report cluster_state:ok, and the replicas in sync',
    async () => {
      for (const n of nodes) {
        const probe = new Redis({
          host: '127.0.0.1',
          port: n.port,
          lazyConnect: true,
          maxRetriesPerRequest: 1,
        });
        probe.on('error', () => {});
        try {
          if (!/cluster_state:ok/.test(String(await probe.call('CLUSTER', 'INFO')))) return false;
          const info = await probe.info('replication');
          if (
            /role:master/.test(info) &&
            Number(/connected_slaves:(\d+)/.exec(info)?.[1] ?? 0) < replicasEach
          )
            return false;
        } finally {
          probe.disconnect();
        }
      }
      return true;
    },
    40_000,
    200,
  );
  return nodes;
}
