import { expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { startHousekeeping } from '../../src/queue/housekeeping.js';
import { makeKeys } from '../../src/queue/keys.js';
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
