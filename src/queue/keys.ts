import type { Config } from '../config/types.js';

/**
 * Every Redis key name the relay uses, in one place: its own keys, and those of BullMQ's keys that it writes or
 * reads itself (BullMQ names the rest). Each target has its own BullMQ queue so that concurrency, rate limits
 * and the circuit breaker are per target.
 *
 * On Redis Cluster the keyspace is split into `redis.shards` shards, each under one hash tag (`{prefix:N}`):
 * an event's hash, its index entry, its dedupe keys and its delivery jobs (one BullMQ queue per target and
 * shard) share a slot, and the event id carries its shard (so a job, an ops request or a log line with the id
 * finds the rest), so every script stays one atomic call in one slot, and shards spread over the primaries.
 *
 * An event has up to two shards. The ingress answers before it parses, so it appends a received event to the
 * shard of a repository read off the raw bytes (`inboxShardOf`, src/ingress/repository-hint.ts; the body's
 * hash when none is found): the event hash, its index entry, its delivery-id and body-hash dedupe keys and
 * its inbox entry. The ingress's durability follows that shard's primary. The fan-out parses the event and
 * routes it in its repository's shard (`shardOf`): a second hook's copy of the same change and every later
 * push to the same ref meet the same content dedupe keys and the same coalescing state there. The hint is
 * right for Bitbucket's payloads; when it is not (no repository, an odd serialisation), the fan-out moves the
 * event: it writes the routed record (body, headers, envelope, jobs) under the same id with the repository's
 * shard in its last digits, then replaces the received record by a pointer (`routedAs`), keeping its index
 * entry, so ops find the event by the id the 202 gave and each event has one record. The jobs, the worker's
 * guard script and coalescing only ever see the routed id; the Idempotency-Key stays the 202's id.
 *
 * The loop guard's counters and coalescing state go with the repository's shard too (and are kept per
 * source). Small keys about the whole relay (circuit breakers, rate limits, the suppressed list) share the
 * `{prefix}` tag. Without a cluster there is
 * one shard and no tags: the keys are those of a single Redis.
 */
export interface Keys {
  prefix: string;
  /** How many shards (1 unless clustered). */
  shards: number;
  /** The shard of a routed event, from its repository (the shard of its jobs and its loop-guard keys). */
  shardOf(sourceId: string, repository: string | null): number;
  /**
   * The shard of a received event: its repository's, from a hint read off the raw bytes (the ingress does not
   * parse), else from its body's SHA-256 (base64url). Either is a function of the bytes, so a redelivery and
   * a replayed body meet their delivery-id and body-hash dedupe keys in the same shard.
   */
  inboxShardOf(sourceId: string, repositoryHint: string | null, bodyHash: string): number;
  /**
   * STREAM of a shard's received events, one entry (`id` = event id) per event, read by the fan-out's
   * consumer group and deleted once the event is routed. In the event hash's slot, so the ingress's append
   * and the fan-out's decision each stay one script.
   */
  inbox(shard: number): string;
  /**
   * On a cluster, where a received event went when the fan-out routed it in another shard (its repository's):
   * the routed record's id, kept as long as the event. In the received event's slot.
   */
  routedAs(receivedId: string): string;
  /** Where `redis.shards` is recorded, so a relay started with another count refuses to run (shard-check.ts). */
  shardCount: string;
  /** The shard an event id was made for (see newEventId): its last three hex digits. */
  shardOfId(eventId: string): number;
  /** The loop-guard scope of an event's repository (`-` for an event without one), in the event's shard. */
  repoScope(sourceId: string, repository: string | null, eventId: string): RepoScope;
  event(id: string): string;
  /** The event index of shard 0 (the only one without a cluster). */
  eventIndex: string;
  eventIndexOf(shard: number): string;
  dedupeDelivery(sourceId: string, deliveryId: string, shard?: number): string;
  dedupeContent(contentKey: string, shard?: number): string;
  /** The replay guard: a source's body by its SHA-256 (base64url). */
  dedupeBody(sourceId: string, bodyHash: string, shard?: number): string;
  /** A target's queue in a shard; on a cluster each shard's queue has its own name (metrics and logs name it). */
  queueName(targetId: string, shard?: number): string;
  /** The `prefix` option of a target's BullMQ queue in a shard: the shard's tag, so the queue is in its slot. */
  queuePrefix(targetId: string, shard?: number): string;
  /**
   * One of BullMQ's keys of a target's queue in a shard (`wait`, `events`, `marker`, …), as BullMQ names it
   * (`<queue prefix>:<queue name>:<name>`). The store script writes jobs beside BullMQ, so it needs them.
   */
  queueKey(targetId: string, name: string, shard?: number): string;
  /** The hash of a BullMQ job of a target's queue in a shard (a delivery job: the event's shard). */
  job(targetId: string, jobId: string, shard?: number): string;
  /**
   * Where the durability wait's marker of a shard is written: beside the shard's event index, so in the slot
   * the event's write went to (see durable-lane.ts).
   */
  durabilityMark(shard: number): string;
  /**
   * ZSET of a shard's quarantined events (member = event id, score = received at): written by the fan-out's
   * route script with the routed event, so in its slot.
   */
  quarantinedOf(shard: number): string;
  /**
   * ZSET: one actor's pushes to one ref for one target in the rate window. This and the keys below are about
   * one repository: in its events' shard, and per source (one source's events never count against another's;
   * a second hook's copy of the same change is joined by its source's content dedupe). `actor` is a digest of
   * the pusher's identity.
   */
  loopRate(p: RepoScope & { targetId: string; ref: string; actor: string }): string;
  /** A merge mark: the push of a merge commit to a branch, with its verdict (loop-guard.ts). */
  loopMerge(p: RepoScope & { targetId: string; mark: string }): string;
  /** A commit (12-character prefix) delivered to a target: who pushed it and the chain's turn count. */
  loopCommit(p: RepoScope & { targetId: string; commit: string }): string;
  /** Coalescing: the newest push (by the ref's transitions) of a branch for a target. */
  loopLatest(p: RepoScope & { targetId: string; ref: string }): string;
  /** Coalescing: how far a shard's event index has been caught up (its score), shared by every worker. */
  coalesceCursor(shard: number): string;
  /** HASH old head → new head of a ref's recent pushes: the order of pushes by the ref graph (ref-order.ts). */
  refEdges(p: RepoScope & { ref: string }): string;
  /** The newest head of a ref delivered to a target (`<head> <eventId>`), for superseded pushes. */
  refDelivered(p: RepoScope & { targetId: string; ref: string }): string;
  /** This deployment's generated relay id (when `relay.id` is not configured). */
  relayId: string;
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
  /** A target's rate-limit window shared by its queues in every shard (shared-rate-limit.ts). */
  sharedRateLimit(targetId: string): string;
  /** An admin console session, by the digest of its cookie's id (sessions.ts). */
  adminSession(idDigest: string): string;
}

/** Where a repository's loop-guard keys live: its source, its name, and the shard of its events. */
export interface RepoScope {
  sourceId: string;
  repo: string;
  shard: number;
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
  const queueName = (targetId: string, s = 0) =>
    clustered ? `deliver-${targetId}-${s}` : `deliver-${targetId}`;
  const queueKey = (targetId: string, name: string, s?: number) =>
    `${shard(s)}:${queueName(targetId, s)}:${name}`;
  return {
    prefix: p,
    shards,
    // By repository alone: every event of a repository, whatever its source, lands in one shard (the loop
    // guard's and coalescing's keys are per source within it).
    shardOf: (_sourceId, repository) => (shards === 1 ? 0 : fnv1a(repository ?? '') % shards),
    inboxShardOf: (_sourceId, hint, bodyHash) => (shards === 1 ? 0 : fnv1a(hint ?? `#${bodyHash}`) % shards),
    inbox: (s) => `${shard(s)}:inbox`,
    routedAs: (id) => `${shard(shardOfId(id))}:routed-as:${id}`,
    shardOfId,
    repoScope: (sourceId, repository, eventId) => ({
      sourceId,
      repo: repository ?? '-',
      shard: shardOfId(eventId),
    }),
    shardCount: `${global}:shards`,
    event: (id) => `${shard(shardOfId(id))}:ev:${id}`,
    eventIndex: `${shard(0)}:events`,
    eventIndexOf: (s) => `${shard(s)}:events`,
    dedupeDelivery: (sourceId, deliveryId, s) => `${shard(s)}:dd:${sourceId}:${deliveryId}`,
    dedupeContent: (contentKey, s) => `${shard(s)}:dc:${contentKey}`,
    dedupeBody: (sourceId, bodyHash, s) => `${shard(s)}:db:${sourceId}:${bodyHash}`,
    queueName,
    queuePrefix: (_targetId, s) => shard(s),
    queueKey,
    job: (targetId, jobId, s) => queueKey(targetId, jobId, s),
    durabilityMark: (s) => `${shard(s)}:events:durability-mark`,
    quarantinedOf: (s) => `${shard(s)}:quarantined`,
    loopRate: (x) => `${shard(x.shard)}:loop:rate:${x.targetId}:${x.sourceId}:${x.repo}:${x.ref}:${x.actor}`,
    loopMerge: (x) => `${shard(x.shard)}:loop:merge:${x.targetId}:${x.sourceId}:${x.repo}:${x.mark}`,
    loopCommit: (x) => `${shard(x.shard)}:loop:commit:${x.targetId}:${x.sourceId}:${x.repo}:${x.commit}`,
    loopLatest: (x) => `${shard(x.shard)}:loop:latest:${x.targetId}:${x.sourceId}:${x.repo}:${x.ref}`,
    coalesceCursor: (s) => `${shard(s)}:loop:coalesce:cursor`,
    refEdges: (x) => `${shard(x.shard)}:loop:edges:${x.sourceId}:${x.repo}:${x.ref}`,
    refDelivered: (x) => `${shard(x.shard)}:loop:head:${x.targetId}:${x.sourceId}:${x.repo}:${x.ref}`,
    relayId: `${global}:relay-id`,
    suppressed: `${global}:suppressed`,
    circuit: (targetId) => `${global}:circuit:${targetId}`,
    deadLetters: `${global}:dead-letters`,
    replayBatch: (batchId) => `${global}:replay:${batchId}`,
    targetStats: (targetId, unit, bucket) => `${global}:stats:${targetId}:${unit}:${bucket}`,
    sharedRateLimit: (targetId) => `${global}:loop:rate-limit:${targetId}`,
    // Untagged even on a cluster: a session is one key, read and written alone.
    adminSession: (idDigest) => `${p}:admin:session:${idDigest}`,
  };
}
