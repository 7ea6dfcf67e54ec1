import { createHash } from 'node:crypto';
import type { RedisClient } from './redis-connection.js';

/**
 * The life of one (event, target) delivery, kept in the event's hash under `t:<targetId>` so that
 * `GET /api/events/:id` is a single HGETALL. Workers write it; the admin API and CLI read it.
 */
/*
 * `not-applicable`: final, neither delivered nor dead: the target does not take this event (see applicable.ts).
 * `quarantined`: an event held back for its shape (src/admin/quarantined.ts) until an operator releases it.
 */
export const DELIVERY_STATES = [
  'pending',
  'delivered',
  'retrying',
  'dead',
  'suppressed',
  'coalesced',
  'not-applicable',
  'quarantined',
] as const;
export type DeliveryState = (typeof DELIVERY_STATES)[number];

export interface AttemptRecord {
  /** 1-based attempt number. */
  n: number;
  /** Epoch ms when the attempt started. */
  at: number;
  /** Duration in ms. */
  ms?: number;
  /** HTTP status, when the target answered. */
  status?: number;
  /** Short error (timeout, connection refused, …) when it did not; never a secret. */
  error?: string;
  trigger?: 'bitbucket' | 'replay' | 'release';
  /** The last request's headers as sent, credentials masked (see recorded-headers.ts). */
  requestHeaders?: Record<string, string>;
  /** The target's answer headers, masked the same way. */
  responseHeaders?: Record<string, string>;
}

export interface TargetState {
  state: DeliveryState;
  attempts: AttemptRecord[];
  /** Loop-guard reason for `suppressed`, classification for `dead` (e.g. `status 410`, `max age`), why `not-applicable`. */
  reason?: string;
  /** `coalesced`: the event id that superseded this one. */
  supersededBy?: string;
  /** A short excerpt of the last response body (max 512 chars), for dead letters. */
  excerpt?: string;
  /** Why the guard held it, or what ordering found (the rule and what it saw: actor, parent commit, counts). */
  evidence?: Evidence;
  updatedAt: number;
}

/** A rule's evidence: the rule's name and the facts it decided on (never a payload's body or a secret). */
export type Evidence = { rule: string } & Record<string, string | number>;

export const TARGET_FIELD_PREFIX = 't:';
const MAX_ATTEMPTS_KEPT = 50;

export function targetField(targetId: string): string {
  return `${TARGET_FIELD_PREFIX}${targetId}`;
}

export async function readTargetState(
  redis: RedisClient,
  eventKey: string,
  targetId: string,
): Promise<TargetState | null> {
  const raw = await redis.hget(eventKey, targetField(targetId));
  return raw ? (JSON.parse(raw) as TargetState) : null;
}

/*
 * One round trip, atomic: read the previous state, keep its attempts (the last MAX_ATTEMPTS_KEPT, counting the new
 * one), write the new state, and only if the event hash still exists (a state write must not resurrect an
 * expired event as a bare hash). The previous attempts are spliced in as the exact bytes JSON.stringify wrote
 * rather than through cjson: cjson would reorder keys, encode an empty array as `{}` and escape `/`, and the
 * stored JSON must stay byte-for-byte what the admin API has always read. ARGV: field, head (`{"state":…,
 * "attempts":[`), the new attempt's JSON or '', tail (`],…,"updatedAt":…}`), max kept. Returns 0 when there was
 * no previous attempt (the caller's own object is then exact), else the JSON written (or that would have been).
 */
const RECORD_ATTEMPT = `
local prev = redis.call('HGET', KEYS[1], ARGV[1])
local kept = {}
if prev then
  local s = string.find(prev, '"attempts":[', 1, true)
  if s then
    local pos = s + 12
    local from = pos
    local depth = 0
    while true do
      local p = string.find(prev, '[\\\\"{}%[%],]', pos)
      if not p then kept = {} break end
      local c = string.sub(prev, p, p)
      if c == '"' then
        local q = p + 1
        while true do
          local r = string.find(prev, '[\\\\"]', q)
          if not r then q = nil break end
          if string.sub(prev, r, r) == '"' then q = r + 1 break end
          q = r + 2
        end
        if not q then kept = {} break end
        pos = q
      elseif c == '{' or c == '[' then
        depth = depth + 1
        pos = p + 1
      elseif c == '}' then
        depth = depth - 1
        pos = p + 1
      elseif c == ']' then
        if depth == 0 then
          if p > from then kept[#kept + 1] = string.sub(prev, from, p - 1) end
          break
        end
        depth = depth - 1
        pos = p + 1
      else
        if depth == 0 then
          kept[#kept + 1] = string.sub(prev, from, p - 1)
          from = p + 1
        end
        pos = p + 1
      end
    end
  end
end
local hadPrevious = #kept > 0
if ARGV[3] ~= '' then kept[#kept + 1] = ARGV[3] end
local max = tonumber(ARGV[5])
local first = 1
if #kept > max then first = #kept - max + 1 end
local json = ARGV[2] .. table.concat(kept, ',', first, #kept) .. ARGV[4]
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], ARGV[1], json) end
if hadPrevious then return json end
return 0`;

/** Record one attempt and the state it leaves the delivery in (attempt history bounded). One round trip. */
export async function recordAttempt(
  redis: RedisClient,
  eventKey: string,
  targetId: string,
  update: {
    state: DeliveryState;
    attempt?: AttemptRecord;
    reason?: string;
    excerpt?: string;
    supersededBy?: string;
    evidence?: Evidence;
  },
): Promise<TargetState> {
  const next: TargetState = {
    state: update.state,
    attempts: update.attempt ? [update.attempt] : [],
    ...(update.reason ? { reason: update.reason } : {}),
    ...(update.excerpt ? { excerpt: update.excerpt.slice(0, 512) } : {}),
    ...(update.supersededBy ? { supersededBy: update.supersededBy } : {}),
    ...(update.evidence ? { evidence: update.evidence } : {}),
    updatedAt: Date.now(),
  };
  // JSON.stringify of `next` is head + attempts + tail; the script splices the previous attempts in between.
  const { state, attempts: _attempts, ...rest } = next;
  const head = `{"state":${JSON.stringify(state)},"attempts":[`;
  const tail = `]${JSON.stringify(rest).replace(/^\{/, ',')}`;
  const written = (await runRecordAttempt(redis, [
    eventKey,
    targetField(targetId),
    head,
    update.attempt ? JSON.stringify(update.attempt) : '',
    tail,
    MAX_ATTEMPTS_KEPT,
  ])) as string | number;
  return typeof written === 'string' ? (JSON.parse(written) as TargetState) : next;
}

const RECORD_ATTEMPT_SHA = createHash('sha1').update(RECORD_ATTEMPT).digest('hex');

/**
 * EVALSHA, and EVAL (which caches the script) when the server does not know it yet. Plain commands rather than
 * ioredis defineCommand, as in lua-script.ts: nothing is defined on the connections the ingress and the admin
 * API share with BullMQ.
 */
async function runRecordAttempt(redis: RedisClient, args: (string | number)[]): Promise<unknown> {
  try {
    return await redis.evalsha(RECORD_ATTEMPT_SHA, 1, ...args);
  } catch (err) {
    if (!(err as Error).message?.startsWith('NOSCRIPT')) throw err;
    return redis.eval(RECORD_ATTEMPT, 1, ...args);
  }
}
