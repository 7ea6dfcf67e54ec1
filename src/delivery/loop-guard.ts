import type { Envelope } from '../bitbucket/envelope.js';
import type { Config } from '../config/types.js';
import type { Evidence } from '../queue/delivery-state.js';
import type { EventStore, StoredEvent } from '../queue/event-store.js';
import type { JobGuard, StaticSuppressReason } from '../queue/job-types.js';
import type { Keys, RepoScope } from '../queue/keys.js';
import type { RedisClient } from '../queue/redis-connection.js';
import { actorDigest, chainParents, deliveredHeads, jobGuard, StaticLoopRules } from './loop-rules.js';
import { luaScript } from './scripts.js';

export type SuppressReason = StaticSuppressReason | 'ref-rate' | 'merge-push-collapsed' | 'chain-loop';
/** A merged PR whose merge-commit push has not been seen yet: wait a little for it (see LoopGuard.check). */
export type GuardVerdict = SuppressReason | 'wait-for-push' | null;

/** The guard's verdict and, when it holds a delivery back, what it saw. */
export interface GuardResult {
  verdict: GuardVerdict;
  evidence?: Evidence;
}

type LoopConfig = Config['loop'];

// The turn a push makes in a causal chain, from the records of the commits it builds on (KEYS[from..to]):
// `<actor digest> <turns> <delivered at ms> <event id>`. A commit delivered after the push was received cannot
// have caused it. The same actor continues the chain (turns + 1); anyone else starts one (1). Returns the
// highest turn and the index (1-based, within the range) of the commit it follows.
const TURN = `
local function turn(from, to, actor, received)
  local best, at = 0, 0
  for i = from, to do
    local v = redis.call('GET', KEYS[i])
    if v then
      local who, turns, deliveredAt = string.match(v, '^(%S+) (%d+) (%d+)')
      if who and tonumber(deliveredAt) <= received then
        local t = 1
        if who == actor then t = tonumber(turns) + 1 end
        if t > best then best, at = t, i - from + 1 end
      end
    end
  end
  return best, at
end
`;

// The Redis rules of one delivery in one call. `guard(first)`: KEYS[first …] are the per-actor ref-rate ZSETs
// (ARGV[5] of them), then the merge marks (ARGV[8]), then the delivered-commit records of the commits the push
// builds on. ARGV: 1 now, 2 rate window ms, 3 rate count, 4 event id, 5 rate keys, 6 mark ttl s, 7 'push' or
// 'merge', 8 mark keys, 9 the static rules' verdict ('' = none), 10 actor digest ('' = chain rule off),
// 11 max turns, 12 received at ms.
// Returns {code, a, b}: 0 pass; 1 ref-rate (a = ref index, b = count); 2 merge-push-collapsed (a = the push's
// event id); 3 a merge whose push is not seen yet; 4 chain-loop (a = parent index, b = turns); 5 a merge whose
// push was held (a = its event id, b = its reason); 6 the static verdict stands.
// A push checks the chain first, then its rate (a held push is not counted: the rate closes as entries age
// out; members are event ids, so a crashed worker's second look is not counted twice), and records its merge
// marks whatever its verdict — `<verdict> <event id>` — so that the merged PR inherits it instead of waiting.
const GUARD = `${TURN}
local function guard(first)
  local nRate = tonumber(ARGV[5])
  local lastRate = first + nRate - 1
  local lastMerge = lastRate + tonumber(ARGV[8])
  local id = ARGV[4]
  if ARGV[7] == 'merge' then
    local waiting = false
    for i = lastRate + 1, lastMerge do
      local mark = redis.call('GET', KEYS[i])
      if mark then
        local verdict, pushId = string.match(mark, '^(%S+) (%S+)$')
        if not verdict then return {2, mark} end
        if verdict == 'pass' then return {2, pushId} end
        return {5, pushId, verdict}
      end
      waiting = true
    end
    if waiting then return {3} end
    return {0}
  end
  local code, a, b = 0, 0, 0
  local verdict = ARGV[9]
  if verdict ~= '' then code = 6 end
  if code == 0 and ARGV[10] ~= '' then
    local best, at = turn(lastMerge + 1, #KEYS, ARGV[10], tonumber(ARGV[12]))
    if best >= tonumber(ARGV[11]) then code, a, b, verdict = 4, at, best, 'chain-loop' end
  end
  if code == 0 then
    local now = tonumber(ARGV[1])
    local window = tonumber(ARGV[2])
    local count = tonumber(ARGV[3])
    for i = first, lastRate do
      local k = KEYS[i]
      redis.call('ZREMRANGEBYSCORE', k, '-inf', now - window)
      if not redis.call('ZSCORE', k, id) then
        if redis.call('ZCARD', k) >= count then
          code, a, b, verdict = 1, i - first + 1, count, 'ref-rate'
          break
        end
        redis.call('ZADD', k, now, id)
        redis.call('PEXPIRE', k, window)
      end
    end
  end
  if verdict == '' then verdict = 'pass' end
  for i = lastRate + 1, lastMerge do
    redis.call('SET', KEYS[i], verdict .. ' ' .. id, 'EX', ARGV[6], 'NX')
  end
  return {code, a, b}
end
`;

const CHECK = `${GUARD}
return guard(1)`;

// The event's read and the guard in one call, for a delivery whose guard keys were worked out when it was
// accepted (JobGuard): KEYS[1] is the event hash, the guard's keys follow. An expired event runs no guard.
// Returns {-1}, or {{code, a, b}, HGETALL of the event}; no guard keys: {{6}, …} (the static verdict).
const READ_AND_CHECK = `${GUARD}
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end
local verdict = {6}
if #KEYS > 1 then verdict = guard(2) end
return {verdict, redis.call('HGETALL', KEYS[1])}`;

// A delivered event's heads: KEYS[1..ARGV[6]] are the records of the commits it built, the rest those of the
// commits it builds on. ARGV: 1 actor digest, 2 sent at ms, 3 memory ms, 4 event id, 5 received at ms, 6 heads.
const RECORD = `${TURN}
local heads = tonumber(ARGV[6])
local best = turn(heads + 1, #KEYS, ARGV[1], tonumber(ARGV[5]))
for i = 1, heads do
  redis.call('SET', KEYS[i], ARGV[1] .. ' ' .. best .. ' ' .. ARGV[2] .. ' ' .. ARGV[4], 'PX', ARGV[3])
end
return best`;

type Reply = (number | string | Buffer)[];
const text = (v: number | string | Buffer | undefined) => (v === undefined ? '' : v.toString());

/**
 * The loop guard, checked before a delivery is sent: the static rules (loop-rules.ts), then in Redis (shared by
 * all workers; per source, target and repository): the causal chain rule, the per-ref rate of each actor, and
 * the merge/push collapse. After a delivery, `recordDelivered` remembers what the target built.
 */
export class LoopGuard {
  readonly rules: StaticLoopRules;
  private readonly run: ReturnType<typeof luaScript>;
  private readonly runRead: ReturnType<typeof luaScript>;
  private readonly runRecord: ReturnType<typeof luaScript>;

  constructor(
    redis: RedisClient,
    private readonly keys: Keys,
    private readonly loop: LoopConfig,
  ) {
    this.rules = new StaticLoopRules(loop);
    this.run = luaScript(redis, 'hrLoopCheck', CHECK);
    this.runRead = luaScript(redis, 'hrReadLoopCheck', READ_AND_CHECK, 'buffers');
    this.runRecord = luaScript(redis, 'hrLoopRecord', RECORD);
  }

  /** For a delivery whose job carries no guard inputs (queued by an earlier version), from the event. */
  async check(event: StoredEvent, targetId: string, headMessage?: string): Promise<GuardResult> {
    const g = jobGuard(this.rules, event.envelope, event.sourceId, event.receivedAt);
    return this.checkGuard(g, event, targetId, headMessage);
  }

  /** The Redis rules for guard inputs `g` (whose static verdict may be revised by a looked-up message). */
  async checkGuard(
    g: JobGuard,
    event: StoredEvent,
    targetId: string,
    headMessage?: string,
  ): Promise<GuardResult> {
    const fixed =
      headMessage === undefined ? g.s : (this.rules.check(event.envelope, headMessage) ?? undefined);
    const guard: JobGuard = { ...g, ...(fixed ? { s: fixed } : {}) };
    const { keys, args } = this.plan(guard, event.id, targetId);
    if (keys.length === 0) return this.result(guard, fixed ? [6] : [0], event.envelope, headMessage);
    return this.result(guard, (await this.run(keys, args)) as Reply, event.envelope, headMessage);
  }

  /**
   * Reads the event and runs the Redis rules in the same call: one round trip where `store.read` then `check`
   * take two. `event` is null when it has expired (no rule ran).
   */
  async readAndCheck(
    store: EventStore,
    g: JobGuard,
    eventId: string,
    targetId: string,
  ): Promise<{ event: StoredEvent | null } & GuardResult> {
    const { keys, args } = this.plan(g, eventId, targetId);
    const reply = (await this.runRead([this.keys.event(eventId), ...keys], args)) as [-1] | [Reply, Buffer[]];
    if (reply[0] === -1) return { event: null, verdict: null };
    const flat = reply[1]!;
    const fields: Record<string, Buffer> = {};
    for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i]!.toString('utf8')] = flat[i + 1]!;
    const event = store.decode(eventId, fields);
    if (!event) return { event: null, verdict: null };
    const verdict = keys.length === 0 && !g.s ? [0] : reply[0];
    return { event, ...this.result(g, verdict, event.envelope) };
  }

  /**
   * Remembers what a delivered event built for this target: who pushed it, and its turn in a chain. `sentAt`:
   * when the request went out, the earliest a build it caused could have pushed.
   */
  async recordDelivered(event: StoredEvent, targetId: string, sentAt: number): Promise<void> {
    const env = event.envelope;
    const heads = deliveredHeads(env);
    if (heads.length === 0) return;
    const scope = this.scope(event.sourceId, env.repository, event.id);
    const commitKey = (commit: string) => this.keys.loopCommit({ ...scope, targetId, commit });
    const parents = env.refs.length > 0 ? chainParents(env) : [];
    await this.runRecord(
      [...heads.map(commitKey), ...parents.map(commitKey)],
      [actorDigest(env.actor), sentAt, this.loop.chain.memory, event.id, event.receivedAt, heads.length],
    );
  }

  private scope(sourceId: string | undefined, repo: string | null, eventId: string): RepoScope {
    return { sourceId: sourceId ?? '-', repo: repo ?? '-', shard: this.keys.shardOfId(eventId) };
  }

  private result(g: JobGuard, reply: Reply, env: Envelope, headMessage?: string): GuardResult {
    const [code, a, b] = reply;
    const actor = g.actorName ?? 'unknown';
    switch (Number(code)) {
      case 1: {
        const { count, window } = this.loop.maxTriggersPerRef;
        // Evidence is stored with the event and read by the console: its unit stays in the name.
        const windowSeconds = window / 1000;
        return {
          verdict: 'ref-rate',
          evidence: { rule: 'ref-rate', actor, ref: g.r[Number(a) - 1] ?? '-', count, windowSeconds },
        };
      }
      case 2:
        return {
          verdict: 'merge-push-collapsed',
          evidence: { rule: 'merge-push-collapsed', pushEvent: text(a) },
        };
      case 3:
        return { verdict: 'wait-for-push' };
      case 4:
        return {
          verdict: 'chain-loop',
          evidence: {
            rule: 'chain-loop',
            actor,
            parentCommit: g.parents?.[Number(a) - 1] ?? '-',
            turns: Number(b),
            maxTurns: this.loop.chain.maxTurns,
            memorySeconds: this.loop.chain.memory / 1000,
          },
        };
      case 5: {
        const reason = text(b) as SuppressReason;
        return {
          verdict: reason,
          evidence: { rule: 'merge-push-verdict', pushEvent: text(a), pushReason: reason },
        };
      }
      case 6: {
        const fixed = this.rules.verdict(env, headMessage);
        if (!g.s) return { verdict: null };
        return { verdict: g.s, evidence: fixed?.evidence ?? { rule: g.s } };
      }
      default:
        return { verdict: null };
    }
  }

  /** The Redis rules' keys (the event's shard holds every one: one slot on a cluster) and arguments. */
  private plan(
    g: JobGuard,
    eventId: string,
    targetId: string,
  ): { keys: string[]; args: (string | number)[] } {
    const scope = this.scope(g.source, g.p, eventId);
    const marks = this.loop.collapseMergePush
      ? g.m.map((mark) => this.keys.loopMerge({ ...scope, targetId, mark }))
      : [];
    // Held by the static rules: only a push's merge marks are written (its merged PR inherits the verdict).
    if (g.s && (g.merge || marks.length === 0)) return { keys: [], args: [] };
    const rate = g.s
      ? []
      : g.r.map((ref) => this.keys.loopRate({ ...scope, targetId, ref, actor: g.actor ?? '-' }));
    const chain = g.chain && !g.s && !g.merge ? (g.parents ?? []) : [];
    const parents = chain.map((commit) => this.keys.loopCommit({ ...scope, targetId, commit }));
    const { count, window } = this.loop.maxTriggersPerRef;
    return {
      keys: [...rate, ...marks, ...parents],
      args: [
        Date.now(),
        window,
        count,
        eventId,
        rate.length,
        // The script sets this expiry in whole seconds.
        Math.ceil(this.loop.collapseWindow / 1000),
        g.merge ? 'merge' : 'push',
        marks.length,
        g.s ?? '',
        chain.length > 0 ? (g.actor ?? '-') : '',
        this.loop.chain.maxTurns,
        g.receivedAt ?? Date.now(),
      ],
    };
  }
}
