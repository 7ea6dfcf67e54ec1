import picomatch from 'picomatch';
import type { Envelope, Person } from '../bitbucket/envelope.js';
import type { Config } from '../config/types.js';
import type { EventStore, StoredEvent } from '../queue/event-store.js';
import type { JobGuard, StaticSuppressReason } from '../queue/job-types.js';
import type { Keys } from '../queue/keys.js';
import type { RedisClient } from '../queue/redis-connection.js';
import { luaScript } from './scripts.js';

export type SuppressReason = StaticSuppressReason | 'ref-rate' | 'merge-push-collapsed';
/** A merged PR whose merge-commit push has not been seen yet: wait a little for it (see LoopGuard.check). */
export type GuardVerdict = SuppressReason | 'wait-for-push' | null;

type LoopConfig = Config['loop'];

const MERGED_EVENTS = new Set(['pullrequest:fulfilled', 'pr:merged']);
// Cloud pull request payloads carry 12-character hashes, pushes 40: both sides key on the common prefix.
export const MERGE_HASH_PREFIX = 12;

/**
 * Identity patterns: globs (`*` for any run of characters, e.g. `*@ci.acme.test`, `ci-bot*`), compared without
 * case against a person's account id, uuid, name and email. A pattern is also compared literally, so a Cloud
 * uuid with its braces (`{7d3a…}`) matches as written instead of being read as a brace expansion.
 */
export function actorMatcher(patterns: readonly string[]): (p: Person | undefined) => boolean {
  if (patterns.length === 0) return () => false;
  const literal = new Set(patterns.map((x) => x.toLowerCase()));
  const glob = picomatch([...patterns], { nocase: true, dot: true, bash: true });
  const one = (value: string | undefined) =>
    value !== undefined && value !== '' && (literal.has(value.toLowerCase()) || glob(value));
  return (p) => !!p && (one(p.accountId) || one(p.uuid) || one(p.name) || one(p.email));
}

export function hasSkipMarker(message: string | undefined, markers: readonly string[]): boolean {
  if (!message) return false;
  const m = message.toLowerCase();
  return markers.some((marker) => m.includes(marker.toLowerCase()));
}

/**
 * The rules that depend on the event alone. Skip markers: in the head commit message. Ignored actors: on a
 * push, the actor matches, or every new commit the payload lists was authored by a matching identity (a bot
 * pushing through a human's credentials still authors its own commits).
 */
export class StaticLoopRules {
  private readonly ignored: (p: Person | undefined) => boolean;

  constructor(private readonly loop: LoopConfig) {
    this.ignored = actorMatcher(loop.ignoreActors);
  }

  check(env: Envelope): StaticSuppressReason | null {
    if (hasSkipMarker(env.headCommit?.message, this.loop.skipMarkers)) return 'skip-marker';
    if (env.refs.length > 0 && this.loop.ignoreActors.length > 0) {
      if (this.ignored(env.actor)) return 'ignored-actor';
      const commits = env.commits.length > 0 ? env.commits : env.headCommit ? [env.headCommit] : [];
      if (commits.length > 0 && commits.every((c) => this.ignored(c.author))) return 'ignored-actor';
    }
    return null;
  }
}

// Both Redis rules in one round trip, in the order they were always checked (the rate of each ref, then the
// merge claims; the first hit ends the check). `guard(first)`: the ref-rate ZSETs are KEYS[first …] (ARGV[5] of
// them), then the merge-claim keys. Returns 0 = pass, 1 = ref-rate, 2 = merge-push-collapsed, 3 = a merge whose
// push is not seen yet.
// Rate: sliding window per ref; members are event ids, so a crashed worker's second look at the same event
// (same member) is not counted twice. Suppressed events are not added: the breaker closes once old entries age
// out. Merge marks: a push of a merge commit records itself (ARGV[7] = 'push') and is always delivered — it is
// what builds the destination branch; a merged PR (ARGV[7] = 'merge') is collapsed into that push once the push
// has been seen, and told to wait (3) while it has not.
const GUARD = `
local function guard(first)
  local now = tonumber(ARGV[1])
  local window = tonumber(ARGV[2])
  local count = tonumber(ARGV[3])
  local id = ARGV[4]
  local lastRate = first + tonumber(ARGV[5]) - 1
  for i = first, lastRate do
    local k = KEYS[i]
    redis.call('ZREMRANGEBYSCORE', k, '-inf', now - window)
    if not redis.call('ZSCORE', k, id) then
      if redis.call('ZCARD', k) >= count then return 1 end
      redis.call('ZADD', k, now, id)
      redis.call('PEXPIRE', k, window)
    end
  end
  local waiting = false
  for i = lastRate + 1, #KEYS do
    if ARGV[7] == 'push' then
      redis.call('SET', KEYS[i], id, 'EX', ARGV[6], 'NX')
    elseif redis.call('EXISTS', KEYS[i]) == 1 then
      return 2
    else
      waiting = true
    end
  end
  if waiting then return 3 end
  return 0
end
`;

const CHECK = `${GUARD}
return guard(1)`;

// The event's read and the guard in one call, for a delivery whose guard keys were worked out when it was
// accepted (JobGuard): KEYS[1] is the event hash, the guard's keys follow. An expired event runs no guard.
// Returns {-1}, or {verdict, HGETALL of the event}.
const READ_AND_CHECK = `${GUARD}
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end
return {guard(2), redis.call('HGETALL', KEYS[1])}`;

/**
 * Keys that identify "this change was merged into this branch": a merge's destination branch and merge commit;
 * a push's updated branches and their new heads (a new branch is never a merge's push). The branch is part of
 * the key so that pushing an already built commit to another branch is not mistaken for the merge's push.
 */
export function mergeMarks(env: Envelope): string[] {
  const mark = (branch: string, hash: string) =>
    `${branch}:${hash.toLowerCase().slice(0, MERGE_HASH_PREFIX)}`;
  if (MERGED_EVENTS.has(env.eventKey)) {
    const pr = env.pullRequest;
    return pr?.mergeCommit && pr.mergeCommit.length >= 7 && pr.destinationBranch
      ? [mark(pr.destinationBranch, pr.mergeCommit)]
      : [];
  }
  return env.refs
    .filter(
      (r) => r.kind === 'branch' && !r.created && typeof r.newHash === 'string' && r.newHash.length >= 7,
    )
    .map((r) => mark(r.name, r.newHash!));
}

/** The guard's inputs of an event (see JobGuard), for its delivery jobs. */
export function jobGuard(rules: StaticLoopRules, env: Envelope): JobGuard {
  const fixed = rules.check(env);
  return {
    p: env.repository ?? '-',
    r: env.refs.map((ref) => ref.name),
    m: mergeMarks(env),
    ...(MERGED_EVENTS.has(env.eventKey) ? { merge: true as const } : {}),
    ...(fixed ? { s: fixed } : {}),
  };
}

const VERDICTS: Record<number, GuardVerdict> = {
  0: null,
  1: 'ref-rate',
  2: 'merge-push-collapsed',
  3: 'wait-for-push',
};

/**
 * The loop guard, checked before a delivery is sent: the static rules, then the per-ref rate breaker (pushes
 * only, per repository+ref+target, in Redis so all workers share it), then the merge/push collapse.
 */
export class LoopGuard {
  readonly rules: StaticLoopRules;
  private readonly run: ReturnType<typeof luaScript>;
  private readonly runRead: ReturnType<typeof luaScript>;

  constructor(
    redis: RedisClient,
    private readonly keys: Keys,
    private readonly loop: LoopConfig,
  ) {
    this.rules = new StaticLoopRules(loop);
    this.run = luaScript(redis, 'hrLoopCheck', CHECK);
    this.runRead = luaScript(redis, 'hrReadLoopCheck', READ_AND_CHECK, 'buffers');
  }

  async check(env: Envelope, eventId: string, targetId: string): Promise<GuardVerdict> {
    const g = jobGuard(this.rules, env);
    if (g.s) return g.s;
    const { keys, args } = this.plan(g, eventId, targetId);
    if (keys.length === 0) return null;
    return VERDICTS[(await this.run(keys, args)) as number] ?? null;
  }

  /**
   * Reads the event and, unless its static verdict already suppresses it, runs the Redis rules in the same call:
   * one round trip where `store.read` then `check` take two. `event` is null when it has expired (no rule ran).
   */
  async readAndCheck(
    store: EventStore,
    g: JobGuard,
    eventId: string,
    targetId: string,
  ): Promise<{ event: StoredEvent | null; verdict: GuardVerdict }> {
    const { keys, args } = g.s
      ? { keys: [], args: this.args(g, eventId, 0) }
      : this.plan(g, eventId, targetId);
    const reply = (await this.runRead([this.keys.event(eventId), ...keys], args)) as
      | [-1]
      | [number, Buffer[]];
    if (reply[0] === -1) return { event: null, verdict: null };
    const flat = reply[1]!;
    const fields: Record<string, Buffer> = {};
    for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i]!.toString('utf8')] = flat[i + 1]!;
    return { event: store.decode(eventId, fields), verdict: g.s ?? VERDICTS[reply[0]] ?? null };
  }

  /** The Redis rules' keys (the event's shard holds every one: one slot on a cluster) and arguments. */
  private plan(
    g: JobGuard,
    eventId: string,
    targetId: string,
  ): { keys: string[]; args: (string | number)[] } {
    const shard = this.keys.shardOfId(eventId);
    const keys = g.r.map((ref) => this.keys.loop(`rate:${targetId}:${g.p}:${ref}`, shard));
    const nRate = keys.length;
    if (this.loop.collapseMergePush) {
      for (const mark of g.m) keys.push(this.keys.loop(`merge:${targetId}:${g.p}:${mark}`, shard));
    }
    return { keys, args: this.args(g, eventId, nRate) };
  }

  private args(g: JobGuard, eventId: string, nRate: number): (string | number)[] {
    const { count, windowSeconds } = this.loop.maxTriggersPerRef;
    return [
      Date.now(),
      windowSeconds * 1000,
      count,
      eventId,
      nRate,
      this.loop.collapseWindowSeconds,
      g.merge ? 'merge' : 'push',
    ];
  }
}
