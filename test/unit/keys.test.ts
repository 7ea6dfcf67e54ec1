import { QueueKeys } from 'bullmq';
import calculateSlot from 'cluster-key-slot';
import { describe, expect, it } from 'vitest';
import { JOB_KEY_NAMES } from '../../src/queue/job-key-names.js';
import { type Keys, makeKeys, type RepoScope } from '../../src/queue/keys.js';

const SHARDS = 12;
const single = makeKeys({ redis: { prefix: 'hr', shards: 1 } as never });
const cluster = makeKeys({
  redis: { prefix: 'hr', cluster: [{ host: 'a', port: 1 }], shards: SHARDS } as never,
});

/** A UUIDv7-shaped event id whose last three hex digits name `shard`, as the ingress mints them on a cluster. */
function idInShard(shard: number): string {
  return `0191d2c4-5e6f-7abc-8def-0123456789${shard.toString(16).padStart(3, '0')}`;
}

/** Every key that one event's store, guard, ordering and coalescing touch: one script each, so one slot. */
function keysOfOneEvent(keys: Keys, eventId: string): string[] {
  const shard = keys.shardOfId(eventId);
  const scope: RepoScope = { sourceId: 'cloud', repo: 'acme/api', shard };
  const targets = ['ci', 'jenkins'];
  return [
    keys.event(eventId),
    keys.eventIndexOf(shard),
    keys.quarantinedOf(shard),
    keys.durabilityMark(shard),
    keys.dedupeDelivery('cloud', 'delivery-1', shard),
    keys.dedupeContent('content-digest', shard),
    keys.dedupeBody('cloud', 'body-digest', shard),
    ...targets.flatMap((targetId) => [
      ...JOB_KEY_NAMES.map((name) => keys.queueKey(targetId, name, shard)),
      keys.job(targetId, `${eventId}.${targetId}`, shard),
      keys.loopRate({ ...scope, targetId, ref: 'main', actor: 'actor-digest' }),
      keys.loopMerge({ ...scope, targetId, mark: 'main:abc123' }),
      keys.loopCommit({ ...scope, targetId, commit: 'abc123def456' }),
      keys.loopLatest({ ...scope, targetId, ref: 'main' }),
      keys.refDelivered({ ...scope, targetId, ref: 'main' }),
    ]),
    keys.refEdges({ ...scope, ref: 'main' }),
    keys.coalesceCursor(shard),
  ];
}

/** The keys about the whole relay rather than one event. */
function relayWideKeys(keys: Keys): string[] {
  return [
    keys.shardCount,
    keys.relayId,
    keys.suppressed,
    keys.deadLetters,
    keys.replayBatch('batch-1'),
    keys.targetStats('ci', 'm', 29_000_000),
    keys.circuit('ci'),
    keys.sharedRateLimit('ci'),
  ];
}

describe('keys on a single Redis', () => {
  it('are the prefix and a name, without hash tags', () => {
    const id = idInShard(7);
    for (const key of [...keysOfOneEvent(single, id), ...relayWideKeys(single)]) {
      expect(key.startsWith('hr:')).toBe(true);
      expect(key).not.toMatch(/[{}]/);
    }
    expect(single.event(id)).toBe(`hr:ev:${id}`);
    expect(single.eventIndex).toBe('hr:events');
    expect(single.dedupeDelivery('cloud', 'd-1')).toBe('hr:dd:cloud:d-1');
    expect(single.queueName('ci', 3)).toBe('deliver-ci');
    expect(single.queueKey('ci', 'wait')).toBe('hr:deliver-ci:wait');
    expect(single.job('ci', `${id}.ci`)).toBe(`hr:deliver-ci:${id}.ci`);
    expect(single.durabilityMark(0)).toBe('hr:events:durability-mark');
    expect(single.coalesceCursor(0)).toBe('hr:loop:coalesce:cursor');
    expect(single.sharedRateLimit('ci')).toBe('hr:loop:rate-limit:ci');
    expect(single.circuit('ci')).toBe('hr:circuit:ci');
    expect(single.adminSession('digest')).toBe('hr:admin:session:digest');
  });

  it('put every event in shard 0, whatever its id or repository', () => {
    expect(single.shards).toBe(1);
    expect(single.shardOfId(idInShard(7))).toBe(0);
    expect(single.shardOf('cloud', 'acme/api')).toBe(0);
    expect(single.event(idInShard(7))).toBe(single.event(idInShard(7)));
  });
});

describe('keys on a Redis Cluster', () => {
  it('tag an event’s keys with its shard and the relay-wide keys with the prefix', () => {
    for (const shard of [0, 5, SHARDS - 1]) {
      const id = idInShard(shard);
      for (const key of keysOfOneEvent(cluster, id)) expect(key.startsWith(`{hr:${shard}}:`)).toBe(true);
    }
    for (const key of relayWideKeys(cluster)) expect(key.startsWith('{hr}:')).toBe(true);
    expect(cluster.queueName('ci', 5)).toBe('deliver-ci-5');
    expect(cluster.queueKey('ci', 'wait', 5)).toBe('{hr:5}:deliver-ci-5:wait');
  });

  it('put every key of one event in one slot, and spread events over slots by shard', () => {
    const slots = new Set<number>();
    for (let shard = 0; shard < SHARDS; shard++) {
      const eventSlots = new Set(keysOfOneEvent(cluster, idInShard(shard)).map((key) => calculateSlot(key)));
      expect(eventSlots.size).toBe(1);
      slots.add([...eventSlots][0]!);
    }
    expect(slots.size).toBe(SHARDS);
    expect(new Set(relayWideKeys(cluster).map((key) => calculateSlot(key))).size).toBe(1);
  });

  it('read an event’s shard from its id’s last three hex digits, shard 0 for an id that names none', () => {
    expect(cluster.shardOfId(idInShard(0))).toBe(0);
    expect(cluster.shardOfId(idInShard(11))).toBe(11);
    expect(cluster.shardOfId(idInShard(12))).toBe(0);
    expect(cluster.shardOfId('not-an-id')).toBe(0);
    expect(cluster.event('not-an-id')).toBe('{hr:0}:ev:not-an-id');
  });

  it('give a repository a shard that does not move and does not depend on the source', () => {
    // Pinned: a change to the hash would move repositories' dedupe and coalescing keys between shards.
    const pinned: [string, number][] = [
      ['acme/api', 8],
      ['acme/web', 2],
      ['team/infra', 1],
      ['PROJ/repo', 3],
    ];
    for (const [repository, shard] of pinned) {
      expect(cluster.shardOf('cloud', repository)).toBe(shard);
      expect(cluster.shardOf('dc', repository)).toBe(shard);
    }
    expect(cluster.shardOf('cloud', null)).toBe(cluster.shardOf('cloud', ''));
    const spread = new Set(Array.from({ length: 48 }, (_, i) => cluster.shardOf('cloud', `acme/r${i}`)));
    expect(spread.size).toBeGreaterThan(8);
  });
});

describe('BullMQ keys', () => {
  it('are named as BullMQ names the keys of the queue it is given', () => {
    for (const [keys, shard] of [
      [single, 0],
      [cluster, 0],
      [cluster, 7],
    ] as const) {
      const bull = new QueueKeys(keys.queuePrefix('ci', shard));
      const queue = keys.queueName('ci', shard);
      for (const name of [...JOB_KEY_NAMES, 'delayed', 'completed', 'failed']) {
        expect(keys.queueKey('ci', name, shard)).toBe(bull.toKey(queue, name));
      }
      expect(keys.job('ci', 'event-1.ci', shard)).toBe(bull.toKey(queue, 'event-1.ci'));
    }
  });
});
