import { UnrecoverableError, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { startHousekeeping } from '../../src/queue/housekeeping.js';
import { makeKeys } from '../../src/queue/keys.js';
import { TargetQueues } from '../../src/queue/queues.js';
import { testConfig } from '../helpers/config.js';
import { useTestRedis } from '../helpers/redis.js';

const db = useTestRedis();

it('trims index entries older than the event and dead-letter retention, and keeps the rest', async () => {
  const config = testConfig(db.url, { retention: { events: '1h', deadLetters: '1h' } });
  const keys = makeKeys(config);
  const now = Date.now();
  await db.inspect.zadd(keys.eventIndex, now - 3 * 3_600_000, 'old', now - 60_000, 'recent');
  await db.inspect.zadd(keys.suppressed, now - 3 * 3_600_000, 'old.ci', now, 'new.ci');
  const hk = startHousekeeping({ redis: db.inspect, keys, config }, createLogger('silent'));
  try {
    const deadline = Date.now() + 5000;
    while ((await db.inspect.zcard(keys.eventIndex)) !== 1 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    expect(await db.inspect.zrange(keys.eventIndex, 0, -1)).toEqual(['recent']);
    expect(await db.inspect.zrange(keys.suppressed, 0, -1)).toEqual(['new.ci']);
  } finally {
    hk.stop();
  }
});

it('indexes failed jobs the dead-letter index does not know, with their failure time, once at start', async () => {
  const config = testConfig(db.url);
  const keys = makeKeys(config);
  const queues = new TargetQueues(config, keys, db.inspect);
  const queue = queues.get('ci')!;
  // A dead letter left by a version without the index: a job in BullMQ's failed set, nothing in the index.
  const job = await queue.add(
    'repo:push',
    { eventId: 'ev-1', targetId: 'ci', idempotencyKey: 'ev-1.ci' },
    { jobId: 'ev-1.ci' },
  );
  const connection = new Redis(db.url, { maxRetriesPerRequest: null });
  const worker = new Worker(
    queue.name,
    async () => {
      throw new UnrecoverableError('status 503');
    },
    // biome-ignore lint/suspicious/noExplicitAny: BullMQ types ioredis from its own copy
    { connection: connection as any, prefix: keys.queuePrefix('ci') },
  );
  worker.on('error', () => {});
  try {
    const deadline = Date.now() + 20_000;
    while (!(await job.isFailed()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await worker.close();
    // One already indexed keeps its own time (a recent one: older ones are trimmed by retention).
    const indexedAt = Date.now() - 60_000;
    await db.inspect.zadd(keys.deadLetters, indexedAt, 'ev-0.ci');
    const failedAt = Number(await db.inspect.zscore(queue.keys.failed!, 'ev-1.ci'));
    const hk = startHousekeeping({ redis: db.inspect, keys, config, queues }, createLogger('silent'));
    try {
      const until = Date.now() + 5000;
      while ((await db.inspect.zcard(keys.deadLetters)) !== 2 && Date.now() < until)
        await new Promise((r) => setTimeout(r, 50));
      expect(await db.inspect.zrange(keys.deadLetters, 0, -1, 'WITHSCORES')).toEqual([
        'ev-0.ci',
        String(indexedAt),
        'ev-1.ci',
        String(failedAt),
      ]);
    } finally {
      hk.stop();
    }
  } finally {
    await worker.close();
    connection.disconnect();
    await queues.close();
  }
});
