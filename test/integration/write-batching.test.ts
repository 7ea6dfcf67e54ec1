import type { Socket } from 'node:net';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { batchWrites } from '../../src/queue/write-batching.js';
import { useTestRedis } from '../helpers/redis.js';

const db = useTestRedis();
const clients: Redis[] = [];
afterEach(() => {
  for (const c of clients.splice(0)) c.disconnect();
});

async function client(): Promise<{ redis: Redis; socket: Socket; writes: () => number }> {
  const redis = new Redis(db.url);
  clients.push(redis);
  await redis.ping();
  const socket = (redis as unknown as { stream: Socket }).stream;
  // Counts the socket's own writes to the kernel (one per write, one per writev of what a cork held).
  let count = 0;
  const counted = socket as unknown as Record<'_write' | '_writev', (...args: unknown[]) => void>;
  for (const name of ['_write', '_writev'] as const) {
    const original = counted[name].bind(socket);
    counted[name] = (...args) => {
      count++;
      original(...args);
    };
  }
  return { redis, socket, writes: () => count };
}

/** Ten SETs, as the handlers of one poll pass send them; then what each key holds. */
async function tenSets(redis: Redis, batch: boolean): Promise<{ sets: string[]; values: (string | null)[] }> {
  const sets: Promise<string>[] = [];
  for (let i = 0; i < 10; i++) {
    if (batch) batchWrites(redis);
    sets.push(redis.set(`k${i}`, `v${i}${batch}`));
  }
  return {
    sets: await Promise.all(sets),
    values: await redis.mget(Array.from({ length: 10 }, (_, i) => `k${i}`)),
  };
}

describe('group commit of a connection (write-batching.ts)', () => {
  it('commands of one pass leave in one socket write, each with its own reply', async () => {
    const { redis, socket, writes } = await client();
    const before = writes();
    const done = tenSets(redis, true);
    expect(socket.writableCorked).toBe(1);
    const { sets, values } = await done;
    expect(socket.writableCorked).toBe(0);
    expect(sets).toEqual(Array(10).fill('OK'));
    expect(values).toEqual(Array.from({ length: 10 }, (_, i) => `v${i}true`));
    // The ten SETs in one write, the MGET after them in one of its own.
    expect(writes() - before).toBe(2);
  });

  it('without it, each command is a write of its own', async () => {
    const { redis, writes } = await client();
    const before = writes();
    await tenSets(redis, false);
    expect(writes() - before).toBe(11);
  });

  it('leaves a connection that is not up alone: its commands wait in ioredis as before', async () => {
    const redis = new Redis(db.url, { lazyConnect: true });
    clients.push(redis);
    batchWrites(redis);
    expect(await redis.set('lazy', '1')).toBe('OK');
    expect(await redis.get('lazy')).toBe('1');
  });
});
