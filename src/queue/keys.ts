import type { Config } from '../config/types.js';

/**
 * Every Redis key the relay writes outside BullMQ's own, in one place. Each target has its own BullMQ queue so
 * that concurrency, rate limits and the circuit breaker are per target.
 *
 * On Redis Cluster the keyspace is split into `redis.shards` shards, each under one hash tag (`{prefix:N}`):
 * an event's hash, its index entry, its dedupe keys and its delivery jobs (one BullMQ queue per target and
 * shard) share a slot, and the event id carries its shard (so a job, an ops request or a log line with the id
 * finds the rest), so the store script stays one atomic call, and shards spread over the primaries. An
 * event's shard follows its repository: a redelivery, a second hook's copy of the same change and every later
 * push to the same ref meet the same dedupe keys and the same coalescing state. The loop guard's per-ref
 * counters and coalescing state go with the repository's shard too. Small keys about the whole relay (circuit
 * breakers, rate limits, the suppressed list) share the `{prefix}` tag. Without a cluster there is
 * one shard and no tags: the keys are those of a single Redis.
 */
export interface Keys {
  prefix: string;
  /** How many shards (1 unless clustered). */
  shards: number;
  /** The shard of a new event, from its repository. */
  shardOf(sourceId: string, repository: string | null): number;
  /** Where `redis.shards` is recorded, so a relay started with another count refuses to run (shard-check.ts). */
  shardCount: string;
  /** The shard an event id was made for (see newEventId): its last three hex digits. */
  shardOfId(eventId: string): number;
  event(id: string): string;
  /** The event index of shard 0 (the only one without a cluster). */
  eventIndex: string;
  eventIndexOf(shard: number): string;
  dedupeDelivery(sourceId: string, deliveryId: string, shard?: number): string;
  dedupeContent(contentKey: string, shard?: number): string;
  /** A target's queue in a shard; on a cluster each shard's queue has its own name (metrics and logs name it). */
  queueName(targetId: string, shard?: number): string;
  queuePrefix(targetId: string, shard?: number): string;
  /**
   * A loop-guard or coalescing key. Keys about one repository take the shard of its events (pass the event's
   * shard) so an event's guard check is one script in one slot and the load spreads with the shards; keys
   * about the whole relay take the shared `{prefix}` tag.
   */
  loop(name: string, shard?: number): string;
  /** ZSET of suppressed deliveries (member `<eventId>.<targetId>`, score = time suppressed). */
  suppressed: string;
  /** ZSET of dead letters (member = the failed job's id, score = time dead-lettered): the lists read it. */
  deadLetters: string;
  /** A bulk replay's record (ids and when), read back for its progress and outcome. */
  replayBatch(batchId: string): string;
  /** A target's per-minute (`m`, epoch minute) or per-hour (`h`) attempt counts and latency buckets. */
  targetStats(targetId: string, unit: 'm' | 'h', bucket: number): string;
  /** Hash of the shared circuit-breaker state of a target (consecutive failures, open until, probe). */
  circuit(targetId: string): string;
}

/** FNV-1a: a fixed, fast spread of short strings; only its stability matters (shards must not move). */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export function makeKeys(config: Pick<Config, 'redis'>): Keys {
  const p = config.redis.prefix;
  const clustered = config.redis.cluster !== undefined;
  const shards = clustered ? config.redis.shards : 1;
  const shard = (s = 0) => (clustered ? `{${p}:${s}}` : p);
  const global = clustered ? `{${p}}` : p;
  // An id's last three hex digits, when they name a shard; anything else (an id from before sharding, a
  // mistyped id given to ops) reads from shard 0 and is simply not found there.
  const shardOfId = (id: string) => {
    const n = shards === 1 ? 0 : Number.parseInt(id.slice(-3), 16);
    return n >= 0 && n < shards ? n : 0;
  };
  return {
    prefix: p,
    shards,
    // By repository alone, like the loop guard's keys: one repository reached through two sources still
    // shares its per-ref counters and coalescing state.
    shardOf: (_sourceId, repository) => (shards === 1 ? 0 : fnv1a(repository ?? '') % shards),
    shardOfId,
    shardCount: `${global}:shards`,
    event: (id) => `${shard(shardOfId(id))}:ev:${id}`,
    eventIndex: `${shard(0)}:events`,
    eventIndexOf: (s) => `${shard(s)}:events`,
    dedupeDelivery: (sourceId, deliveryId, s) => `${shard(s)}:dd:${sourceId}:${deliveryId}`,
    dedupeContent: (contentKey, s) => `${shard(s)}:dc:${contentKey}`,
    queueName: (targetId, s = 0) => (clustered ? `deliver-${targetId}-${s}` : `deliver-${targetId}`),
    queuePrefix: (_targetId, s) => shard(s),
    loop: (name, s) => `${s === undefined ? global : shard(s)}:loop:${name}`,
    suppressed: `${global}:suppressed`,
    circuit: (targetId) => `${global}:circuit:${targetId}`,
    deadLetters: `${global}:dead-letters`,
    replayBatch: (batchId) => `${global}:replay:${batchId}`,
    targetStats: (targetId, unit, bucket) => `${global}:stats:${targetId}:${unit}:${bucket}`,
  };
}
