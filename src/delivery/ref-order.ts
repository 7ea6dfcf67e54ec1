import type { Envelope } from '../bitbucket/envelope.js';
import type { Config } from '../config/types.js';
import type { Router } from '../ingress/routing.js';
import type { StoredEvent } from '../queue/event-store.js';
import type { Keys, RepoScope } from '../queue/keys.js';
import type { RedisClient } from '../queue/redis-connection.js';
import { luaScript } from './scripts.js';

/*
 * Which of two pushes to a ref is newer, by the ref's graph rather than by arrival: a push whose old head is
 * another's new head came after it. Each ref keeps a HASH of its recent transitions (old head → new head);
 * `newer` walks it from one new head towards the other. Pushes that the walk does not connect (a force push,
 * transitions already forgotten) fall back to arrival order (event ids are UUIDv7). The HASH is bounded: past
 * EDGE_CAP transitions it starts again (ordering then falls back to arrival until it has learnt again).
 */

const EDGE_CAP = 512;
const MAX_WALK = 64;

/** A single-branch push's transition, the only kind ordered (tags and multi-ref pushes are not). */
export function branchTransition(env: Envelope): { ref: string; oldHash: string; newHash: string } | null {
  if (env.refs.length !== 1) return null;
  const ref = env.refs[0]!;
  if (ref.kind !== 'branch' || !ref.newHash) return null;
  return { ref: ref.name, oldHash: (ref.oldHash ?? '').toLowerCase(), newHash: ref.newHash.toLowerCase() };
}

// Lua: `learn(edges, old, new, ttl)` records a transition; `newer(edges, a, b)` is 1 when head `a` is reachable
// from head `b` (a is newer), -1 when b is reachable from a, 0 when the walk cannot tell.
export const ORDER_LUA = `
local function learn(edges, old, new, ttl)
  if old == '' or new == '' then return end
  if redis.call('HLEN', edges) >= ${EDGE_CAP} then redis.call('DEL', edges) end
  redis.call('HSET', edges, old, new)
  redis.call('PEXPIRE', edges, ttl)
end
local function reaches(edges, from, to)
  local at = from
  for _ = 1, ${MAX_WALK} do
    at = redis.call('HGET', edges, at)
    if not at then return false end
    if at == to then return true end
  end
  return false
end
local function newer(edges, a, b)
  if a == b or a == '' or b == '' then return 0 end
  if reaches(edges, b, a) then return 1 end
  if reaches(edges, a, b) then return -1 end
  return 0
end
`;

// A delivery about to be sent: learn its transition and compare its head with the newest head delivered to the
// target. KEYS: edges, delivered head. ARGV: old, new, ttl ms. Returns {1, event id, head} when a newer push
// was delivered already, else {0}.
const STALE = `${ORDER_LUA}
learn(KEYS[1], ARGV[1], ARGV[2], ARGV[3])
local v = redis.call('GET', KEYS[2])
if not v then return {0} end
local head, id = string.match(v, '^(%S+) (%S+)$')
if head and newer(KEYS[1], head, ARGV[2]) == 1 then return {1, id, head} end
return {0}`;

// A delivered push: its head becomes the delivered head unless a newer one is already there (an older push
// sent late does not move it back). KEYS: edges, delivered head. ARGV: old, new, ttl ms, event id.
const DELIVERED = `${ORDER_LUA}
learn(KEYS[1], ARGV[1], ARGV[2], ARGV[3])
local v = redis.call('GET', KEYS[2])
if v then
  local head = string.match(v, '^(%S+) ')
  if head and newer(KEYS[1], head, ARGV[2]) == 1 then return 0 end
end
redis.call('SET', KEYS[2], ARGV[2] .. ' ' .. ARGV[4], 'PX', ARGV[3])
return 1`;

/** Ordering of pushes to a branch per target, for deliveries sent without coalescing. */
export class RefOrder {
  private readonly stale: ReturnType<typeof luaScript>;
  private readonly delivered: ReturnType<typeof luaScript>;
  private readonly skipping: Set<string>;

  constructor(
    redis: RedisClient,
    private readonly keys: Keys,
    private readonly config: Config,
    private readonly router: Router,
  ) {
    this.stale = luaScript(redis, 'hrRefStale', STALE);
    this.delivered = luaScript(redis, 'hrRefDelivered', DELIVERED);
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
    const reply = (await this.stale(
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
    await this.delivered(
      [
        this.keys.refEdges({ ...scope, ref: move.ref }),
        this.keys.refDelivered({ ...scope, targetId, ref: move.ref }),
      ],
      [move.oldHash, move.newHash, this.ttlMs(), event.id],
    );
  }
}
