import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { SharedRateLimit } from '../../src/delivery/shared-rate-limit.js';
import { useTestRedis } from '../helpers/redis.js';

const db = useTestRedis();
const clients: Redis[] = [];

afterAll(() => {
  for (const c of clients) c.disconnect();
});

function limiter(key: string, max: number, durationMs: number): SharedRateLimit {
  const c = new Redis(db.url);
  clients.push(c);
  return new SharedRateLimit(c, key, { max, duration: durationMs });
}

describe('a target rate limit shared by its shard queues', () => {
  it('lets max requests through per window across every holder, then says how long to wait', async () => {
    // Two holders (two shards, or two worker processes) of one target's window.
    const a = limiter('rl:ci', 3, 400);
    const b = limiter('rl:ci', 3, 400);
    const answers = [await a.acquire(), await b.acquire(), await a.acquire(), await b.acquire()];
    expect(answers.slice(0, 3)).toEqual([0, 0, 0]);
    expect(answers[3]).toBeGreaterThan(0);
    expect(answers[3]).toBeLessThanOrEqual(400);
    // Another target has a window of its own.
    expect(await limiter('rl:other', 3, 400).acquire()).toBe(0);
    await new Promise((r) => setTimeout(r, answers[3]! + 20));
    expect(await a.acquire()).toBe(0);
  });
});
