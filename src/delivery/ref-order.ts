import type { Envelope } from '../bitbucket/envelope.js';
import type { Config } from '../config/types.js';
import type { StoredEvent } from '../queue/event-store.js';
import type { Keys, RepoScope } from '../queue/keys.js';
import { LuaScript } from '../queue/lua-script.js';
import type { RedisClient } from '../queue/redis-connection.js';
import type { Router } from '../relay/routing.js';

/*
 * Which of two pushes to a ref is newer, by the ref's graph rather than by arrival: a push whose old head is
 * another's new head came after it. Each ref keeps a HASH of its recent transitions (old head → new head);
 * `newer` walks it from one new head towards the other. Pushes that the walk does not connect (a force push,
 * transitions already forgotten) fall back to arrival order (event ids are UUIDv7). The HASH is bounded (see
 * src/lua/includes/ref-graph.lua).
 */

/** A single-branch push's transition, the only kind ordered (tags and multi-ref pushes are not). */
export function branchTransition(env: Envelope): { ref: string; oldHash: string; newHash: string } | null {
  if (env.refs.length !== 1) return null;
  const ref = env.refs[0]!;
  if (ref.kind !== 'branch' || !ref.newHash) return null;
  return { ref: ref.name, oldHash: (ref.oldHash ?? '').toLowerCase(), newHash: ref.newHash.toLowerCase() };
}

// A delivery about to be sent, and a delivered push: src/lua/ref-order-*.lua.
const STALE = LuaScript.fromFile('ref-order-stale');
const DELIVERED = LuaScript.fromFile('ref-order-delivered');

/** Ordering of pushes to a branch per target, for deliveries sent without coalescing. */
export class RefOrder {
  private readonly skipping: Set<string>;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    private readonly config: Config,
    private readonly router: Router,
  ) {
    this.skipping = new Set(config.routes.filter((r) => r.skipSuperseded).flatMap((r) => r.targets));
  }

  /** How long the ref's transitions and delivered head are kept: as long as a delivery may be retried. */
  ttlMs(): number {
    return Math.max(...this.config.targets.map((t) => t.retry.maxAge)) + 3_600_000;
  }

  private scope(event: StoredEvent): RepoScope {
    return {
      sourceId: event.sourceId,
      repo: event.envelope.repository ?? '-',
      shard: this.keys.shardOfId(event.id),
    };
  }

  /** Whether a route sending this event to this target asks for superseded pushes not to be sent. */
  skips(targetId: string, event: StoredEvent): boolean {
    if (!this.skipping.has(targetId)) return false;
    return this.router
      .match(event.sourceId, event.envelope)
      .routes.some((r) => r.skipSuperseded && r.targets.includes(targetId));
  }

  /** The newer push already delivered to this target, when this one is older by the ref graph. */
  async newerDelivered(
    targetId: string,
    event: StoredEvent,
  ): Promise<{ eventId: string; head: string } | null> {
    const move = branchTransition(event.envelope);
    if (!move) return null;
    const scope = this.scope(event);
    const reply = (await STALE.run(
      this.redis,
      [
        this.keys.refEdges({ ...scope, ref: move.ref }),
        this.keys.refDelivered({ ...scope, targetId, ref: move.ref }),
      ],
      [move.oldHash, move.newHash, this.ttlMs()],
    )) as [number, string?, string?];
    return reply[0] === 1 ? { eventId: reply[1]!, head: reply[2]! } : null;
  }

  async recordDelivered(targetId: string, event: StoredEvent): Promise<void> {
    const move = branchTransition(event.envelope);
    if (!move) return;
    const scope = this.scope(event);
    await DELIVERED.run(
      this.redis,
      [
        this.keys.refEdges({ ...scope, ref: move.ref }),
        this.keys.refDelivered({ ...scope, targetId, ref: move.ref }),
      ],
      [move.oldHash, move.newHash, this.ttlMs(), event.id],
    );
  }
}
