import { describe, expect, it } from 'vitest';
import {
  CircuitMemory,
  CLOSED_CACHE_MS,
  circuitCheckOf,
  circuitWaitMs,
} from '../../src/delivery/circuit-decision.js';

describe('circuit breaker: what a state read means for a job', () => {
  it.each([
    [0, 0, { state: 'closed' }, undefined],
    [1, 4000, { state: 'open', waitMs: 4000 }, 4000],
    [2, 1500, { state: 'probing', waitMs: 1500 }, 1500],
    [3, 0, { state: 'probe' }, undefined],
  ] as const)('code %i, wait %i ms', (code, wait, check, heldFor) => {
    expect(circuitCheckOf(code, wait)).toEqual(check);
    expect(circuitWaitMs(circuitCheckOf(code, wait))).toBe(heldFor);
  });

  it('a circuit about to close holds a job back at least 50 ms, not in a loop', () => {
    expect(circuitWaitMs({ state: 'open', waitMs: 0 })).toBe(50);
    expect(circuitWaitMs({ state: 'probing', waitMs: 3 })).toBe(50);
  });
});

describe('circuit breaker: what a process remembers', () => {
  it('a closed read is trusted for a short while, then read again', () => {
    const memory = new CircuitMemory();
    expect(memory.closedAt(1000)).toBe(false);
    memory.read({ state: 'closed' }, 0, 1000);
    expect(memory.closedAt(1000 + CLOSED_CACHE_MS - 1)).toBe(true);
    expect(memory.closedAt(1000 + CLOSED_CACHE_MS)).toBe(false);
  });

  it('a failure forgets the closed read at once', () => {
    const memory = new CircuitMemory();
    memory.read({ state: 'closed' }, 0, 1000);
    memory.failed();
    expect(memory.closedAt(1001)).toBe(false);
  });

  it('an open or half-open read is never cached', () => {
    const memory = new CircuitMemory();
    memory.read({ state: 'open', waitMs: 100 }, 5, 1000);
    expect(memory.closedAt(1001)).toBe(false);
    memory.read({ state: 'probe' }, 5, 2000);
    expect(memory.closedAt(2001)).toBe(false);
  });

  it('a success resets the shared state only when there may be something to reset, once', () => {
    const healthy = new CircuitMemory();
    healthy.read({ state: 'closed' }, 0, 1000);
    expect(healthy.takeReset()).toBe(false);

    const counted = new CircuitMemory();
    counted.read({ state: 'closed' }, 2, 1000);
    expect(counted.takeReset()).toBe(true);
    expect(counted.takeReset()).toBe(false);

    const failed = new CircuitMemory();
    failed.failed();
    expect(failed.takeReset()).toBe(true);

    const probed = new CircuitMemory();
    probed.read({ state: 'probe' }, 3, 1000);
    expect(probed.takeReset()).toBe(true);
  });
});
