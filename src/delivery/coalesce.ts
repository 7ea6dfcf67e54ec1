import type { Envelope } from '../bitbucket/envelope.js';
import type { Config } from '../config/types.js';
import type { Router } from '../ingress/routing.js';
import type { StoredEvent } from '../queue/event-store.js';
import { deliveryJobId } from '../queue/job-types.js';
import type { Keys } from '../queue/keys.js';
import type { RedisClient } from '../queue/redis-connection.js';
import type { StaticLoopRules } from './loop-rules.js';
import { luaScript } from './scripts.js';

/*
 * Coalescing (`coalesce: latest-per-ref` on a route): while pushes to one branch wait for a busy or failing
 * target, only the newest is delivered. The ingress is not involved: when a coalescing delivery starts, the
 * worker first catches up on the event index (a shared cursor in Redis, so each event is looked at about once
 * however many workers run) and records, per target and repository+branch, the newest event id in
 * `loop:latest:<target>:<repo>:<branch>`. Event ids are UUIDv7, so string order is arrival order. A delivery
 * whose key names a newer event ends `coalesced` with that id. Only single-branch pushes take part (a push that
 * moves several refs, or a tag, is always delivered), and an event the loop guard's own rules would hold back
 * (a `[skip ci]` bump, a bot's push) never supersedes anything.
 */

// Events can enter the index slightly out of score order (score = receive time, set before the commit).
const OVERLAP_MS = 5_000;
const PAGE = 500;
// An event without its `ok` mark comes from the earlier two-step store, where one younger than this may still
// have been committing its jobs (the one-call store writes event, jobs and mark together).
const UNCOMMITTED_GRACE_MS = 10_000;

const MAX = `
local v = redis.call('GET', KEYS[1])
if (not v) or v < ARGV[1] then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) end
return 1`;

const CURSOR = `
local v = tonumber(redis.call('GET', KEYS[1]) or '0')
if v < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end
return 1`;

/** The branch a push moves, when it is a single-branch push (the only kind coalescing applies to). */
export function coalesceRef(env: Envelope): string | null {
  if (env.refs.length !== 1) return null;
  const ref = env.refs[0]!;
  return ref.kind === 'branch' ? ref.name : null;
}

export class Coalescer {
  private readonly coalescing: Set<string>;
  /** The running catch-up per shard (an event's shard holds every event of its repository: keys.ts). */
  private readonly catching = new Map<number, Promise<void>>();
  private readonly seen = new Set<string>();
  private readonly max: ReturnType<typeof luaScript>;
  private readonly cursor: ReturnType<typeof luaScript>;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    private readonly config: Config,
    private readonly router: Router,
    private readonly rules: StaticLoopRules,
  ) {
    this.max = luaScript(redis, 'hrCoalesceMax', MAX);
    this.cursor = luaScript(redis, 'hrCoalesceCursor', CURSOR);
    this.coalescing = new Set(
      config.routes.filter((r) => r.coalesce === 'latest-per-ref').flatMap((r) => r.targets),
    );
  }

  /** Whether any route that sends this event to this target asks for coalescing. */
  applies(targetId: string, sourceId: string, env: Envelope): boolean {
    if (!this.coalescing.has(targetId) || coalesceRef(env) === null) return false;
    return this.router
      .match(sourceId, env)
      .routes.some((r) => r.coalesce === 'latest-per-ref' && r.targets.includes(targetId));
  }

  private jobKey(targetId: string, eventId: string): string {
    const shard = this.keys.shardOfId(eventId);
    return `${this.keys.queuePrefix(targetId, shard)}:${this.keys.queueName(targetId, shard)}:${deliveryJobId(eventId, targetId)}`;
  }

  /** In the shard of the repository's events (`eventId` names it), like the loop guard's keys. */
  private latestKey(targetId: string, repo: string, branch: string, eventId: string): string {
    return this.keys.loop(`latest:${targetId}:${repo}:${branch}`, this.keys.shardOfId(eventId));
  }

  private ttlMs(): number {
    return Math.max(...this.config.targets.map((t) => t.retry.maxAgeMs)) + 3_600_000;
  }

  /** The id of a newer event for the same target and branch, or null when this one is the newest. */
  async supersededBy(targetId: string, event: StoredEvent): Promise<string | null> {
    const branch = coalesceRef(event.envelope);
    if (branch === null) return null;
    await this.catchUp(event.receivedAt, this.keys.shardOfId(event.id));
    const key = this.latestKey(targetId, event.envelope.repository ?? '-', branch, event.id);
    await this.max([key], [event.id, this.ttlMs()]);
    const latest = await this.redis.get(key);
    return latest && latest > event.id ? latest : null;
  }

  private catchUp(fallbackFrom: number, shard: number): Promise<void> {
    // One catch-up at a time per process and shard; a caller arriving meanwhile waits for it and then runs its
    // own, so events committed after the running one started are not missed.
    const run = (this.catching.get(shard) ?? Promise.resolve()).then(() => this.scan(fallbackFrom, shard));
    const tracked = run.finally(() => {
      if (this.catching.get(shard) === tracked) this.catching.delete(shard);
    });
    this.catching.set(shard, tracked);
    return tracked;
  }

  private async scan(fallbackFrom: number, shard: number): Promise<void> {
    const cursorKey = this.keys.loop('coalesce:cursor', shard);
    const stored = await this.redis.get(cursorKey);
    let from = (stored ? Number(stored) : fallbackFrom) - OVERLAP_MS;
    let high = 0;
    let held = false;
    for (;;) {
      const page = await this.redis.zrangebyscore(
        this.keys.eventIndexOf(shard),
        from,
        '+inf',
        'WITHSCORES',
        'LIMIT',
        0,
        PAGE,
      );
      const entries: { id: string; score: number }[] = [];
      for (let i = 0; i < page.length; i += 2) entries.push({ id: page[i]!, score: Number(page[i + 1]) });
      const fresh = entries.filter((e) => !this.seen.has(e.id));
      const metas = await Promise.all(
        fresh.map((e) => this.redis.hmget(this.keys.event(e.id), 'meta', 'ok')),
      );
      const writes: Promise<unknown>[] = [];
      for (let i = 0; i < fresh.length; i++) {
        const { id, score } = fresh[i]!;
        const [raw, ok] = metas[i] ?? [];
        const pending = raw ? await this.index(id, raw, ok ?? null, writes) : false;
        // The cursor stops before an event that may still be committing, so the next catch-up sees it again.
        if (pending) held = true;
        else this.remember(id);
        if (!held) high = Math.max(high, score);
      }
      await Promise.all(writes);
      if (page.length < PAGE * 2) break;
      const next = entries[entries.length - 1]!.score;
      if (next <= from) break;
      from = next;
    }
    if (high > 0) await this.cursor([cursorKey], [high]);
  }

  /** Record one event as the latest of its branch for each coalescing target; true = look again later. */
  private async index(
    id: string,
    raw: string,
    ok: string | null,
    writes: Promise<unknown>[],
  ): Promise<boolean> {
    const meta = JSON.parse(raw) as {
      sourceId: string;
      receivedAt: number;
      envelope: Envelope;
      targets: string[];
    };
    const branch = coalesceRef(meta.envelope);
    if (branch === null || this.rules.check(meta.envelope)) return false;
    for (const t of meta.targets) {
      if (!this.applies(t, meta.sourceId, meta.envelope)) continue;
      // Only an event whose delivery job exists may supersede: an event hash can be written before its jobs
      // are committed, and a failed commit leaves none.
      if (!ok && !(await this.redis.exists(this.jobKey(t, id)))) {
        if (Date.now() - meta.receivedAt < UNCOMMITTED_GRACE_MS) return true;
        continue;
      }
      writes.push(
        this.max([this.latestKey(t, meta.envelope.repository ?? '-', branch, id)], [id, this.ttlMs()]),
      );
    }
    return false;
  }

  private remember(id: string): void {
    if (this.seen.size > 50_000) this.seen.clear();
    this.seen.add(id);
  }
}
