import type { TargetConfig } from '../config/types.js';
import { LuaScript } from '../queue/lua-script.js';
import type { RedisClient } from '../queue/redis-connection.js';

/*
 * The breaker's state lives in one Redis hash per target, so every worker process sees the same circuit:
 * `fails` (consecutive retryable failures), `openUntil` (ms epoch; 0/absent = closed) and `probeUntil` (while one
 * probe is out after the cooldown). Opening also sets BullMQ's rate-limit key of the target's queue for the
 * cooldown, so no worker anywhere even fetches a job for that target meanwhile; other targets' queues are
 * untouched.
 */
const CHECK = LuaScript.fromFile('circuit-check');
const FAILURE = LuaScript.fromFile('circuit-failure');
const SUCCESS = LuaScript.fromFile('circuit-success');

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

  constructor(
    private readonly redis: RedisClient,
    private readonly key: string,
    private readonly target: TargetConfig,
    private readonly onChange: (open: boolean) => void = () => {},
  ) {}

  async check(now = Date.now()): Promise<CircuitCheck> {
    if (now < this.closedUntil) return { state: 'closed' };
    const probeTtl = this.target.timeoutMs + 1000;
    const [state, waitMs, fails] = (await CHECK.run(this.redis, [this.key], [now, probeTtl])) as number[];
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
    const { failureThreshold, cooldownMs } = this.target.circuit;
    const opened = (await FAILURE.run(
      this.redis,
      [this.key],
      [now, failureThreshold, cooldownMs, STATE_TTL_MS],
    )) as number;
    if (opened > 0) this.onChange(true);
    return opened;
  }

  /** The target answered (any non-retryable answer counts: it is up). Closes the circuit, resets the count. */
  async success(): Promise<void> {
    if (!this.dirty) return;
    this.dirty = false;
    const closed = (await SUCCESS.run(this.redis, [this.key], [])) as number;
    if (closed) this.onChange(false);
  }
}
