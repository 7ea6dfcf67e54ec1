import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { makeKeys } from '../../src/queue/keys.js';
import { AttemptCounter, readAttemptSummaries } from '../../src/queue/target-stats.js';
import { testConfig } from '../helpers/config.js';
import { useTestRedis } from '../helpers/redis.js';

const db = useTestRedis();
const clients: Redis[] = [];
afterEach(() => {
  for (const c of clients.splice(0)) c.disconnect();
});

function setup() {
  const keys = makeKeys(testConfig(db.url));
  const redis = new Redis(db.url);
  clients.push(redis);
  // A flush interval far beyond the test: every write below is one the test asked for.
  return { keys, redis, counter: new AttemptCounter(redis, keys, 3_600_000) };
}

describe('AttemptCounter (the targets page aggregates, written in the background)', () => {
  it('keeps counts in memory until a flush, then adds them to the minute and hour hashes', async () => {
    const { keys, redis, counter } = setup();
    const at = Date.now();
    counter.count('ci', { at, ms: 30, ok: true });
    counter.count('ci', { at, ms: 30, ok: true });
    counter.count('ci', { at, ms: 4000, ok: false });
    counter.count('other', { at, ok: true });
    expect((await readAttemptSummaries(redis, keys, 'ci')).hour.attempts).toBe(0);

    await counter.flush();
    const ci = await readAttemptSummaries(redis, keys, 'ci');
    expect(ci.hour).toMatchObject({ attempts: 3, p50Ms: 50 });
    expect(ci.hour.successRate).toBeCloseTo(2 / 3);
    expect(ci.day.attempts).toBe(3);
    expect((await readAttemptSummaries(redis, keys, 'other')).hour.attempts).toBe(1);
    const minuteKey = keys.targetStats('ci', 'm', Math.floor(at / 60_000));
    expect(await redis.hgetall(minuteKey)).toEqual({ ok: '2', fail: '1', b1: '2', b7: '1' });
    expect(await redis.pttl(minuteKey)).toBeGreaterThan(60 * 60_000);

    // A second flush adds, it does not overwrite.
    counter.count('ci', { at, ms: 30, ok: true });
    await counter.close();
    expect((await readAttemptSummaries(redis, keys, 'ci')).hour.attempts).toBe(4);
  });

  it('a failed write keeps its counts for the next flush', async () => {
    const { keys, redis, counter } = setup();
    const at = Date.now();
    counter.count('retry-me', { at, ms: 10, ok: true });
    const broken = new Redis(db.url, { lazyConnect: true, enableOfflineQueue: false });
    clients.push(broken);
    // The same counter state, written through a connection that refuses every command.
    Object.assign(counter, { redis: broken });
    await counter.flush();
    Object.assign(counter, { redis });
    expect((await readAttemptSummaries(redis, keys, 'retry-me')).hour.attempts).toBe(0);
    await counter.close();
    expect((await readAttemptSummaries(redis, keys, 'retry-me')).hour.attempts).toBe(1);
  });
});
