import type { Config } from '../config/types.js';
import { RelayError } from '../errors/index.js';
import { type Filter, hasFilter, parseFilter } from './filters.js';

export interface BulkRequest {
  filter: Filter;
  ids?: string[];
  dryRun: boolean;
  fresh: boolean;
}

/**
 * The body of a bulk action: filter keys at the top level or under `filter`, or an explicit `ids` list.
 * Something must narrow it down (FILTER_REQUIRED): there is no accidental replay-everything.
 */
export function parseBulk(body: unknown, config: Config, extraQuery?: Record<string, unknown>): BulkRequest {
  if (body !== undefined && body !== null && (typeof body !== 'object' || Array.isArray(body)))
    throw new RelayError('BAD_REQUEST', 'body must be a JSON object');
  const b = (body ?? {}) as Record<string, unknown>;
  if (
    b.filter !== undefined &&
    (typeof b.filter !== 'object' || b.filter === null || Array.isArray(b.filter))
  )
    throw new RelayError('BAD_REQUEST', 'filter must be an object');
  const filter = parseFilter(
    { ...extraQuery, ...b, ...(b.filter as Record<string, unknown> | undefined) },
    config,
  );
  let ids: string[] | undefined;
  if (b.ids !== undefined) {
    if (!Array.isArray(b.ids) || b.ids.length === 0 || b.ids.some((i) => typeof i !== 'string'))
      throw new RelayError('BAD_REQUEST', 'ids must be a non-empty array of strings');
    ids = b.ids as string[];
  }
  for (const flag of ['dryRun', 'fresh'] as const)
    if (b[flag] !== undefined && typeof b[flag] !== 'boolean')
      throw new RelayError('BAD_REQUEST', `${flag} must be a boolean`);
  if (!ids && !hasFilter(filter)) throw new RelayError('FILTER_REQUIRED');
  if (ids && hasFilter(filter)) throw new RelayError('BAD_REQUEST', 'give either ids or a filter, not both');
  return { filter, ...(ids ? { ids } : {}), dryRun: b.dryRun === true, fresh: b.fresh === true };
}

export interface BulkOutcome {
  dryRun: boolean;
  matched: number;
  done: string[];
  failed: { id: string; error: string; message: string }[];
}

/** What a bulk action answers; the count acted on is named after the action (`wouldBe` on a dry run). */
export interface BulkAnswer {
  dryRun: boolean;
  matched: number;
  replayed?: number;
  purged?: number;
  released?: number;
  discarded?: number;
  wouldBe?: number;
  ids: string[];
  failed: BulkOutcome['failed'];
}

export function bulkAnswer(
  o: BulkOutcome,
  verb: 'replayed' | 'purged' | 'released' | 'discarded',
): BulkAnswer {
  return {
    dryRun: o.dryRun,
    matched: o.matched,
    [o.dryRun ? 'wouldBe' : verb]: o.done.length,
    ids: o.done.slice(0, 1000),
    failed: o.failed,
  };
}

export async function runBulk<T extends { id: string }>(
  items: T[],
  dryRun: boolean,
  act: (item: T) => Promise<unknown>,
): Promise<BulkOutcome> {
  const outcome: BulkOutcome = { dryRun, matched: items.length, done: [], failed: [] };
  if (dryRun) {
    outcome.done = items.map((i) => i.id);
    return outcome;
  }
  // One at a time: a bulk replay of thousands must not flood Redis or the target's queue in one burst.
  for (const item of items) {
    try {
      await act(item);
      outcome.done.push(item.id);
    } catch (err) {
      const code = err instanceof RelayError ? err.code : 'INTERNAL';
      outcome.failed.push({
        id: item.id,
        error: code,
        message: err instanceof RelayError ? err.message : 'failed',
      });
    }
  }
  return outcome;
}
