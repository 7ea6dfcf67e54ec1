import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort, startEmbeddedRedis } from '../src/queue/embedded-redis.js';
import { fmt, type LoadResult, load, waitReady, writeYaml } from './harness.js';
import { makeSignedPushes } from './payloads.js';

/**
 * What each `redis.durability` level costs: the same ingest load against one ingress, with `fast` (AOF every
 * second), `fsync` (Redis running `appendfsync always`) and `replicated` (WAIT for one replica), same run.
 */
const SECRET = 'bench-secret';

export interface DurabilityBench {
  results: Record<'fast' | 'fsync' | 'replicated', LoadResult>;
}

async function ingestAgainst(
  dir: string,
  name: string,
  redisUrl: string,
  durability: string,
  seconds: number,
) {
  const port = await freePort();
  const cfg = writeYaml(
    dir,
    `${name}.yaml`,
    `redis: { url: "${redisUrl}", prefix: bench, durability: ${durability} }
ingress: { host: 127.0.0.1, port: ${port} }
sources: [{ id: cloud, platform: cloud, secrets: ["${SECRET}"] }]
targets: [{ id: t0, url: "http://127.0.0.1:9/t0" }]
routes: [{ source: cloud, targets: [t0] }]
log: { level: warn }
`,
  );
  const child = spawn(process.execPath, ['bin/hookrelay.js', 'ingress', '--config', cfg], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  try {
    const url = `http://127.0.0.1:${port}`;
    await waitReady(`${url}/readyz`);
    const reqs = makeSignedPushes(20_000, SECRET);
    await load(url, '/hooks/cloud', reqs.slice(0, 500), 1);
    return await load(url, '/hooks/cloud', reqs.slice(500), seconds);
  } finally {
    child.kill();
  }
}

export async function benchDurability(seconds = 5): Promise<DurabilityBench> {
  const dir = mkdtempSync(join(tmpdir(), 'hookrelay-durability-'));
  const everysec = await startEmbeddedRedis({ dir: join(dir, 'a') });
  const always = await startEmbeddedRedis({ dir: join(dir, 'b'), appendfsync: 'always' });
  const primary = await startEmbeddedRedis({
    dir: join(dir, 'c'),
    args: ['--repl-diskless-sync-delay', '0'],
  });
  const replica = await startEmbeddedRedis({
    dir: join(dir, 'd'),
    args: ['--replicaof', '127.0.0.1', String(primary.port)],
  });
  const probe = new Redis(replica.url);
  try {
    const deadline = Date.now() + 15_000;
    while (!/master_link_status:up/.test(await probe.info('replication'))) {
      if (Date.now() > deadline) throw new Error('replica did not sync');
      await new Promise((r) => setTimeout(r, 100));
    }
    return {
      results: {
        fast: await ingestAgainst(dir, 'fast', everysec.url, 'fast', seconds),
        fsync: await ingestAgainst(dir, 'fsync', always.url, 'fsync', seconds),
        replicated: await ingestAgainst(dir, 'replicated', primary.url, 'replicated', seconds),
      },
    };
  } finally {
    probe.disconnect();
    await Promise.all([everysec.stop(), always.stop(), replica.stop(), primary.stop()]);
    rmSync(dir, { recursive: true, force: true });
  }
}

export function printDurability(r: DurabilityBench): void {
  console.log('\n== durability levels: ingest of signed pushes, one ingress, 16 connections ==');
  for (const [level, res] of Object.entries(r.results)) {
    const ratio = res.rps / r.results.fast.rps;
    console.log(`${level.padEnd(11)} ${fmt(res)}   ${ratio.toFixed(2)} × fast`);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  printDurability(await benchDurability());
}
