import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { checkDurability, DurabilityError } from '../../src/queue/durability.js';
import { createRuntime, waitForRedis } from '../../src/runtime.js';
import { cloudPush, HASH } from '../fixtures/payloads.js';
import { cloudRequest, send } from '../helpers/bitbucket.js';
import { testConfig } from '../helpers/config.js';
import { startIngress } from '../helpers/ingress.js';
import { captureLogs } from '../helpers/logs.js';
import { startTestRedis } from '../helpers/redis.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function waitFor(check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('redis.durability', () => {
  it('replicated: answers 503 until a replica acknowledges, then accepts and answers the retry as stored', async () => {
    const primary = await startTestRedis(['--repl-diskless-sync-delay', '0']);
    cleanups.push(() => primary.cleanup());
    const config = testConfig(primary.url, {
      redis: { url: primary.url, durability: 'replicated', commandTimeoutMs: 300 },
    });
    const ing = await startIngress(config, captureLogs().log);
    cleanups.push(() => ing.close());

    const req = cloudRequest('repo:push', cloudPush(), { requestId: 'repl-1' });
    const alone = await send(ing.url, 'cloud', req);
    expect(alone.status).toBe(503);
    expect(alone.json.error).toBe('QUEUE_UNAVAILABLE');
    // Bitbucket's retry while still unreplicated is not taken for a stored duplicate, on this instance or on
    // another one (whose WAIT would otherwise cover none of the original write).
    expect((await send(ing.url, 'cloud', req)).status).toBe(503);
    const other = await startIngress(config, captureLogs().log);
    cleanups.push(() => other.close());
    expect((await send(other.url, 'cloud', req)).status).toBe(503);

    const replica = await startTestRedis(['--replicaof', '127.0.0.1', String(primary.port)]);
    cleanups.push(() => replica.cleanup());
    await waitFor(async () => /connected_slaves:1/.test(await ing.rt.redis.info('replication')));
    const replicaClient = new Redis(replica.url);
    cleanups.push(async () => replicaClient.disconnect());
    await waitFor(async () => /master_link_status:up/.test(await replicaClient.info('replication')));
    // And the primary has the replica online with everything written so far acknowledged: under CI load the
    // replica's side can say "up" a moment before the primary counts it for WAIT.
    await waitFor(async () => {
      const info = await ing.rt.redis.info('replication');
      const master = Number(/master_repl_offset:(\d+)/.exec(info)?.[1] ?? -1);
      const acked = /slave0:.*state=online.*offset=(\d+)/.exec(info);
      return acked !== null && Number(acked[1]) >= master;
    });

    const retry = await send(ing.url, 'cloud', req);
    expect(retry.status).toBe(200);
    expect(retry.json.duplicate).toBe(true);
    const fresh = await send(ing.url, 'cloud', cloudRequest('repo:push', cloudPush({ newHash: HASH.c })));
    expect(fresh.status).toBe(202);
  });

  it('fsync: refuses to start against a Redis that only fsyncs every second (before 7.2), starts with appendfsync always', async () => {
    const everysec = await startTestRedis();
    cleanups.push(() => everysec.cleanup());
    const log = captureLogs().log;
    const config = testConfig(everysec.url, { redis: { url: everysec.url, durability: 'fsync' } });
    const rt = await createRuntime(config, log);
    cleanups.push(() => rt.close());
    await waitForRedis(rt.redis, 5000);
    const version = /redis_version:(\d+)\.(\d+)/.exec(await rt.redis.info('server'))!;
    const hasWaitAof = Number(version[1]) > 7 || (Number(version[1]) === 7 && Number(version[2]) >= 2);
    if (hasWaitAof) {
      expect((await checkDurability(rt.redis, config, log)).waitAof).toBe(true);
    } else {
      await expect(checkDurability(rt.redis, config, log)).rejects.toThrow(DurabilityError);
    }

    const always = await startTestRedis(['--appendfsync', 'always']);
    cleanups.push(() => always.cleanup());
    const ok = testConfig(always.url, { redis: { url: always.url, durability: 'fsync' } });
    const ing = await startIngress(ok, log);
    cleanups.push(() => ing.close());
    expect((await send(ing.url, 'cloud', cloudRequest('repo:push', cloudPush()))).status).toBe(202);
  });
});
