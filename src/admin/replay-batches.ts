import { randomUUID } from 'node:crypto';
import { RelayError } from '../errors/index.js';
import type { AdminDeps } from './admin-deps.js';
import { parseState } from './event-view.js';

/** Where one replayed delivery stands: sent and answered well, dead again, or not settled yet. */
export type ReplayOutcome = 'delivered' | 'failed-again' | 'waiting';

export interface ReplayBatchStatus {
  batch: string;
  startedAt: string;
  by: string;
  total: number;
  delivered: number;
  failedAgain: number;
  waiting: number;
  done: boolean;
  /** The first few that failed again, for the summary. */
  failures: { id: string; reason?: string }[];
}

const ID = /^[A-Za-z0-9-]{1,64}$/;
const MEMBER = /^([A-Za-z0-9-]{1,64})\.([A-Za-z0-9_-]{1,64})/;
const FAILURES_SHOWN = 20;

/**
 * A bulk replay's record, so that the console and `dlq replay --wait` can follow it to an outcome: the ids
 * replayed and when. The outcome is read from the deliveries' own states, never kept twice.
 */
export class ReplayBatches {
  constructor(private readonly deps: AdminDeps) {}

  /** `startedAt`: taken before the first replay, so a delivery that settles at once still counts as this batch's. */
  async create(ids: string[], by: string, startedAt: number): Promise<string> {
    const batch = randomUUID();
    const key = this.deps.keys.replayBatch(batch);
    await this.deps.redis
      .multi()
      .hset(key, 'at', String(startedAt), 'by', by, 'ids', JSON.stringify(ids))
      .pexpire(key, this.deps.config.retention.events)
      .exec();
    return batch;
  }

  async status(batch: string): Promise<ReplayBatchStatus> {
    const [at, by, idsRaw] = ID.test(batch)
      ? await this.deps.redis.hmget(this.deps.keys.replayBatch(batch), 'at', 'by', 'ids')
      : [null, null, null];
    if (!at || !idsRaw) throw new RelayError('NOT_FOUND', 'no such replay (unknown or expired)');
    const startedAt = Number(at);
    const ids = JSON.parse(idsRaw) as string[];
    const counts = { delivered: 0, failedAgain: 0, waiting: 0 };
    const failures: ReplayBatchStatus['failures'] = [];
    const pipeline = this.deps.redis.pipeline();
    const parsed = ids.map((id) => MEMBER.exec(id));
    for (const m of parsed) if (m) pipeline.hget(this.deps.keys.event(m[1]!), `t:${m[2]}`);
    const answers = (await pipeline.exec()) ?? [];
    let n = 0;
    for (const [i, m] of parsed.entries()) {
      if (!m) continue;
      const state = parseState(answers[n++]?.[1] as string | null);
      const outcome = outcomeOf(state, startedAt);
      if (outcome === 'delivered') counts.delivered += 1;
      else if (outcome === 'failed-again') {
        counts.failedAgain += 1;
        if (failures.length < FAILURES_SHOWN)
          failures.push({ id: ids[i]!, ...(state?.reason ? { reason: state.reason } : {}) });
      } else counts.waiting += 1;
    }
    return {
      batch,
      startedAt: new Date(startedAt).toISOString(),
      by: by ?? 'unknown',
      total: ids.length,
      ...counts,
      done: counts.waiting === 0,
      failures,
    };
  }
}

function outcomeOf(state: ReturnType<typeof parseState>, since: number): ReplayOutcome {
  if (!state || state.updatedAt < since) return 'waiting';
  if (state.state === 'delivered') return 'delivered';
  if (state.state === 'dead') return 'failed-again';
  return 'waiting';
}
