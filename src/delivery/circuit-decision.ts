/*
 * The circuit breaker's decisions that need no Redis: what a state read means for a job, and what each process
 * remembers between reads. The shared state itself (consecutive failures, open until, probe until) is kept and
 * changed atomically in Redis by circuit-breaker.ts.
 */

export type CircuitCheck =
  | { state: 'closed' }
  | { state: 'open'; waitMs: number }
  /** Half-open: another delivery is probing; wait for its answer. */
  | { state: 'probing'; waitMs: number }
  /** Half-open: this delivery is the probe. */
  | { state: 'probe' };

// A closed circuit is re-read at most this often per process: the check costs a round trip per job otherwise.
export const CLOSED_CACHE_MS = 500;

/** The check script's reply `{code, wait ms, fails}`: 0 closed, 1 open, 2 probing, 3 this delivery probes. */
export function circuitCheckOf(code: number, waitMs = 0): CircuitCheck {
  if (code === 0) return { state: 'closed' };
  if (code === 1) return { state: 'open', waitMs };
  if (code === 2) return { state: 'probing', waitMs };
  return { state: 'probe' };
}

/**
 * How long a job the breaker holds back waits (it goes back without using an attempt, and the target's queue
 * stops fetching for that long); undefined when it may be sent. Never under 50 ms, so a circuit about to close
 * is not polled in a loop.
 */
export function circuitWaitMs(check: CircuitCheck): number | undefined {
  return check.state === 'open' || check.state === 'probing' ? Math.max(check.waitMs, 50) : undefined;
}

/**
 * What one process remembers of a target's circuit: a closed read is trusted for CLOSED_CACHE_MS, and a success
 * is written to Redis only when there may be something to reset (a failure counted, or a circuit seen not
 * closed), so a healthy target costs no write per delivery.
 */
export class CircuitMemory {
  private closedUntil = 0;
  private dirty = false;

  /** Whether a check at `now` can be answered `closed` without reading Redis. */
  closedAt(now: number): boolean {
    return now < this.closedUntil;
  }

  /** A state read at `now` (`fails`: consecutive failures counted so far). */
  read(check: CircuitCheck, fails: number, now: number): void {
    if (check.state === 'closed') {
      this.closedUntil = now + CLOSED_CACHE_MS;
      if (fails > 0) this.dirty = true;
      return;
    }
    this.closedUntil = 0;
    this.dirty = true;
  }

  failed(): void {
    this.dirty = true;
    this.closedUntil = 0;
  }

  /** Whether a success must reset the shared state; true once, until something makes it dirty again. */
  takeReset(): boolean {
    const reset = this.dirty;
    this.dirty = false;
    return reset;
  }
}
