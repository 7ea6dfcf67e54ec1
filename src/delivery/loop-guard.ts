import type { Envelope } from '../bitbucket/envelope.js';
import type { Config } from '../config/types.js';
import type { Evidence } from '../queue/delivery-state.js';
import type { EventStore, StoredEvent } from '../queue/event-store.js';
import type { Keys } from '../queue/keys.js';
import { LuaScript } from '../queue/lua-script.js';
import type { RedisClient } from '../queue/redis-connection.js';
import type { JobGuard, StaticSuppressReason } from '../relay/job-types.js';
import { actorDigest, chainParents, deliveredHeads, StaticLoopRules } from '../relay/loop-rules.js';
import { type NewerDelivered, type OrderCheck, RefOrder } from './ref-order.js';

export type SuppressReason = StaticSuppressReason | 'ref-rate' | 'merge-push-collapsed' | 'chain-loop';
/** A merged PR whose merge-commit push has not been seen yet: wait a little for it (see LoopGuard.check). */
export type GuardVerdict = SuppressReason | 'wait-for-push' | null;

/** A delivered event's chain record (src/lua/includes/chain-record.lua), but when it was sent and its id. */
export interface ChainRecord {
  /** The records of the `heads` commits it built, then those of the commits it builds on. */
  keys: string[];
  heads: number;
  actor: string;
  ttl: number;
  receivedAt: number;
}

/** The guard's verdict and, when it holds a delivery back, what it saw. */
export interface GuardResult {
  verdict: GuardVerdict;
  evidence?: Evidence;
}

type LoopConfig = Config['loop'];

// The Redis rules of one delivery, with or without the event's read: src/lua/.
const CHECK = LuaScript.fromFile('loop-check');
const READ_AND_CHECK = LuaScript.fromFile('loop-read-and-check');

type Reply = (number | string | Buffer)[];
const text = (v: number | string | Buffer | undefined) => (v === undefined ? '' : v.toString());

/** HGETALL's flat reply as a field map. */
function fieldsOf(flat: Buffer[]): Record<string, Buffer> {
  const fields: Record<string, Buffer> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i]!.toString('utf8')] = flat[i + 1]!;
  return fields;
}

/**
 * The loop guard, checked before a delivery is sent: the static rules (loop-rules.ts), then in Redis (shared by
 * all workers; per source, target and repository): the causal chain rule, the per-ref rate of each actor, and
 * the merge/push collapse. After a delivery, `deliveredRecord` says what the target built (record-delivered.ts
 * writes it).
 */
export class LoopGuard {
  readonly rules: StaticLoopRules;
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    private readonly loop: LoopConfig,
  ) {
    this.rules = new StaticLoopRules(loop);
  }

  /** The Redis rules for the job's guard inputs (whose static verdict may be revised by a looked-up message). */
  async checkGuard(
    inputs: JobGuard,
    event: StoredEvent,
    targetId: string,
    headMessage?: string,
  ): Promise<GuardResult> {
    const fixed =
      headMessage === undefined
        ? inputs.staticVerdict
        : (this.rules.check(event.envelope, headMessage) ?? undefined);
    const guard: JobGuard = { ...inputs, ...(fixed ? { staticVerdict: fixed } : {}) };
    const { keys, args } = this.plan(guard, event.id, targetId);
    if (keys.length === 0) return this.result(guard, fixed ? [6] : [0], event.envelope, headMessage);
    return this.result(
      guard,
      (await CHECK.run(this.redis, keys, args)) as Reply,
      event.envelope,
      headMessage,
    );
  }

  /**
   * Reads the event and runs the Redis rules in the same call, and the branch's order check when given: one
   * round trip where `store.read`, `check` and `RefOrder.newerDelivered` take three. `known`: the event as
   * this process's fan-out routed it (then only its existence is read). `event` is null when it has expired
   * (no rule ran); `newer` is absent without an order check.
   */
  async readAndCheck(
    store: EventStore,
    inputs: JobGuard,
    eventId: string,
    targetId: string,
    order?: OrderCheck,
    known?: StoredEvent,
  ): Promise<{ event: StoredEvent | null; newer?: NewerDelivered | null } & GuardResult> {
    const { keys, args } = this.plan(inputs, eventId, targetId);
    // The script's arguments after the guard's are positional.
    const allArgs =
      order || known ? [...args, order ? '1' : '', ...(order?.args ?? ['', '', '']), known ? '1' : ''] : args;
    const reply = (await READ_AND_CHECK.runBuffer(
      this.redis,
      [this.keys.event(eventId), ...(order?.keys ?? []), ...keys],
      allArgs,
    )) as [-1] | [Reply, Buffer[], Reply];
    if (reply[0] === -1) return { event: null, verdict: null };
    const event = known ?? store.decode(eventId, fieldsOf(reply[1]!));
    if (!event) return { event: null, verdict: null };
    const verdict = keys.length === 0 && !inputs.staticVerdict ? [0] : reply[0];
    return {
      event,
      ...this.result(inputs, verdict, event.envelope),
      ...(order ? { newer: RefOrder.newerIn(reply[2] ?? []) } : {}),
    };
  }

  /**
   * What a delivered event built for this target, for record-delivered.ts to write: who pushed it, and its turn
   * in a chain. Null when the event built no commit.
   */
  deliveredRecord(event: StoredEvent, targetId: string): ChainRecord | null {
    const env = event.envelope;
    const heads = deliveredHeads(env);
    if (heads.length === 0) return null;
    const scope = this.keys.repoScope(event.sourceId, env.repository, event.id);
    const commitKey = (commit: string) => this.keys.loopCommit({ ...scope, targetId, commit });
    const parents = env.refs.length > 0 ? chainParents(env) : [];
    return {
      keys: [...heads.map(commitKey), ...parents.map(commitKey)],
      heads: heads.length,
      actor: actorDigest(env.actor),
      ttl: this.loop.chain.memory,
      receivedAt: event.receivedAt,
    };
  }

  private result(inputs: JobGuard, reply: Reply, env: Envelope, headMessage?: string): GuardResult {
    const [code, a, b] = reply;
    const actor = inputs.actorName ?? 'unknown';
    switch (Number(code)) {
      case 1: {
        const { count, window } = this.loop.maxTriggersPerRef;
        // Evidence is stored with the event and read by the console: its unit stays in the name.
        const windowSeconds = window / 1000;
        return {
          verdict: 'ref-rate',
          evidence: { rule: 'ref-rate', actor, ref: inputs.refs[Number(a) - 1] ?? '-', count, windowSeconds },
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
            parentCommit: inputs.parents?.[Number(a) - 1] ?? '-',
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
        if (!inputs.staticVerdict) return { verdict: null };
        return { verdict: inputs.staticVerdict, evidence: fixed?.evidence ?? { rule: inputs.staticVerdict } };
      }
      default:
        return { verdict: null };
    }
  }

  /** The Redis rules' keys (the event's shard holds every one: one slot on a cluster) and arguments. */
  private plan(
    inputs: JobGuard,
    eventId: string,
    targetId: string,
  ): { keys: string[]; args: (string | number)[] } {
    const scope = this.keys.repoScope(inputs.source, inputs.repository, eventId);
    const allMarks = this.loop.collapseMergePush
      ? inputs.mergeMarks.map((mark) => this.keys.loopMerge({ ...scope, targetId, mark }))
      : [];
    // Held by the static rules: only a push's merge marks are written (its merged PR inherits the verdict), and
    // with none the rules have no key at all.
    const marks = inputs.staticVerdict && inputs.merge ? [] : allMarks;
    const rate = inputs.staticVerdict
      ? []
      : inputs.refs.map((ref) => this.keys.loopRate({ ...scope, targetId, ref, actor: inputs.actor ?? '-' }));
    const chain = inputs.chain && !inputs.staticVerdict && !inputs.merge ? (inputs.parents ?? []) : [];
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
        inputs.merge ? 'merge' : 'push',
        marks.length,
        inputs.staticVerdict ?? '',
        chain.length > 0 ? (inputs.actor ?? '-') : '',
        this.loop.chain.maxTurns,
        inputs.receivedAt,
      ],
    };
  }
}
