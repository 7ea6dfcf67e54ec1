import type { Config } from '../config/types.js';
import type { StoredEvent } from '../queue/event-store.js';
import type { Keys } from '../queue/keys.js';
import { LuaScript } from '../queue/lua-script.js';
import type { RedisClient } from '../queue/redis-connection.js';
import { type BranchTransition, branchTransition } from '../relay/branch-transition.js';
import type { Router } from '../relay/routing.js';

/*
 * Which of two pushes to a ref is newer, by the ref's graph rather than by arrival: a push whose old head is
 * another's new head came after it. Each ref keeps a HASH of its recent transitions (old head → new head);
 * `newer` walks it from one new head towards the other. Pushes that the walk does not connect (a force push,
 * transitions already forgotten) fall back to arrival order (event ids are UUIDv7). The HASH is bounded (see
 * src/lua/includes/ref-graph.lua).
 */

/** The order check's keys and arguments (src/lua/includes/ref-order-stale.lua). */
export interface OrderCheck {
  keys: [string, string];
  args: [string, string, number];
}

/** A newer push already delivered to the target, by the ref graph. */
export interface NewerDelivered {
  eventId: string;
  head: string;
}

// A delivery about to be sent (a delivered push's head: src/lua/record-delivered.lua).
const STALE = LuaScript.fromFile('ref-order-stale');

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

  /**
   * The order check of an event's push to a target, for a script that runs it with other reads (the loop
   * guard's): the same keys and arguments as newerDelivered's.
   */
  check(
    targetId: string,
    at: { sourceId: string; repository: string | null; eventId: string },
    move: BranchTransition,
  ): OrderCheck {
    const scope = this.keys.repoScope(at.sourceId, at.repository, at.eventId);
    return {
      keys: [
        this.keys.refEdges({ ...scope, ref: move.ref }),
        this.keys.refDelivered({ ...scope, targetId, ref: move.ref }),
      ],
      args: [move.oldHash, move.newHash, this.ttlMs()],
    };
  }

  /** The newer delivered push in an order check's reply, or null. */
  static newerIn(reply: (string | number | Buffer)[]): NewerDelivered | null {
    return Number(reply[0]) === 1 ? { eventId: String(reply[1]), head: String(reply[2]) } : null;
  }

  /** Whether a route sending this event to this target asks for superseded pushes not to be sent. */
  skips(targetId: string, event: StoredEvent): boolean {
    if (!this.skipping.has(targetId)) return false;
    return this.router
      .match(event.sourceId, event.envelope)
      .routes.some((r) => r.skipSuperseded && r.targets.includes(targetId));
  }

  /** The newer push already delivered to this target, when this one is older by the ref graph. */
  async newerDelivered(targetId: string, event: StoredEvent): Promise<NewerDelivered | null> {
    const order = this.checkOf(targetId, event);
    if (!order) return null;
    return RefOrder.newerIn((await STALE.run(this.redis, order.keys, order.args)) as (string | number)[]);
  }

  /**
   * An event's branch keys and arguments for this target, the same for the check before a send and for the
   * delivered head record-delivered.ts writes (src/lua/includes/delivered-head.lua; the event id follows these
   * arguments there); null when the event is not a push to one branch.
   */
  checkOf(targetId: string, event: StoredEvent): OrderCheck | null {
    const move = branchTransition(event.envelope);
    if (!move) return null;
    return this.check(
      targetId,
      { sourceId: event.sourceId, repository: event.envelope.repository, eventId: event.id },
      move,
    );
  }
}
