import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ERRORS } from '../errors/index.js';
import type { Audit } from './audit.js';
import { type Authenticator, hasRole, type Identity, type Role } from './auth.js';
import type { LoginThrottle } from './login-throttle.js';
import { readCookie, SESSION_COOKIE, type Sessions } from './sessions.js';

declare module 'fastify' {
  interface FastifyRequest {
    identity: Identity | null;
    authVia?: 'bearer' | 'cookie';
  }
  interface FastifyContextConfig {
    /** No credentials needed (health checks, the login page). */
    public?: boolean;
    /** Needed role; default: `viewer` for GET/HEAD, `operator` for anything that changes state. */
    role?: Role;
  }
}

function bearer(req: FastifyRequest): string | undefined {
  const h = req.headers.authorization;
  if (!h) return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
  return m?.[1];
}

/** A cookie-authenticated change must come from our own pages (CSRF): the browser's Origin must be us. */
function sameOrigin(req: FastifyRequest): boolean {
  const origin = req.headers.origin;
  if (!origin) return false;
  try {
    const host = (req.headers['x-forwarded-host'] as string | undefined) ?? req.headers.host;
    return new URL(origin).host === host;
  } catch {
    return false;
  }
}

function wantsHtml(req: FastifyRequest): boolean {
  return req.method === 'GET' && /text\/html/.test(req.headers.accept ?? '') && !req.url.includes('/api/');
}

function deny(reply: FastifyReply, code: 'UNAUTHORIZED' | 'FORBIDDEN', message?: string) {
  if (code === 'UNAUTHORIZED') reply.header('www-authenticate', 'Bearer realm="hookrelay-admin"');
  return reply.code(ERRORS[code].status).send({ error: code, message: message ?? ERRORS[code].message });
}

/** Authentication and role check on every route that is not marked public. */
export function installAuth(
  app: FastifyInstance,
  opts: { auth: Authenticator; sessions: Sessions; audit: Audit; throttle: LoginThrottle; loginPath: string },
): void {
  app.decorateRequest('identity', null);
  app.addHook('onRequest', async (req, reply) => {
    const config = req.routeOptions.config ?? {};
    if (config.public) return;
    let identity: Identity | null = null;
    const token = bearer(req);
    if (token) {
      // A wrong Bearer token is a guess like a wrong sign-in: an address that keeps guessing waits.
      const wait = opts.throttle.retryAfter(req.ip, { global: false });
      if (wait > 0) {
        req.log.warn({ ip: req.ip, retryAfter: wait }, 'admin bearer token refused: too many wrong tokens');
        return reply.code(ERRORS.RATE_LIMITED.status).header('retry-after', String(wait)).send({
          error: 'RATE_LIMITED',
          message: 'too many wrong tokens from this address, retry later',
        });
      }
      identity = await opts.auth.verify(token);
      if (!identity) opts.throttle.fail(req.ip);
      req.authVia = 'bearer';
    } else {
      const sid = readCookie(req.headers.cookie, SESSION_COOKIE);
      if (sid) {
        const session = await opts.sessions.get(sid);
        identity = session && opts.auth.stillValid(session) ? session : null;
        req.authVia = 'cookie';
      }
    }
    if (!identity) {
      req.log.info(
        { url: req.url.split('?')[0], via: req.authVia ?? 'none', ip: req.ip },
        'admin request without valid credentials',
      );
      if (wantsHtml(req)) return reply.redirect(`${opts.loginPath}?next=${encodeURIComponent(req.url)}`, 303);
      return deny(reply, 'UNAUTHORIZED');
    }
    req.identity = identity;
    const needed: Role =
      config.role ?? (req.method === 'GET' || req.method === 'HEAD' ? 'viewer' : 'operator');
    if (!hasRole(identity, needed)) {
      opts.audit(req, {
        action: `${req.method} ${req.routeOptions.url ?? req.url.split('?')[0]}`,
        outcome: 'denied',
        requiredRole: needed,
      });
      return deny(reply, 'FORBIDDEN', `this action needs the ${needed} role`);
    }
    if (req.authVia === 'cookie' && needed === 'operator' && !sameOrigin(req)) {
      opts.audit(req, {
        action: `${req.method} ${req.routeOptions.url}`,
        outcome: 'denied',
        reason: 'cross-origin',
      });
      return deny(reply, 'FORBIDDEN', 'cross-origin request refused');
    }
  });
}
