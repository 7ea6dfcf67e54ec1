import picomatch from 'picomatch';
import type { Config } from '../config/types.js';
import { RelayError } from '../errors.js';
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
  state?: DeliveryState;
  /** Substring of the loop-guard reason (suppressed) or dead-letter reason. */
  reason?: string;
  /** Epoch ms; event received at or after. */
  since?: number;
  /** Epoch ms; event received before. */
  until?: number;
}

const FILTER_KEYS = [
  'target',
  'source',
  'repo',
  'eventKey',
  'status',
  'state',
  'reason',
  'since',
  'until',
] as const;
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
        if (!DELIVERY_STATES.includes(value as DeliveryState))
          throw new RelayError('BAD_REQUEST', `state must be one of: ${DELIVERY_STATES.join(', ')}`);
        f.state = value as DeliveryState;
        break;
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
