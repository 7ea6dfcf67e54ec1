import picomatch from 'picomatch';
import type { Config } from '../config/types.js';
import { RelayError } from '../errors/index.js';
import { type AttemptRecord, DELIVERY_STATES, type DeliveryState } from '../queue/delivery-state.js';

/** The filter language shared by events, dead letters and suppressed deliveries (query string or JSON body). */
export interface Filter {
  target?: string;
  source?: string;
  /** Repository `workspace/slug` or `PROJECT/slug`; a glob (`acme/*`). */
  repo?: string;
  /** Bitbucket event key; a glob (`pullrequest:*`). */
  eventKey?: string;
  /** Status class of the last attempt: `4xx`, `5xx`, `timeout`, `error`, or an exact status like `503`. */
  status?: string;
  state?: FilterState;
  /** Branch or tag name of any changed ref (or a pull request's source/destination); a glob (`release/*`). */
  branch?: string;
  /** Prefix of the head commit or of any changed ref's new hash (at least 4 hex digits). */
  commit?: string;
  /** Actor name, uuid or account id; a glob. */
  actor?: string;
  /** Bitbucket's delivery id (X-Request-UUID on Cloud, X-Request-Id on Data Center). */
  deliveryId?: string;
  /** The relay's event id. */
  eventId?: string;
  /** Substring of the loop-guard reason (suppressed) or dead-letter reason. */
  reason?: string;
  /** Epoch ms; event received at or after. */
  since?: number;
  /** Epoch ms; event received before. */
  until?: number;
}

export const FILTER_KEYS = [
  'target',
  'source',
  'repo',
  'branch',
  'commit',
  'actor',
  'eventKey',
  'deliveryId',
  'eventId',
  'status',
  'state',
  'reason',
  'since',
  'until',
] as const;
/** `no-route`: an event that matched no route (it has no deliveries); the others are delivery states. */
export const NO_ROUTE = 'no-route';
/** The event states before any delivery (see EventState): not routed yet, or a second hook's copy. */
export const EVENT_STATES = ['received', 'duplicate'] as const;
export type FilterState = DeliveryState | typeof NO_ROUTE | (typeof EVENT_STATES)[number];
export const FILTER_STATES: readonly FilterState[] = [...DELIVERY_STATES, NO_ROUTE, ...EVENT_STATES];
const STATES = FILTER_STATES;
// Paging, not filtering: the other query parameters a list accepts.
const PAGING_KEYS = ['limit', 'cursor'];
const STATUS_CLASS = /^(?:[1-5]xx|timeout|error|[1-5]\d\d)$/;
const DURATION = /^(\d+)(ms|s|m|h|d|w)$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1e3, m: 6e4, h: 3.6e6, d: 8.64e7, w: 6.048e8 };

/** A point in time: epoch ms, an ISO date, or a duration back from now (`2h` = two hours ago). */
export function parseTime(value: unknown, name: string, now = Date.now()): number {
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  const text = String(value).trim();
  if (/^\d{10,}$/.test(text)) return Number(text);
  const d = DURATION.exec(text);
  if (d) return now - Number(d[1]) * UNIT_MS[d[2]!]!;
  const parsed = Date.parse(text);
  if (Number.isNaN(parsed))
    throw new RelayError('BAD_REQUEST', `${name} must be an ISO time, epoch ms or a duration like 2h`);
  return parsed;
}

/** Validates a filter against the config; unknown keys and values are a 400, not an empty result. */
export function parseFilter(raw: Record<string, unknown> | undefined, config: Config): Filter {
  const f: Filter = {};
  if (!raw) return f;
  for (const key of FILTER_KEYS) {
    const value = raw[key];
    if (value === undefined || value === null || value === '') continue;
    switch (key) {
      case 'since':
      case 'until':
        f[key] = parseTime(value, key);
        break;
      case 'target':
        if (!config.targets.some((t) => t.id === value))
          throw new RelayError('BAD_REQUEST', `unknown target: ${String(value)}`);
        f.target = String(value);
        break;
      case 'source':
        if (!config.sources.some((s) => s.id === value))
          throw new RelayError('BAD_REQUEST', `unknown source: ${String(value)}`);
        f.source = String(value);
        break;
      case 'state':
        if (!STATES.includes(value as FilterState))
          throw new RelayError('BAD_REQUEST', `state must be one of: ${STATES.join(', ')}`);
        f.state = value as FilterState;
        break;
      case 'commit': {
        const c = String(value).toLowerCase();
        if (!/^[0-9a-f]{4,40}$/.test(c))
          throw new RelayError('BAD_REQUEST', 'commit must be 4 to 40 hex digits (a prefix)');
        f.commit = c;
        break;
      }
      case 'status': {
        const s = String(value).toLowerCase();
        if (!STATUS_CLASS.test(s))
          throw new RelayError('BAD_REQUEST', 'status must be 4xx, 5xx, timeout, error or an HTTP status');
        f.status = s;
        break;
      }
      default:
        f[key] = String(value);
    }
  }
  return f;
}

/**
 * A list's query string: the filter plus paging. An unknown parameter is a 400 (a misspelt `?brnach=` must not
 * silently answer everything).
 */
export function parseQueryFilter(query: Record<string, unknown> | undefined, config: Config): Filter {
  for (const key of Object.keys(query ?? {}))
    if (!(FILTER_KEYS as readonly string[]).includes(key) && !PAGING_KEYS.includes(key))
      throw new RelayError('UNKNOWN_FILTER', `unknown filter: ${key} (known: ${FILTER_KEYS.join(', ')})`);
  return parseFilter(query, config);
}

export function hasFilter(f: Filter): boolean {
  return Object.keys(f).length > 0;
}

export function describeFilter(f: Filter): Record<string, unknown> {
  return {
    ...f,
    ...(f.since !== undefined ? { since: new Date(f.since).toISOString() } : {}),
    ...(f.until !== undefined ? { until: new Date(f.until).toISOString() } : {}),
  };
}

/** `503` → `5xx`; no status: `timeout` when the error says so, else `error` (refused, reset, DNS…). */
export function statusClass(
  attempt: Pick<AttemptRecord, 'status' | 'error'> | undefined,
): string | undefined {
  if (!attempt) return undefined;
  if (attempt.status !== undefined) return `${Math.floor(attempt.status / 100)}xx`;
  if (attempt.error) return /time[d\s-]*out|timeout/i.test(attempt.error) ? 'timeout' : 'error';
  return undefined;
}

export function matchesStatus(
  wanted: string,
  attempt: Pick<AttemptRecord, 'status' | 'error'> | undefined,
): boolean {
  if (!attempt) return false;
  if (/^\d{3}$/.test(wanted)) return attempt.status === Number(wanted);
  return statusClass(attempt) === wanted;
}

const globs = new Map<string, (s: string) => boolean>();
export function globMatch(pattern: string, value: string | null | undefined): boolean {
  if (value === null || value === undefined) return false;
  let m = globs.get(pattern);
  if (!m) {
    m = picomatch(pattern, { dot: true });
    if (globs.size > 200) globs.clear();
    globs.set(pattern, m);
  }
  return m(value);
}

export function parseLimit(value: unknown, fallback = 50, max = 500): number {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > max)
    throw new RelayError('BAD_REQUEST', `limit must be an integer 1..${max}`);
  return n;
}

/** An offset cursor (the suppressed and quarantined lists). */
export function parseOffset(value: unknown): number {
  if (value === undefined || value === '') return 0;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new RelayError('BAD_REQUEST', 'cursor is not valid');
  return n;
}

/** Cursors are opaque to clients: base64url JSON of where the previous page stopped. */
export function encodeCursor(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

export function decodeCursor<T>(value: unknown, check: (v: unknown) => v is T): T | undefined {
  if (value === undefined || value === '') return undefined;
  try {
    const parsed: unknown = JSON.parse(Buffer.from(String(value), 'base64url').toString('utf8'));
    if (check(parsed)) return parsed;
  } catch {
    // fall through
  }
  throw new RelayError('BAD_REQUEST', 'cursor is not valid');
}
