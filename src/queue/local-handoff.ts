/**
 * Events this process has just written, kept for the next stage in the same process so that it does not read
 * back from Redis, and decode, what it already holds: the ingress hands a received event to its fan-out, the
 * fan-out a routed event to its delivery workers. Redis stays the record. An entry is a copy of what was
 * written, so a stage that misses (another process took the work, the entry aged out or was evicted, a
 * restart, or the next stage started before the handover, which follows the write's answer) reads Redis as it
 * would without the handoff, and sees the same thing.
 *
 * Bounded by bytes (the bodies dominate), entries and age: a stage that falls behind, or work another process
 * takes, never grows the heap past the bounds.
 */
export interface HandoffBounds {
  maxBytes: number;
  maxEntries: number;
  maxAgeMs: number;
}

/** The bounds of one handoff, small against the heap of a relay process. */
export const DEFAULT_HANDOFF_BOUNDS: HandoffBounds = {
  maxBytes: 32 * 1024 * 1024,
  maxEntries: 4096,
  maxAgeMs: 10_000,
};

/**
 * What became of a handed-over event: taken by the next stage (`hit`), looked for and not there (`miss`: read
 * from Redis), or dropped before any stage took it (`dropped`: past its age or a bound, so bounds too small
 * for the load show here).
 */
export type HandoffResult = 'hit' | 'miss' | 'dropped';

export interface HandoffOptions {
  bounds?: HandoffBounds;
  now?: () => number;
  /** Told of each result (the owner's metrics). */
  count?: (result: HandoffResult) => void;
}

interface Entry<T> {
  value: T;
  bytes: number;
  at: number;
  /** Takes left before the entry goes (an event delivered to several targets is read once per target). */
  readers: number;
}

export class LocalHandoff<T> {
  private readonly entries = new Map<string, Entry<T>>();
  private bytes = 0;
  private readonly bounds: HandoffBounds;
  private readonly now: () => number;
  private readonly count: (result: HandoffResult) => void;
  private sweepTimer: NodeJS.Timeout | undefined;

  constructor(options: HandoffOptions = {}) {
    this.bounds = options.bounds ?? DEFAULT_HANDOFF_BOUNDS;
    this.now = options.now ?? Date.now;
    this.count = options.count ?? (() => {});
  }

  get size(): number {
    return this.entries.size;
  }

  get heldBytes(): number {
    return this.bytes;
  }

  /**
   * Keeps `value` for the next stage, for `readers` takes; `bytes`: about what it holds in memory (its body,
   * and its parsed parts).
   */
  put(id: string, value: T, bytes: number, readers = 1): void {
    this.remove(id);
    if (readers < 1) return;
    if (bytes > this.bounds.maxBytes) {
      this.count('dropped');
      return;
    }
    this.entries.set(id, { value, bytes, at: this.now(), readers });
    this.bytes += bytes;
    this.evict();
    this.sweepLater();
  }

  /** The value kept for `id`, as many times as it was put for: later takes read Redis. */
  take(id: string): T | undefined {
    this.evict();
    const entry = this.entries.get(id);
    if (!entry) {
      this.count('miss');
      return undefined;
    }
    if (--entry.readers === 0) this.remove(id);
    this.count('hit');
    return entry.value;
  }

  /** Forgets `id` (its record changed in Redis, or its last reader is done). */
  remove(id: string): void {
    const entry = this.entries.get(id);
    if (!entry) return;
    this.entries.delete(id);
    this.bytes -= entry.bytes;
  }

  /**
   * While it holds anything, the handoff looks again when its oldest entry passes its age: a stage that went
   * idle takes nothing, and what was handed over for work another process did must still go. Unref'd: it
   * keeps no process alive.
   */
  private sweepLater(): void {
    if (this.sweepTimer) return;
    const oldest = this.entries.values().next().value;
    if (!oldest) return;
    this.sweepTimer = setTimeout(
      () => {
        this.sweepTimer = undefined;
        this.evict();
        this.sweepLater();
      },
      Math.max(1, oldest.at + this.bounds.maxAgeMs + 1 - this.now()),
    );
    this.sweepTimer.unref();
  }

  /** Oldest first (a Map iterates in insertion order): past its age, or over a bound. */
  private evict(): void {
    const oldest = this.now() - this.bounds.maxAgeMs;
    for (const [id, entry] of this.entries) {
      const over = this.bytes > this.bounds.maxBytes || this.entries.size > this.bounds.maxEntries;
      if (!over && entry.at >= oldest) break;
      this.entries.delete(id);
      this.bytes -= entry.bytes;
      this.count('dropped');
    }
  }
}
