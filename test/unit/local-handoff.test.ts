import { describe, expect, it, vi } from 'vitest';
import { type HandoffResult, LocalHandoff } from '../../src/queue/local-handoff.js';

/** A handoff on a clock the test moves, and what it counted. */
function handoff(bounds: { maxBytes?: number; maxEntries?: number; maxAgeMs?: number } = {}) {
  const clock = { now: 1_000 };
  const counted: Record<HandoffResult, number> = { hit: 0, miss: 0, dropped: 0 };
  const h = new LocalHandoff<string>({
    bounds: { maxBytes: 1000, maxEntries: 10, maxAgeMs: 5000, ...bounds },
    now: () => clock.now,
    count: (result) => counted[result]++,
  });
  return { h, clock, counted };
}

describe('local handoff', () => {
  it('hands an entry over once; a second take reads nothing', () => {
    const { h, counted } = handoff();
    h.put('a', 'first', 10);
    expect(h.take('a')).toBe('first');
    expect(h.take('a')).toBeUndefined();
    expect(counted).toEqual({ hit: 1, miss: 1, dropped: 0 });
    expect(h.heldBytes).toBe(0);
  });

  it('an entry put for several readers is handed to each once; remove forgets it', () => {
    const { h } = handoff();
    h.put('a', 'routed', 10, 2);
    expect(h.take('a')).toBe('routed');
    expect(h.take('a')).toBe('routed');
    expect(h.take('a')).toBeUndefined();
    h.put('b', 'routed', 10, 2);
    h.remove('b');
    expect(h.take('b')).toBeUndefined();
    expect(h.heldBytes).toBe(0);
  });

  it('drops the oldest entries past the byte bound', () => {
    const { h, counted } = handoff({ maxBytes: 100 });
    h.put('a', 'a', 40);
    h.put('b', 'b', 40);
    h.put('c', 'c', 40);
    expect(counted.dropped).toBe(1);
    expect(h.take('a')).toBeUndefined();
    expect(h.take('b')).toBe('b');
    expect(h.take('c')).toBe('c');
  });

  it('keeps nothing larger than the whole bound', () => {
    const { h, counted } = handoff({ maxBytes: 100 });
    h.put('a', 'a', 10);
    h.put('huge', 'huge', 101);
    expect(counted.dropped).toBe(1);
    expect(h.take('huge')).toBeUndefined();
    expect(h.take('a')).toBe('a');
  });

  it('drops the oldest entries past the entry bound', () => {
    const { h } = handoff({ maxEntries: 2 });
    for (const id of ['a', 'b', 'c']) h.put(id, id, 1);
    expect(h.size).toBe(2);
    expect(h.take('a')).toBeUndefined();
  });

  it('an entry past its age is not handed over, and leaves when another is put', () => {
    const { h, clock } = handoff({ maxAgeMs: 5000 });
    h.put('old', 'old', 10);
    clock.now += 5001;
    expect(h.take('old')).toBeUndefined();
    h.put('stale', 'stale', 10);
    clock.now += 5001;
    h.put('fresh', 'fresh', 10);
    expect(h.size).toBe(1);
    expect(h.heldBytes).toBe(10);
  });

  it('drops what is past its age by itself, with no put or take to do it (an idle stage)', () => {
    vi.useFakeTimers();
    try {
      const counted = { dropped: 0 };
      const h = new LocalHandoff<string>({
        bounds: { maxBytes: 1000, maxEntries: 10, maxAgeMs: 5000 },
        count: (result) => {
          if (result === 'dropped') counted.dropped++;
        },
      });
      h.put('a', 'a', 10);
      vi.advanceTimersByTime(4000);
      h.put('b', 'b', 10);
      vi.advanceTimersByTime(2000);
      expect([h.size, h.heldBytes]).toEqual([1, 10]);
      expect(counted.dropped).toBe(1);
      vi.advanceTimersByTime(5000);
      expect([h.size, h.heldBytes, counted.dropped]).toEqual([0, 0, 2]);
      // Empty, it waits for nothing.
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });

  it('a second put of an id replaces the first without counting it twice', () => {
    const { h, counted } = handoff();
    h.put('a', 'one', 30);
    h.put('a', 'two', 20);
    expect(h.heldBytes).toBe(20);
    expect(counted.dropped).toBe(0);
    expect(h.take('a')).toBe('two');
  });
});
