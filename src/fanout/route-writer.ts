import type { Redis } from 'ioredis';
import type { Config, TargetConfig } from '../config/types.js';
import { notApplicable } from '../delivery/applicable.js';
import { withShard } from '../ingress/event-id.js';
import { encodeMeta } from '../queue/event-meta.js';
import type { EventMeta, EventState, EventStore, StoredEvent } from '../queue/event-store.js';
import type { Keys } from '../queue/keys.js';
import { LuaScript } from '../queue/lua-script.js';
import type { RedisClient } from '../queue/redis-connection.js';
import { type DeliveryJobData, deliveryJobId, idempotencyKey } from '../relay/job-types.js';
import type { ContentDedupeKey } from './content-dedupe.js';
import type { Decision } from './decide.js';

const ROUTE_SCRIPT = LuaScript.fromFile('route-event');
const MARK_SCRIPT = LuaScript.fromFile('mark-routed');

/** Bytes of heap per character of JSON, roughly, once parsed into objects and strings. */
const PARSED_PER_JSON_CHAR = 4;

/** The consumer group of every shard's inbox: all fan-out processes share it, each entry goes to one. */
export const FAN_OUT_GROUP = 'fanout';

/** A received event as the fan-out read it: its hash's fields as stored, and the inbox entry that named it. */
export interface InboxEvent {
  id: string;
  /** The stream entry id in its shard's inbox. */
  entry: string;
  fields: Record<string, Buffer>;
}

export type RouteOutcome =
  | { state: 'routed' | 'quarantined'; routedId: string; repeated: number[] }
  | { state: 'duplicate'; duplicateOf: string }
  /** Decided before (a re-run after a crash, or a claim of an entry another consumer had finished). */
  | { state: 'decided'; previous: EventState; duplicateOf?: string }
  /** The received event expired before it was routed. */
  | { state: 'gone' };

/**
 * Writes the fan-out's decision: route-event.lua in the shard the event is routed in (its jobs, content dedupe
 * keys and the loop guard's keys share the repository's slot), and on a cluster, when that is not the inbox's
 * shard, mark-routed.lua in the inbox's. One script call per event without a cluster.
 */
export class RouteWriter {
  private readonly targets: Map<string, TargetConfig>;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    private readonly config: Config,
    private readonly store: EventStore,
  ) {
    this.targets = new Map(config.targets.map((t) => [t.id, t]));
  }

  /**
   * `received`: the event as decoded, whose routed record is handed to this process's delivery workers
   * (local-handoff.ts) when they run here.
   */
  async write(
    event: InboxEvent,
    meta: Omit<EventMeta, 'targets'>,
    decision: Decision,
    routedShard: number,
    content: ContentDedupeKey[],
    received?: StoredEvent,
  ): Promise<RouteOutcome> {
    const inboxShard = this.keys.shardOfId(event.id);
    const copy = routedShard !== inboxShard;
    const routedId = copy ? withShard(event.id, routedShard) : event.id;
    const now = Date.now();
    const keys = [
      this.keys.event(routedId),
      this.keys.eventIndexOf(routedShard),
      this.keys.quarantinedOf(routedShard),
      this.keys.inbox(routedShard),
    ];
    const field = (name: string) => event.fields[name] ?? '';
    // The meta as routed, and as a duplicate (no targets: it has no jobs), from one serialisation. Only the
    // routed one is compressed: the duplicate's is stored for the rare duplicate alone (decodeMeta reads both).
    const untargeted = JSON.stringify(meta).slice(0, -1);
    const withTargets = (targets: string[]) => `${untargeted},"targets":${JSON.stringify(targets)}}`;
    const args: (string | number | Buffer)[] = [
      routedId,
      now,
      meta.receivedAt,
      this.config.retention.events + this.config.retention.deadLetters,
      encodeMeta(withTargets(decision.targets)),
      withTargets([]),
      decision.quarantine === undefined ? 'routed' : 'quarantined',
      decision.quarantine ?? '',
      content.length,
      copy ? '' : event.entry,
      FAN_OUT_GROUP,
      copy ? '1' : '',
      copy ? field('hdr') : '',
      copy ? field('enc') : '',
      copy ? field('body') : '',
      copy ? event.id : '',
    ];
    for (const c of content) {
      keys.push(c.key);
      args.push(c.tag, c.ttlSeconds);
    }
    for (const targetId of decision.targets) {
      const jobQueue = this.store.jobQueue(targetId, routedShard);
      if (!jobQueue) throw new Error(`no queue for target ${targetId} in shard ${routedShard}`);
      const jobId = deliveryJobId(routedId, targetId);
      // The Idempotency-Key is the id the ingress answered with, wherever the event was routed.
      const data: DeliveryJobData = {
        eventId: routedId,
        targetId,
        idempotencyKey: idempotencyKey(event.id, targetId),
        loopGuard: decision.guard,
      };
      keys.push(...jobQueue.keys, this.keys.job(targetId, jobId, routedShard));
      args.push(
        jobId,
        decision.envelope.eventKey,
        JSON.stringify(data),
        JSON.stringify({ ...jobQueue.opts, jobId }),
      );
    }
    const reply = (await ROUTE_SCRIPT.run(this.redis as Redis, keys, args)) as string[];
    const outcome = routeOutcome(reply, routedId, decision);
    if (copy) await this.mark(event, outcome, routedId, now);
    else if (received && outcome.state === 'routed') {
      this.handOver(received, decision, outcome, now, untargeted.length);
    }
    return outcome;
  }

  /**
   * What decode() makes of the routed record route-event.lua wrote, for the delivery workers of this process:
   * the received event with the routing's envelope, targets and state. Kept for one take per target that will
   * read it: a target the event does not apply to ends its job before reading anything.
   */
  private handOver(
    received: StoredEvent,
    decision: Decision,
    outcome: { repeated: number[] },
    routedAt: number,
    metaChars: number,
  ): void {
    const handoff = this.store.routedHandoff;
    if (!handoff) return;
    const eventKey = decision.envelope.eventKey;
    const readers = decision.targets.filter((id) => {
      const target = this.targets.get(id);
      return target !== undefined && notApplicable(target, eventKey) === null;
    }).length;
    if (readers === 0) return;
    const refs = decision.envelope.refs;
    const envelope =
      outcome.repeated.length > 0
        ? { ...decision.envelope, repeatedRefs: outcome.repeated.flatMap((i) => refs[i]?.name ?? []) }
        : decision.envelope;
    const routed: StoredEvent = {
      ...received,
      envelope,
      targets: decision.targets,
      state: 'routed',
      routedAt,
    };
    // The envelope as objects takes a few times its JSON's size: counted so, the bound holds for pushes with
    // many commits too.
    const bytes = received.body.length + PARSED_PER_JSON_CHAR * metaChars;
    handoff.put(received.id, routed, bytes, readers);
  }

  /** The received event moved (or, a duplicate, marked) in its own shard, its inbox entry acknowledged there. */
  private async mark(event: InboxEvent, outcome: RouteOutcome, routedId: string, at: number): Promise<void> {
    const shard = this.keys.shardOfId(event.id);
    const state = outcome.state === 'decided' ? outcome.previous : outcome.state;
    const duplicateOf =
      outcome.state === 'duplicate' || outcome.state === 'decided' ? (outcome.duplicateOf ?? '') : '';
    await MARK_SCRIPT.run(
      this.redis as Redis,
      [this.keys.event(event.id), this.keys.routedAs(event.id), this.keys.inbox(shard)],
      [
        event.id,
        state === 'gone' ? 'routed' : state,
        state === 'routed' || state === 'quarantined' ? routedId : '',
        duplicateOf,
        at,
        event.entry,
        FAN_OUT_GROUP,
        this.config.retention.events + this.config.retention.deadLetters,
      ],
    );
  }

  /** Only acknowledges (and deletes) an inbox entry: its event expired before it was routed. */
  async drop(shard: number, entry: string): Promise<void> {
    const inbox = this.keys.inbox(shard);
    await this.redis.multi().xack(inbox, FAN_OUT_GROUP, entry).xdel(inbox, entry).exec();
  }
}

function routeOutcome(reply: string[], routedId: string, decision: Decision): RouteOutcome {
  const [kind, detail, extra] = reply;
  if (kind === 'duplicate') return { state: 'duplicate', duplicateOf: detail! };
  if (kind === 'gone') return { state: 'gone' };
  if (kind === 'decided') {
    return { state: 'decided', previous: detail as EventState, ...(extra ? { duplicateOf: extra } : {}) };
  }
  return {
    state: decision.quarantine === undefined ? 'routed' : 'quarantined',
    routedId,
    repeated: detail ? detail.split(',').map((n) => Number(n) - 1) : [],
  };
}
