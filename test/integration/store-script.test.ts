import { type Job, type Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { normalise } from '../../src/bitbucket/normalise.js';
import type { Config } from '../../src/config/types.js';
import type { ContentDedupeKey } from '../../src/fanout/content-dedupe.js';
import { type RouteOutcome, RouteWriter } from '../../src/fanout/route-writer.js';
import { EventStore } from '../../src/queue/event-store.js';
import { deliveryJobOptions } from '../../src/queue/job-options.js';
import { type Keys, makeKeys } from '../../src/queue/keys.js';
import { TargetQueues } from '../../src/queue/queues.js';
import { cloudPush } from '../fixtures/payloads.js';
import { testConfig } from '../helpers/config.js';
import { useTestRedis } from '../helpers/redis.js';

/*
 * The fan-out writes delivery jobs with its own Lua script instead of BullMQ's Queue.add (one atomic call per
 * event, src/lua/route-event.lua). These tests hold that script to what Queue.add writes on the pinned BullMQ
 * version: a BullMQ upgrade that changes the job format fails here rather than in production.
 */

const db = useTestRedis();

const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

/** A received event (appended as the ingress does), then routed to `ci` as the fan-out does. */
type Store = { store(id: string, content?: ContentDedupeKey[]): Promise<RouteOutcome> };

function setup(): { config: Config; keys: Keys; store: Store; queue: Queue } {
  const config = testConfig(db.url, {
    targets: [{ id: 'ci', url: 'http://127.0.0.1:9/hook', retry: { attempts: 4 } }],
  });
  const keys = makeKeys(config);
  const client = new Redis(db.url);
  const queues = new TargetQueues(config, keys, client);
  const jobOptions = new Map(config.targets.map((t) => [t.id, deliveryJobOptions(config, t)]));
  const events = new EventStore(client, keys, config, queues, jobOptions);
  const writer = new RouteWriter(client, keys, config, events);
  closers.push(async () => {
    await queues.close();
    client.disconnect();
  });
  const store: Store = {
    async store(id, content = []) {
      const payload = cloudPush();
      const body = Buffer.from(JSON.stringify(payload));
      const receivedAt = Date.now();
      const head = { platform: 'cloud' as const, eventKey: 'repo:push', deliveryId: id };
      await events.append({ ...head, id, sourceId: 'cloud', bodyHash: id, receivedAt, headers: {}, body });
      const fields = await client.hgetallBuffer(keys.event(id));
      const envelope = normalise({ ...head, payload });
      return writer.write(
        { id, entry: '', fields },
        { sourceId: 'cloud', receivedAt, envelope },
        {
          envelope,
          targets: ['ci'],
          guard: { repository: 'acme/widgets', refs: [], mergeMarks: [], source: 'cloud', receivedAt },
          unknownKey: false,
          messageMissing: false,
        },
        0,
        content,
      );
    },
  };
  return { config, keys, store, queue: queues.get('ci')! };
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
    expect(await store.store('mine-1')).toEqual({ state: 'routed', routedId: 'mine-1', repeated: [] });

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
    const { loopGuard, ...data } = JSON.parse(mine.data!);
    expect(data).toEqual({ eventId: 'mine-1', targetId: 'ci', idempotencyKey: 'mine-1.ci' });
    expect(loopGuard).toMatchObject({
      repository: 'acme/widgets',
      refs: [],
      mergeMarks: [],
      source: 'cloud',
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
    await store.store('mine-2');
    expect(await db.inspect.lrange(queue.toKey('paused'), 0, -1)).toEqual(['mine-2.ci', 'ref-2.ci']);
    expect(await db.inspect.llen(queue.toKey('wait'))).toBe(0);
    expect(await db.inspect.exists(queue.toKey('marker'))).toBe(0);
    await queue.resume();
    expect(await queue.getJobCounts('waiting', 'paused')).toEqual({ waiting: 2, paused: 0 });
  });

  it('a BullMQ worker takes the job with the options it was given, and retries it by them', async () => {
    const { keys, store, queue } = setup();
    await store.store('mine-3');
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

describe('the route script is one atomic, idempotent step', () => {
  it('records a copy of a held content key as a duplicate of its holder, with no job', async () => {
    const { keys, store, queue } = setup();
    const key = keys.dedupeContent('change-1');
    const content = [{ key, tag: '', ttlSeconds: 60 }];
    expect(await store.store('first', content)).toMatchObject({ state: 'routed' });
    expect(await store.store('second', content)).toEqual({ state: 'duplicate', duplicateOf: 'first' });
    expect(await db.inspect.hmget(keys.event('second'), 'state', 'duplicateOf')).toEqual([
      'duplicate',
      'first',
    ]);
    expect(await db.inspect.lrange(queue.toKey('wait'), 0, -1)).toEqual(['first.ci']);
    // A key held with another tag (another transition of the same ref) is no copy.
    const tagged = [{ key, tag: 'other', ttlSeconds: 60 }];
    expect(await store.store('third', tagged)).toMatchObject({ state: 'routed' });
    expect(await db.inspect.ttl(key)).toBeGreaterThan(50);
  });

  it('writes nothing twice when an event is decided again (a crash between read and acknowledge)', async () => {
    const { store, queue } = setup();
    expect(await store.store('once')).toMatchObject({ state: 'routed' });
    expect(await store.store('once')).toEqual({ state: 'decided', previous: 'routed' });
    expect(await db.inspect.lrange(queue.toKey('wait'), 0, -1)).toEqual(['once.ci']);
    expect(await db.inspect.get(queue.toKey('id'))).toBe('1');
  });
});
