import type { TargetConfig } from '../config/types.js';
import type { RedisClient } from '../queue/redis-connection.js';
import { type CircuitCheck, CircuitMemory, circuitCheckOf } from './circuit-decision.js';
import { luaScript } from './scripts.js';

export type { CircuitCheck } from './circuit-decision.js';

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

const STATE_TTL_MS = 7 * 86_400_000;

export class CircuitBreaker {
  private readonly memory = new CircuitMemory();
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
    if (this.memory.closedAt(now)) return { state: 'closed' };
    const probeTtl = this.target.timeoutMs + 1000;
    const [code, waitMs, fails] = (await this.run.check([this.key], [now, probeTtl])) as number[];
    const check = circuitCheckOf(code ?? 0, waitMs ?? 0);
    this.memory.read(check, fails ?? 0, now);
    return check;
  }

  /** A retryable failure (5xx, 429, timeout, connection error). Returns the cooldown if the circuit opened. */
  async failure(now = Date.now()): Promise<number> {
    this.memory.failed();
    const { failureThreshold, cooldownMs } = this.target.circuit;
    const opened = (await this.run.fail(
      [this.key],
      [now, failureThreshold, cooldownMs, STATE_TTL_MS],
    )) as number;
    if (opened > 0) this.onChange(true);
    return opened;
  }

  /** The target answered (any non-retryable answer counts: it is up). Closes the circuit, resets the count. */
  async success(): Promise<void> {
    if (!this.memory.takeReset()) return;
    const closed = (await this.run.ok([this.key], [])) as number;
    if (closed) this.onChange(false);
  }
}
