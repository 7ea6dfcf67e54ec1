import type { Envelope } from '../bitbucket/envelope.js';
import type { Config } from '../config/types.js';
import { decodeMeta } from '../queue/event-meta.js';
import type { EventMeta, StoredEvent } from '../queue/event-store.js';
import type { Keys } from '../queue/keys.js';
import { LuaScript } from '../queue/lua-script.js';
import type { RedisClient } from '../queue/redis-connection.js';
import { branchTransition } from '../relay/branch-transition.js';
import type { StaticLoopRules } from '../relay/loop-rules.js';
import type { Router } from '../relay/routing.js';

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
/**
 * How long an event not routed yet keeps the cursor behind it. The fan-out routes within seconds; one still
 * `received` after this is stuck (an unreadable record, an inbox entry lost with its stream), and holding the
 * cursor for it would make every later scan page the index from it for as long as it is retained. Routed
 * later than this, an event is only not coalesced: it is delivered on its own.
 */
export const UNROUTED_HOLD_MS = 10 * 60_000;

// Offer a push as its branch's newest, and move the shared cursor forward: src/lua/coalesce-*.lua.
const OFFER = LuaScript.fromFile('coalesce-offer');
const CURSOR = LuaScript.fromFile('coalesce-cursor');

/** The branch a push moves, when it is a single-branch push to a branch that still exists (what is coalesced). */
export function coalesceRef(env: Envelope): string | null {
  return branchTransition(env)?.ref ?? null;
}

export class Coalescer {
  private readonly coalescing: Set<string>;
  /** The running catch-up per shard (an event's shard holds every event of its repository: keys.ts). */
  private readonly catching = new Map<number, Promise<void>>();
  private readonly seen = new Set<string>();

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    private readonly config: Config,
    private readonly router: Router,
    private readonly rules: StaticLoopRules,
  ) {
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

  /**
   * Records the event as the newest of its branch unless a newer one is; resolves to the newest's id. The keys
   * are in the event's shard.
   */
  private offer(targetId: string, sourceId: string, env: Envelope, eventId: string): Promise<string> {
    const move = branchTransition(env)!;
    const scope = this.keys.repoScope(sourceId, env.repository, eventId);
    return OFFER.run(
      this.redis,
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
    const cursorKey = this.keys.coalesceCursor(shard);
    const stored = await this.redis.get(cursorKey);
    let from = (stored ? Number(stored) : fallbackFrom) - OVERLAP_MS;
    let high = 0;
    // The oldest event still waiting for the fan-out: the cursor stays before it, so a later scan reads it once
    // it is routed.
    let firstUnrouted = Number.POSITIVE_INFINITY;
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
      // The ingress indexes an event when it receives it; its envelope (refs) and targets are written when the
      // fan-out routes it. Until then it is not remembered: its branch move is not known yet.
      const parts = await Promise.all(
        fresh.map((e) => this.redis.hmgetBuffer(this.keys.event(e.id), 'meta', 'state')),
      );
      const writes: Promise<unknown>[] = [];
      for (let i = 0; i < fresh.length; i++) {
        const { id, score } = fresh[i]!;
        const [rawMeta, state] = parts[i]!;
        if (state?.toString('utf8') === 'received') {
          if (Date.now() - score < UNROUTED_HOLD_MS) firstUnrouted = Math.min(firstUnrouted, score);
          continue;
        }
        const meta = decodeMeta(rawMeta);
        if (meta) this.index(id, meta, writes);
        this.remember(id);
        high = Math.max(high, score);
      }
      await Promise.all(writes);
      if (page.length < PAGE * 2) break;
      const next = entries[entries.length - 1]!.score;
      if (next <= from) break;
      from = next;
    }
    const caughtUpTo = Math.min(high, firstUnrouted - 1);
    if (caughtUpTo > 0) await CURSOR.run(this.redis, [cursorKey], [caughtUpTo]);
  }

  /** Record one event as the latest of its branch for each coalescing target. */
  private index(id: string, meta: EventMeta, writes: Promise<unknown>[]): void {
    if (branchTransition(meta.envelope) === null || this.rules.check(meta.envelope)) return;
    for (const targetId of meta.targets) {
      if (this.applies(targetId, meta.sourceId, meta.envelope)) {
        writes.push(this.offer(targetId, meta.sourceId, meta.envelope, id));
      }
    }
  }

  private remember(id: string): void {
    if (this.seen.size > 50_000) this.seen.clear();
    this.seen.add(id);
  }
}
