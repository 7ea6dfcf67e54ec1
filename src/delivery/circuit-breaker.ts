import type { TargetConfig } from '../config/types.js';
import { LuaScript } from '../queue/lua-script.js';
import type { RedisClient } from '../queue/redis-connection.js';
import { type CircuitCheck, CircuitMemory, circuitCheckOf } from './circuit-decision.js';

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

export type { CircuitCheck } from './circuit-decision.js';

const STATE_TTL_MS = 7 * 86_400_000;

export class CircuitBreaker {
  private readonly memory = new CircuitMemory();

  constructor(
    private readonly redis: RedisClient,
    private readonly key: string,
    private readonly target: TargetConfig,
    private readonly onChange: (open: boolean) => void = () => {},
  ) {}

  async check(now = Date.now()): Promise<CircuitCheck> {
    if (this.memory.closedAt(now)) return { state: 'closed' };
    const probeTtl = this.target.timeout + 1000;
    const [code, waitMs, fails] = (await CHECK.run(this.redis, [this.key], [now, probeTtl])) as number[];
    const check = circuitCheckOf(code ?? 0, waitMs ?? 0);
    this.memory.read(check, fails ?? 0, now);
    return check;
  }

  /** A retryable failure (5xx, 429, timeout, connection error). Returns the cooldown if the circuit opened. */
  async failure(now = Date.now()): Promise<number> {
    this.memory.failed();
    const { failureThreshold, cooldown } = this.target.circuit;
    const opened = (await FAILURE.run(
      this.redis,
      [this.key],
      [now, failureThreshold, cooldown, STATE_TTL_MS],
    )) as number;
    if (opened > 0) this.onChange(true);
    return opened;
  }

  /** The target answered (any non-retryable answer counts: it is up). Closes the circuit, resets the count. */
  async success(): Promise<void> {
    if (!this.memory.takeReset()) return;
    const closed = (await SUCCESS.run(this.redis, [this.key], [])) as number;
    if (closed) this.onChange(false);
  }
}
