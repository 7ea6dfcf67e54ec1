import type { TargetConfig } from '../config/types.js';
import type { RedisClient } from '../queue/redis-connection.js';
import { luaScript } from './scripts.js';

/*
 * The breaker's state lives in one Redis hash per target, so every worker process sees the same circuit:
 * `fails` (consecutive retryable failures), `openUntil` (ms epoch; 0/absent = closed) and `probeUntil` (while one
 * probe is out after the cooldown). Opening also sets BullMQ's rate-limit key of the target's queue for the
 * cooldown, so no worker anywhere even fetches a job for that target meanwhile; other targets' queues are
 * untouched.
 */
const CHECK = `
local openUntil = tonumber(redis.call('HGET', KEYS[1], 'openUntil') or '0')
local fails = tonumber(redis.call('HGET', KEYS[1], 'fails') or '0')
if openUntil == 0 then return {0, 0, fails} end
local now = tonumber(ARGV[1])
if now < openUntil then return {1, openUntil - now, fails} end
local probe = tonumber(redis.call('HGET', KEYS[1], 'probeUntil') or '0')
if probe > now then return {2, probe - now, fails} end
redis.call('HSET', KEYS[1], 'probeUntil', now + tonumber(ARGV[2]))
return {3, 0, fails}`;

const FAIL = `
local now = tonumber(ARGV[1])
local fails = redis.call('HINCRBY', KEYS[1], 'fails', 1)
local openUntil = tonumber(redis.call('HGET', KEYS[1], 'openUntil') or '0')
redis.call('PEXPIRE', KEYS[1], ARGV[4])
if openUntil > 0 or fails >= tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 'openUntil', now + tonumber(ARGV[3]), 'probeUntil', 0)
  return tonumber(ARGV[3])
end
return 0`;

const SUCCESS = `
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('DEL', KEYS[1]) return 1 end
return 0`;

export type CircuitCheck =
  | { state: 'closed' }
  | { state: 'open'; waitMs: number }
  /** Half-open: another delivery is probing; wait for its answer. */
  | { state: 'probing'; waitMs: number }
  /** Half-open: this delivery is the probe. */
  | { state: 'probe' };

// A closed circuit is re-read at most this often per process: the check costs a round trip per job otherwise.
const CLOSED_CACHE_MS = 500;
const STATE_TTL_MS = 7 * 86_400_000;

export class CircuitBreaker {
  private closedUntil = 0;
  private dirty = false;
  private readonly run: {
    check: ReturnType<typeof luaScript>;
    fail: ReturnType<typeof luaScript>;
    ok: ReturnType<typeof luaScript>;
  };

  constructor(
    redis: RedisClient,
    private readonly key: string,
    private readonly target: TargetConfig,
    private readonly onChange: (open: boolean) => void = () => {},
  ) {
    this.run = {
      check: luaScript(redis, 'hrCircuitCheck', CHECK),
      fail: luaScript(redis, 'hrCircuitFail', FAIL),
      ok: luaScript(redis, 'hrCircuitOk', SUCCESS),
    };
  }

  async check(now = Date.now()): Promise<CircuitCheck> {
    if (now < this.closedUntil) return { state: 'closed' };
    const probeTtl = this.target.timeout + 1000;
    const [state, waitMs, fails] = (await this.run.check([this.key], [now, probeTtl])) as number[];
    if (state === 0) {
      this.closedUntil = now + CLOSED_CACHE_MS;
      if ((fails ?? 0) > 0) this.dirty = true;
      return { state: 'closed' };
    }
    this.closedUntil = 0;
    this.dirty = true;
    if (state === 1) return { state: 'open', waitMs: waitMs ?? 0 };
    if (state === 2) return { state: 'probing', waitMs: waitMs ?? 0 };
    return { state: 'probe' };
  }

  /** A retryable failure (5xx, 429, timeout, connection error). Returns the cooldown if the circuit opened. */
  async failure(now = Date.now()): Promise<number> {
    this.dirty = true;
    this.closedUntil = 0;
    const { failureThreshold, cooldown } = this.target.circuit;
    const opened = (await this.run.fail(
      [this.key],
      [now, failureThreshold, cooldown, STATE_TTL_MS],
    )) as number;
    if (opened > 0) this.onChange(true);
    return opened;
  }

  /** The target answered (any non-retryable answer counts: it is up). Closes the circuit, resets the count. */
  async success(): Promise<void> {
    if (!this.dirty) return;
    this.dirty = false;
    const closed = (await this.run.ok([this.key], [])) as number;
    if (closed) this.onChange(false);
  }
}
