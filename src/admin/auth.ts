import { createHash, timingSafeEqual } from 'node:crypto';
import { createRemoteJWKSet, type JWTPayload, jwtVerify } from 'jose';
import type { Config } from '../config/types.js';

export type Role = 'viewer' | 'operator';

/** Who is calling. `role: null` is a verified OIDC identity without a hookrelay role (403 everywhere). */
export interface Identity {
  name: string;
  role: Role | null;
  kind: 'token' | 'oidc';
  /** Epoch seconds when an OIDC token expires (a browser session must not outlive it). */
  expiresAt?: number;
  /**
   * A static token's fingerprint (see tokenFingerprint): a browser session made from it ends when the token's
   * value changes, even under the same name and role.
   */
  tokenFingerprint?: string;
}

const RANK: Record<Role, number> = { viewer: 1, operator: 2 };

export function hasRole(identity: Identity, wanted: Role): boolean {
  return identity.role !== null && RANK[identity.role] >= RANK[wanted];
}

function sha256(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

/**
 * What a session keeps of the token it was made from: a domain-separated, truncated SHA-256. It tells two token
 * values apart, and someone who reads it from Redis holds neither the token nor its lookup digest.
 */
export function tokenFingerprint(token: string): string {
  return createHash('sha256').update(`hookrelay-admin-session\0${token}`, 'utf8').digest('hex').slice(0, 32);
}

const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/** `a.b` in the rolesClaim walks nested claims (Keycloak puts roles under `realm_access.roles`). */
function claimAt(payload: JWTPayload, path: string): unknown {
  let value: unknown = payload;
  for (const part of path.split('.')) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

export function roleFromClaim(value: unknown): Role | null {
  const list = Array.isArray(value)
    ? value.map(String)
    : typeof value === 'string'
      ? value.split(/[\s,]+/)
      : [];
  if (list.includes('operator')) return 'operator';
  if (list.includes('viewer')) return 'viewer';
  return null;
}

export interface Authenticator {
  /** The identity a bearer credential stands for, or null when it is unknown, expired or forged. */
  verify(credential: string): Promise<Identity | null>;
  /**
   * Still a configured token with this name, role and value (a browser session outlives a config change
   * otherwise): a session without a fingerprint, or with another token value's, is no longer valid.
   */
  stillValid(identity: Identity): boolean;
}

/**
 * Static tokens are kept only as SHA-256 digests from start-up on, and a presented token is compared with
 * every digest in constant time (equal-length digests, no early exit), so neither timing nor a heap dump gives
 * a token away. OIDC access tokens are verified against the issuer's JWKS (fetched and cached by jose).
 */
export function createAuthenticator(admin: Config['admin']): Authenticator {
  const tokens = admin.tokens.map((t) => ({
    name: t.name,
    role: t.role,
    digest: sha256(t.token),
    fingerprint: tokenFingerprint(t.token),
  }));
  const oidc = admin.oidc;
  const jwks = oidc ? createRemoteJWKSet(new URL(oidc.jwksUrl), { cacheMaxAge: 10 * 60_000 }) : undefined;

  return {
    async verify(credential) {
      if (!credential) return null;
      const digest = sha256(credential);
      let found: (typeof tokens)[number] | undefined;
      for (const t of tokens) if (timingSafeEqual(t.digest, digest) && !found) found = t;
      if (found)
        return { name: found.name, role: found.role, kind: 'token', tokenFingerprint: found.fingerprint };
      if (!oidc || !jwks || !JWT_SHAPE.test(credential)) return null;
      try {
        const { payload } = await jwtVerify(credential, jwks, {
          issuer: oidc.issuer,
          audience: oidc.audience,
          clockTolerance: 30,
          // A token without an expiry would be valid forever.
          requiredClaims: ['exp'],
        });
        const name =
          (payload.preferred_username as string | undefined) ??
          (payload.email as string | undefined) ??
          payload.sub ??
          'unknown';
        return {
          name: String(name),
          role: roleFromClaim(claimAt(payload, oidc.rolesClaim)),
          kind: 'oidc',
          ...(payload.exp ? { expiresAt: payload.exp } : {}),
        };
      } catch {
        return null;
      }
    },
    stillValid(identity) {
      if (identity.kind !== 'token') return true;
      const presented = Buffer.from(identity.tokenFingerprint ?? '');
      return tokens.some(
        (t) =>
          t.name === identity.name &&
          t.role === identity.role &&
          presented.length === t.fingerprint.length &&
          timingSafeEqual(presented, Buffer.from(t.fingerprint)),
      );
    },
  };
}
