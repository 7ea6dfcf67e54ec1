/**
 * Backoff for wrong admin tokens, per client address and for the whole process. Only refused tokens count: an
 * address that keeps guessing is answered 429 before its next token is even checked, while a right token
 * from another address still gets in. The global limit catches a guesser spread over many addresses; its
 * price is that, while it holds, sign-in is refused for everyone. Bearer calls count towards both limits but
 * obey only the per-address one: a guesser must not be able to lock the CLI and automation out of the API.
 *
 * In-process on purpose: each admin instance throttles what it sees, without a Redis round trip on the login
 * path (a Redis that is down must not also lock operators out).
 */
export interface ThrottleLimits {
  /** Refused tokens one address may send per window before it gets 429. */
  perAddress: number;
  /** Refused tokens all addresses together may send per window before everyone gets 429. */
  global: number;
  windowMs: number;
}

export const DEFAULT_THROTTLE: ThrottleLimits = { perAddress: 10, global: 200, windowMs: 60_000 };

/** At most this many addresses are remembered: a flood of spoofed sources cannot grow the map without end. */
const MAX_ADDRESSES = 10_000;

interface Window {
  startedAt: number;
  failures: number;
}

export class LoginThrottle {
  private readonly byAddress = new Map<string, Window>();
  private global: Window | undefined;

  constructor(
    private readonly limits: ThrottleLimits = DEFAULT_THROTTLE,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Seconds to wait before the next attempt from `address`, or 0 when it may try now. `global: false` asks
   * about the address's own limit only (Bearer calls).
   */
  retryAfter(address: string, opts: { global: boolean } = { global: true }): number {
    const at = this.now();
    const own = this.current(this.byAddress.get(address), at);
    const global = this.current(this.global, at);
    const waits = [
      own && own.failures >= this.limits.perAddress ? own.startedAt + this.limits.windowMs - at : 0,
      opts.global && global && global.failures >= this.limits.global
        ? global.startedAt + this.limits.windowMs - at
        : 0,
    ];
    return Math.ceil(Math.max(...waits) / 1000);
  }

  /** A refused token from `address`. */
  fail(address: string): void {
    const at = this.now();
    this.global = this.bump(this.global, at);
    if (!this.byAddress.has(address) && this.byAddress.size >= MAX_ADDRESSES) this.forgetExpired(at);
    if (!this.byAddress.has(address) && this.byAddress.size >= MAX_ADDRESSES) {
      // Still full of live windows: the oldest entry goes (Map keeps insertion order).
      const oldest = this.byAddress.keys().next().value;
      if (oldest !== undefined) this.byAddress.delete(oldest);
    }
    this.byAddress.set(address, this.bump(this.byAddress.get(address), at));
  }

  private current(window: Window | undefined, at: number): Window | undefined {
    return window && at - window.startedAt < this.limits.windowMs ? window : undefined;
  }

  private bump(window: Window | undefined, at: number): Window {
    const live = this.current(window, at);
    return live ? { startedAt: live.startedAt, failures: live.failures + 1 } : { startedAt: at, failures: 1 };
  }

  private forgetExpired(at: number): void {
    for (const [address, window] of this.byAddress) {
      if (!this.current(window, at)) this.byAddress.delete(address);
    }
  }
}
