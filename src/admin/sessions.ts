import { createHash, randomBytes } from 'node:crypto';
import type { Keys } from '../queue/keys.js';
import type { RedisClient } from '../queue/redis-connection.js';
import type { Identity } from './auth.js';

export const SESSION_COOKIE = 'hookrelay_admin';
const SESSION_TTL_MS = 8 * 3_600_000;

/**
 * Browser sessions for the console (a browser cannot send a Bearer header on navigation). The cookie holds a
 * random id; Redis holds the identity under the id's digest, so every admin instance behind the load balancer
 * knows the session and a Redis dump does not contain usable cookies.
 */
export class Sessions {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
  ) {}

  private key(id: string): string {
    return this.keys.adminSession(createHash('sha256').update(id).digest('hex'));
  }

  async create(identity: Identity, maxMs = SESSION_TTL_MS): Promise<{ id: string; ttlMs: number }> {
    const id = randomBytes(32).toString('base64url');
    const ttlMs = Math.max(1000, Math.min(maxMs, SESSION_TTL_MS));
    await this.redis.set(this.key(id), JSON.stringify(identity), 'PX', ttlMs);
    return { id, ttlMs };
  }

  async get(id: string): Promise<Identity | null> {
    if (!/^[A-Za-z0-9_-]{20,100}$/.test(id)) return null;
    const raw = await this.redis.get(this.key(id));
    return raw ? (JSON.parse(raw) as Identity) : null;
  }

  async destroy(id: string): Promise<void> {
    if (/^[A-Za-z0-9_-]{20,100}$/.test(id)) await this.redis.del(this.key(id));
  }
}

export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) {
      try {
        return decodeURIComponent(part.slice(eq + 1).trim());
      } catch {
        return undefined; // a malformed cookie is no session, not a 500
      }
    }
  }
  return undefined;
}

export function sessionCookie(
  value: string,
  opts: { path: string; maxAgeMs: number; secure: boolean },
): string {
  // Lax, not Strict: a `?token=` link opened from a chat must still land logged in; cross-site POSTs stay
  // cookieless, and mutating requests are origin-checked besides.
  return [
    `${SESSION_COOKIE}=${encodeURIComponent(value)}`,
    `Path=${opts.path || '/'}`,
    `Max-Age=${Math.floor(opts.maxAgeMs / 1000)}`,
    'HttpOnly',
    'SameSite=Lax',
    ...(opts.secure ? ['Secure'] : []),
  ].join('; ');
}
