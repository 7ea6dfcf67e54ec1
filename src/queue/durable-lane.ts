import type { Redis } from 'ioredis';
import { NotDurableYet } from '../errors/index.js';

/** Waits, on one connection, until the writes made over it before a marker are replicated or fsynced. */
export type DurabilityWait = (conn: Redis, marker: string) => Promise<void>;

interface Waiter {
  epoch: number;
  marker: string;
  resolve(): void;
  reject(err: Error): void;
}

/**
 * One connection over which durable writes and their waits both go (a wait covers the writes of the connection
 * that sends it), with the waits batched in rounds: calls whose write Redis has answered join the next round,
 * and one marker write plus one WAIT or WAITAOF covers them all (and an original written by another instance,
 * for a copy), since the replication stream and the AOF are ordered and the marker comes after. A call whose
 * connection was replaced since its write (a failover, a restart) is refused: the new server may lack it.
 */
export class DurableLane {
  /** Counts the connection's (re)connections: a round only vouches for writes made in the same one. */
  epoch = 0;
  private waiters: Waiter[] = [];
  private running = false;
  private waitingForReady: Promise<void> | undefined;

  constructor(
    readonly conn: Redis,
    private readonly wait: DurabilityWait,
    private readonly readyTimeoutMs: number,
  ) {
    conn.on('ready', () => {
      this.epoch += 1;
    });
  }

  /** Resolves once the write made in `epoch` is durable; rejects with NotDurableYet otherwise. */
  awaitDurable(epoch: number, marker: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiters.push({ epoch, marker, resolve, reject });
      if (!this.running) void this.rounds();
    });
  }

  private async rounds(): Promise<void> {
    this.running = true;
    try {
      while (this.waiters.length > 0) {
        const round = this.waiters;
        this.waiters = [];
        const epoch = this.epoch;
        try {
          await this.ready();
          await this.wait(this.conn, round[0]!.marker);
          const changed = new NotDurableYet('the redis connection was replaced since the write');
          for (const w of round) {
            if (w.epoch === epoch && this.epoch === epoch) w.resolve();
            else w.reject(changed);
          }
        } catch (err) {
          const e = new NotDurableYet((err as Error).message);
          for (const w of round) w.reject(e);
        }
      }
    } finally {
      this.running = false;
    }
  }

  /**
   * The connection may still be connecting (just opened, or reconnecting): wait for it, bounded. Writes arriving
   * meanwhile share one wait (one listener, however many requests are waiting).
   */
  ready(): Promise<void> {
    if (this.conn.status === 'ready') return Promise.resolve();
    this.waitingForReady ??= new Promise<void>((resolve, reject) => {
      const done = (err?: Error) => {
        clearTimeout(timer);
        this.conn.off('ready', onReady);
        if (err) reject(err);
        else resolve();
      };
      const onReady = () => done();
      const timer = setTimeout(() => done(new Error('redis connection not ready')), this.readyTimeoutMs);
      this.conn.once('ready', onReady);
    }).finally(() => {
      this.waitingForReady = undefined;
    });
    return this.waitingForReady;
  }
}
