import { randomBytes } from 'node:crypto';
import type { Keys } from './keys.js';
import type { RedisClient } from './redis-connection.js';

/**
 * This deployment's relay id, the hop marker that stops relay chains (hop-marker.ts). Configured
 * (`relay.id`), or generated once and kept in Redis, so every process of one deployment shares it and two
 * deployments left on their defaults never take each other for themselves. The first process to ask writes
 * it (SET NX): concurrent first starts agree on one.
 */
export class RelayIdentity {
  private resolved: string | undefined;
  private pending: Promise<string> | undefined;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    configured?: string,
  ) {
    this.resolved = configured;
  }

  /** The id if already known (configured, or read once), without asking Redis. */
  get known(): string | undefined {
    return this.resolved;
  }

  async get(): Promise<string> {
    if (this.resolved) return this.resolved;
    this.pending ??= this.load().finally(() => {
      this.pending = undefined;
    });
    return this.pending;
  }

  private async load(): Promise<string> {
    const fresh = `relay-${randomBytes(6).toString('hex')}`;
    await this.redis.set(this.keys.relayId, fresh, 'NX');
    const id = (await this.redis.get(this.keys.relayId)) ?? fresh;
    this.resolved = id;
    return id;
  }
}
