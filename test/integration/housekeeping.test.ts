import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { startHousekeeping } from '../../src/queue/housekeeping.js';
import { makeKeys } from '../../src/queue/keys.js';
import { testConfig } from '../helpers/config.js';
import { startTestRedis } from '../helpers/redis.js';

let redis: Awaited<ReturnType<typeof startTestRedis>>;
let client: Redis;
beforeAll(async () => {
  redis = await startTestRedis();
  client = new Redis(redis.url);
});
afterAll(async () => {
  client.disconnect();
  await redis.cleanup();
});

it('trims index entries older than the event and dead-letter retention, and keeps the rest', async () => {
  const config = testConfig(redis.url, { retention: { events: '1h', deadLetters: '1h' } });
  const keys = makeKeys(config);
  const now = Date.now();
  await client.zadd(keys.eventIndex, now - 3 * 3_600_000, 'old', now - 60_000, 'recent');
  await client.zadd(keys.suppressed, now - 3 * 3_600_000, 'old.ci', now, 'new.ci');
  const hk = startHousekeeping({ redis: client, keys, config }, createLogger('silent'));
  try {
    const deadline = Date.now() + 5000;
    while ((await client.zcard(keys.eventIndex)) !== 1 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    expect(await client.zrange(keys.eventIndex, 0, -1)).toEqual(['recent']);
    expect(await client.zrange(keys.suppressed, 0, -1)).toEqual(['new.ci']);
  } finally {
    hk.stop();
  }
});
