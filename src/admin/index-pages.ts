import type { RedisClient } from '../queue/redis-connection.js';

/** Where a page of a sorted-set index stopped: the last entry's score and member. */
export interface IndexPosition {
  f: number;
  id: string;
}

export const isIndexPosition = (v: unknown): v is IndexPosition =>
  typeof v === 'object' &&
  v !== null &&
  typeof (v as IndexPosition).f === 'number' &&
  typeof (v as IndexPosition).id === 'string';

const BATCH = 200;
// A filter that matches little must not make one page read the whole index: the page ends early and its
// cursor says where to go on.
const MAX_SCANNED_PER_PAGE = 5000;

/**
 * A ZSET index (dead letters, suppressed deliveries), newest first, after a position, a batch at a time, each
 * entry loaded (null: skip it). Shared by the lists and the bulk actions' selection.
 */
export async function* walkIndex<T>(
  redis: RedisClient,
  key: string,
  load: (member: string, score: number) => Promise<T | null>,
  after?: IndexPosition,
): AsyncGenerator<{ item: T; at: IndexPosition }[]> {
  let max = after ? String(after.f) : '+inf';
  let skipAt = after;
  for (;;) {
    const raw = await redis.zrevrangebyscore(key, max, '-inf', 'WITHSCORES', 'LIMIT', 0, BATCH);
    const entries: IndexPosition[] = [];
    for (let n = 0; n < raw.length; n += 2) {
      const entry = { id: raw[n]!, f: Number(raw[n + 1]) };
      // Same score as where the last batch stopped: members sort descending, the unseen ones are smaller.
      if (skipAt && entry.f === skipAt.f && entry.id >= skipAt.id) continue;
      entries.push(entry);
    }
    const loaded = await Promise.all(entries.map((e) => load(e.id, e.f)));
    yield entries.flatMap((at, i) => (loaded[i] === null ? [] : [{ item: loaded[i] as T, at }]));
    const last = entries.at(-1);
    if (raw.length / 2 < BATCH || !last) return;
    max = String(last.f);
    skipAt = last;
  }
}

/** One page of matching entries and, when the index goes on, where the next page starts. */
export async function indexPage<T>(
  walk: AsyncGenerator<{ item: T; at: IndexPosition }[]>,
  matches: (item: T) => boolean,
  limit: number,
): Promise<{ items: T[]; next?: IndexPosition }> {
  const items: T[] = [];
  let scanned = 0;
  for await (const batch of walk) {
    for (const { item, at } of batch) {
      scanned += 1;
      if (matches(item)) items.push(item);
      if (items.length === limit || scanned >= MAX_SCANNED_PER_PAGE) return { items, next: at };
    }
  }
  return { items };
}

/** Every matching entry (bulk actions and their preview). */
export async function indexAll<T>(
  walk: AsyncGenerator<{ item: T; at: IndexPosition }[]>,
  matches: (item: T) => boolean,
): Promise<T[]> {
  const out: T[] = [];
  for await (const batch of walk) for (const { item } of batch) if (matches(item)) out.push(item);
  return out;
}
