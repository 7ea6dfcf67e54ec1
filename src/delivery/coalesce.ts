import type { Envelope } from '../bitbucket/envelope.js';
import type { Config } from '../config/types.js';
import type { Router } from '../ingress/routing.js';
import type { StoredEvent } from '../queue/event-store.js';
import { deliveryJobId } from '../queue/job-types.js';
import type { Keys } from '../queue/keys.js';
import type { RedisClient } from '../queue/redis-connection.js';
import type { StaticLoopRules } from './loop-rules.js';
import { branchTransition, ORDER_LUA } from './ref-order.js';
import { luaScript } from './scripts.js';

/*
 * Coalescing (`coalesce: latest-per-ref` on a route): while pushes to one branch wait for a busy or failing
 * target, only the newest is delivered. The ingress is not involved: when a coalescing delivery starts, the
 * worker first catches up on the event index (a shared cursor in Redis, so each event is looked at about once
 * however many workers run) and records, per target, source and repository+branch, the newest push in
 * `loop:latest:…` (`<event id> <head>`). Newest by the branch's graph (ref-order.ts: a push whose old head is
 * another's new head is newer), so a late retry of an older push never takes the place of the branch head;
 * by arrival (UUIDv7 ids) when the graph cannot tell. A delivery whose key names another event ends
 * `coalesced` with that id. Only single-branch pushes take part (a push that
 * moves several refs, or a tag, is always delivered), and an event the loop guard's own rules would hold back
 * (a `[skip ci]` bump, a bot's push) never supersedes anything.
 */

// Events can enter the index slightly out of score order (score = receive time, set before the commit).
const OVERLAP_MS = 5_000;
const PAGE = 500;
// An event without its `ok` mark comes from the earlier two-step store, where one younger than this may still
// have been committing its jobs (the one-call store writes event, jobs and mark together).
const UNCOMMITTED_GRACE_MS = 10_000;

// KEYS: the latest key, the branch's transitions. ARGV: event id, ttl ms, old head, new head. Returns the id
// of the newest push after this one's offer. A value of the earlier format (an event id alone) compares by
// arrival.
const MAX = `${ORDER_LUA}
learn(KEYS[2], ARGV[3], ARGV[4], ARGV[2])
local v = redis.call('GET', KEYS[1])
if v then
  local id, head = string.match(v, '^(%S+) (%S+)$')
  if not id then id, head = v, '' end
  if id == ARGV[1] then return id end
  local order = newer(KEYS[2], ARGV[4], head)
  if order == -1 or (order == 0 and id > ARGV[1]) then return id end
end
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. ARGV[4], 'PX', ARGV[2])
return ARGV[1]`;

const CURSOR = `
local v = tonumber(redis.call('GET', KEYS[1]) or '0')
if v < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end
return 1`;

/** The branch a push moves, when it is a single-branch push to a branch that still exists (what is coalesced). */
export function coalesceRef(env: Envelope): string | null {
  return branchTransition(env)?.ref ?? null;
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
    if (!this.coalescing.has(targetId) || branchTransition(env) === null) return false;
    return this.router
      .match(sourceId, env)
      .routes.some((r) => r.coalesce === 'latest-per-ref' && r.targets.includes(targetId));
  }

  private jobKey(targetId: string, eventId: string): string {
    const shard = this.keys.shardOfId(eventId);
    return `${this.keys.queuePrefix(targetId, shard)}:${this.keys.queueName(targetId, shard)}:${deliveryJobId(eventId, targetId)}`;
  }

  /**
   * Records the event as the newest of its branch unless a newer one is; resolves to the newest's id. The keys
   * are in the event's shard.
   */
  private offer(targetId: string, sourceId: string, env: Envelope, eventId: string): Promise<string> {
    const move = branchTransition(env)!;
    const scope = { sourceId, repo: env.repository ?? '-', shard: this.keys.shardOfId(eventId) };
    return this.max(
      [
        this.keys.loopLatest({ ...scope, targetId, ref: move.ref }),
        this.keys.refEdges({ ...scope, ref: move.ref }),
      ],
      [eventId, this.ttlMs(), move.oldHash, move.newHash],
    ) as Promise<string>;
  }

  private ttlMs(): number {
    return Math.max(...this.config.targets.map((t) => t.retry.maxAge)) + 3_600_000;
  }

  /** The id of a newer event for the same target and branch, or null when this one is the newest. */
  async supersededBy(targetId: string, event: StoredEvent): Promise<string | null> {
    if (branchTransition(event.envelope) === null) return null;
    await this.catchUp(event.receivedAt, this.keys.shardOfId(event.id));
    const latest = await this.offer(targetId, event.sourceId, event.envelope, event.id);
    return latest !== event.id ? latest : null;
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
    if (branchTransition(meta.envelope) === null || this.rules.check(meta.envelope)) return false;
    for (const t of meta.targets) {
      if (!this.applies(t, meta.sourceId, meta.envelope)) continue;
      // Only an event whose delivery job exists may supersede: an event hash can be written before its jobs
      // are committed, and a failed commit leaves none.
      if (!ok && !(await this.redis.exists(this.jobKey(t, id)))) {
        if (Date.now() - meta.receivedAt < UNCOMMITTED_GRACE_MS) return true;
        continue;
      }
      writes.push(this.offer(t, meta.sourceId, meta.envelope, id));
    }
    return false;
  }

  private remember(id: string): void {
    if (this.seen.size > 50_000) this.seen.clear();
    this.seen.add(id);
  }
}
