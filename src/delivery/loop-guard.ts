import picomatch from 'picomatch';
import type { Envelope, Person } from '../bitbucket/envelope.js';
import type { Config } from '../config/types.js';
import type { Keys } from '../queue/keys.js';
import type { RedisClient } from '../queue/redis-connection.js';
import { luaScript } from './scripts.js';

export type SuppressReason = 'skip-marker' | 'ignored-actor' | 'ref-rate' | 'merge-push-collapsed';

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

  check(env: Envelope): SuppressReason | null {
    if (hasSkipMarker(env.headCommit?.message, this.loop.skipMarkers)) return 'skip-marker';
    if (env.refs.length > 0 && this.loop.ignoreActors.length > 0) {
      if (this.ignored(env.actor)) return 'ignored-actor';
      const commits = env.commits.length > 0 ? env.commits : env.headCommit ? [env.headCommit] : [];
      if (commits.length > 0 && commits.every((c) => this.ignored(c.author))) return 'ignored-actor';
    }
    return null;
  }
}

// Sliding window per ref: members are event ids, so a crashed worker's second look at the same event (same
// member) is not counted twice. Suppressed events are not added: the breaker closes once old entries age out.
const RATE = `
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
if redis.call('ZSCORE', KEYS[1], ARGV[4]) then return 0 end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 1 end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 0`;

// The first of a merge and its push to claim the merge commit for a target wins; the holder may look again.
const CLAIM = `
local v = redis.call('GET', KEYS[1])
if v then return v end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return ARGV[1]`;

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

/**
 * The loop guard, checked before a delivery is sent: the static rules, then the per-ref rate breaker (pushes
 * only, per repository+ref+target, in Redis so all workers share it), then the merge/push collapse.
 */
export class LoopGuard {
  readonly rules: StaticLoopRules;
  private readonly rate: ReturnType<typeof luaScript>;
  private readonly claim: ReturnType<typeof luaScript>;

  constructor(
    redis: RedisClient,
    private readonly keys: Keys,
    private readonly loop: LoopConfig,
  ) {
    this.rules = new StaticLoopRules(loop);
    this.rate = luaScript(redis, 'hrLoopRate', RATE);
    this.claim = luaScript(redis, 'hrLoopClaim', CLAIM);
  }

  async check(env: Envelope, eventId: string, targetId: string): Promise<SuppressReason | null> {
    const fixed = this.rules.check(env);
    if (fixed) return fixed;
    const repo = env.repository ?? '-';
    const { count, windowSeconds } = this.loop.maxTriggersPerRef;
    for (const ref of env.refs) {
      const key = this.keys.loop(`rate:${targetId}:${repo}:${ref.name}`);
      const over = (await this.rate([key], [Date.now(), windowSeconds * 1000, count, eventId])) as number;
      if (over === 1) return 'ref-rate';
    }
    if (this.loop.collapseMergePush) {
      for (const mark of mergeMarks(env)) {
        const key = this.keys.loop(`merge:${targetId}:${repo}:${mark}`);
        const holder = (await this.claim([key], [eventId, this.loop.collapseWindowSeconds])) as string;
        if (holder !== eventId) return 'merge-push-collapsed';
      }
    }
    return null;
  }
}
