import { type Job, type Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { normalise } from '../../src/bitbucket/normalise.js';
import type { Config } from '../../src/config/types.js';
import { EventStore, type StoredEvent } from '../../src/queue/event-store.js';
import { deliveryJobOptions } from '../../src/queue/job-options.js';
import { type Keys, makeKeys } from '../../src/queue/keys.js';
import { TargetQueues } from '../../src/queue/queues.js';
import { cloudPush } from '../fixtures/payloads.js';
import { testConfig } from '../helpers/config.js';
import { useTestRedis } from '../helpers/redis.js';

/*
 * The ingress writes delivery jobs with its own Lua script instead of BullMQ's Queue.add (one atomic call per
 * event). These tests hold that script to what Queue.add writes on the pinned BullMQ version: a BullMQ upgrade
 * that changes the job format fails here rather than in production.
 */

const db = useTestRedis();

const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

function setup(): { config: Config; keys: Keys; store: EventStore; queue: Queue } {
  const config = testConfig(db.url, {
    targets: [{ id: 'ci', url: 'http://127.0.0.1:9/hook', retry: { attempts: 4 } }],
  });
  const keys = makeKeys(config);
  const client = new Redis(db.url);
  const queues = new TargetQueues(config, keys, client);
  const jobOptions = new Map(config.targets.map((t) => [t.id, deliveryJobOptions(config, t)]));
  const store = new EventStore(client, keys, config, queues, jobOptions);
  closers.push(async () => {
    await queues.close();
    client.disconnect();
  });
  return { config, keys, store, queue: queues.get('ci')! };
}

function event(id: string): StoredEvent {
  const payload = cloudPush();
  const body = Buffer.from(JSON.stringify(payload));
  return {
    id,
    sourceId: 'cloud',
    receivedAt: Date.now(),
    envelope: normalise({ platform: 'cloud', eventKey: 'repo:push', deliveryId: id, payload }),
    headers: { 'x-event-key': 'repo:push' },
    body,
    targets: ['ci'],
  };
}

/** What Queue.add would write for the same delivery, next to the script's job. */
async function addLikeBullMQ(config: Config, queue: Queue, eventId: string): Promise<void> {
  const opts = deliveryJobOptions(config, config.targets[0]!);
  await queue.add(
    'repo:push',
    { eventId: eventId, targetId: 'ci', idempotencyKey: `${eventId}.ci` },
    { ...opts, jobId: `${eventId}.ci` },
  );
}

/** BullMQ's keys of the queue (`queue.toKey`): the script must write where BullMQ reads. */
async function jobHash(queue: Queue, jobId: string): Promise<Record<string, string>> {
  return db.inspect.hgetall(queue.toKey(jobId));
}

async function streamEvents(queue: Queue, jobId: string): Promise<string[]> {
  const entries = (await db.inspect.xrange(queue.toKey('events'), '-', '+')) as [string, string[]][];
  return entries
    .map(([, fields]) => fields)
    .filter((f) => f[f.indexOf('jobId') + 1] === jobId)
    .map((f) => f[f.indexOf('event') + 1]!);
}

describe('the store script writes jobs as BullMQ does', () => {
  it('the same job hash, events and wait-list entry as Queue.add', async () => {
    const { config, store, queue } = setup();
    await addLikeBullMQ(config, queue, 'ref-1');
    expect(await store.store(event('mine-1'), [])).toEqual({ state: 'new', repeated: [] });

    const theirs = await jobHash(queue, 'ref-1.ci');
    const mine = await jobHash(queue, 'mine-1.ci');
    expect(Object.keys(mine).sort()).toEqual(Object.keys(theirs).sort());
    expect(mine.name).toBe(theirs.name);
    expect(mine.delay).toBe(theirs.delay);
    expect(mine.priority).toBe(theirs.priority);
    const { jobId: theirId, ...theirOpts } = JSON.parse(theirs.opts!);
    const { jobId: myId, ...myOpts } = JSON.parse(mine.opts!);
    expect([theirId, myId]).toEqual(['ref-1.ci', 'mine-1.ci']);
    expect(myOpts).toEqual(theirOpts);
    expect(JSON.parse(mine.data!)).toEqual({
      eventId: 'mine-1',
      targetId: 'ci',
      idempotencyKey: 'mine-1.ci',
    });

    expect(await db.inspect.lrange(queue.toKey('wait'), 0, -1)).toEqual(['mine-1.ci', 'ref-1.ci']);
    expect(await db.inspect.zrange(queue.toKey('marker'), 0, -1)).toEqual(['0']);
    expect(await streamEvents(queue, 'mine-1.ci')).toEqual(await streamEvents(queue, 'ref-1.ci'));
    expect(await db.inspect.get(queue.toKey('id'))).toBe('2');

    const counts = await queue.getJobCounts('waiting', 'paused');
    expect(counts).toEqual({ waiting: 2, paused: 0 });
  });

  it('puts the job on the paused list of a paused queue, with no worker marker, as Queue.add does', async () => {
    const { config, store, queue } = setup();
    await queue.pause();
    await addLikeBullMQ(config, queue, 'ref-2');
    await store.store(event('mine-2'), []);
    expect(await db.inspect.lrange(queue.toKey('paused'), 0, -1)).toEqual(['mine-2.ci', 'ref-2.ci']);
    expect(await db.inspect.llen(queue.toKey('wait'))).toBe(0);
    expect(await db.inspect.exists(queue.toKey('marker'))).toBe(0);
    await queue.resume();
    expect(await queue.getJobCounts('waiting', 'paused')).toEqual({ waiting: 2, paused: 0 });
  });

  it('a BullMQ worker takes the job with the options it was given, and retries it by them', async () => {
    const { keys, store, queue } = setup();
    await store.store(event('mine-3'), []);
    const seen: { id: string; attempts: number; made: number; ts: number }[] = [];
    const worker = new Worker(
      queue.name,
      async (job: Job) => {
        seen.push({ id: job.id!, attempts: job.opts.attempts!, made: job.attemptsMade, ts: job.timestamp });
        if (job.attemptsMade === 0) throw new Error('first attempt fails');
      },
      {
        connection: { url: db.url } as never,
        prefix: keys.queuePrefix('ci'),
        settings: { backoffStrategy: () => 10 },
      },
    );
    closers.push(() => worker.close());
    await new Promise<void>((resolve) => worker.on('completed', () => resolve()));
    expect(seen.map((s) => [s.id, s.attempts, s.made])).toEqual([
      ['mine-3.ci', 4, 0],
      ['mine-3.ci', 4, 1],
    ]);
    expect(seen[0]!.ts).toBeGreaterThan(Date.now() - 60_000);
  });
});

describe('the store script is one atomic step', () => {
  it('answers a held dedupe key with the holder and writes nothing', async () => {
    const { keys, store, queue } = setup();
    const key = keys.dedupeDelivery('cloud', 'delivery-1');
    const dedupe = [{ key, tag: '', ttlSeconds: 60, kind: 'request' as const }];
    expect(await store.store(event('first'), dedupe)).toEqual({ state: 'new', repeated: [] });
    expect(await store.store(event('second'), dedupe)).toEqual({ state: 'duplicate', id: 'first' });
    expect(await db.inspect.exists(keys.event('second'))).toBe(0);
    expect(await db.inspect.lrange(queue.toKey('wait'), 0, -1)).toEqual(['first.ci']);
    // A key held with another tag (another transition of the same ref) is no copy.
    const tagged = [{ key, tag: 'other', ttlSeconds: 60, kind: 'request' as const }];
    expect(await store.store(event('third'), tagged)).toEqual({ state: 'new', repeated: [] });
    expect(await db.inspect.ttl(key)).toBeGreaterThan(50);
  });
});
