import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Audit } from './audit.js';
import type { Authenticator } from './auth.js';
import type { LoginThrottle } from './login-throttle.js';
import { safeNextPath } from './next-path.js';
import { readCookie, SESSION_COOKIE, type Sessions, sessionCookie } from './sessions.js';

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(base: string, next: string, error?: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>hookrelay admin · sign in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font-family:system-ui,sans-serif;max-width:26rem;margin:4rem auto;padding:0 1rem}
input{width:100%;padding:.5rem;margin:.5rem 0;box-sizing:border-box}button{padding:.5rem 1rem}
.err{color:#b00020}</style></head>
<body><h1>hookrelay admin</h1>
${error ? `<p class="err" role="alert">${escapeHtml(error)}</p>` : ''}
<form method="post" action="${escapeHtml(base)}/login">
<label for="token">Admin token or OIDC access token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
<input type="hidden" name="next" value="${escapeHtml(next)}">
<button type="submit">Sign in</button>
</form></body></html>`;
}

/**
 * Browsers cannot send a Bearer header on a navigation: a token is exchanged once (login form, or a
 * `?token=` link) for an HttpOnly session cookie. The token itself never lands in a cookie.
 */
export async function loginRoutes(
  app: FastifyInstance,
  opts: {
    auth: Authenticator;
    sessions: Sessions;
    audit: Audit;
    throttle: LoginThrottle;
    basePath: string;
    home: string;
  },
): Promise<void> {
  const { auth, sessions, audit, throttle, basePath } = opts;
  const cookiePath = basePath || '/';

  // Only our own pages: no open redirect to another site, and nothing that cannot go in a Location header.
  const safeNext = (next: unknown): string => safeNextPath(next, basePath) ?? opts.home;
  const secure = (req: FastifyRequest) =>
    req.protocol === 'https' || req.headers['x-forwarded-proto'] === 'https';

  async function exchange(req: FastifyRequest, reply: FastifyReply, token: string, next: string) {
    const wait = throttle.retryAfter(req.ip);
    if (wait > 0) {
      req.log.warn({ reason: 'throttled', ip: req.ip, retryAfter: wait }, 'admin login refused');
      return reply
        .code(429)
        .header('retry-after', String(wait))
        .type('text/html; charset=utf-8')
        .send(page(basePath, next, `Too many failed sign-ins. Try again in ${wait} s.`));
    }
    const identity = await auth.verify(token);
    if (!identity) throttle.fail(req.ip);
    if (!identity || identity.role === null) {
      req.log.info({ reason: identity ? 'no role' : 'bad token', ip: req.ip }, 'admin login refused');
      return reply
        .code(identity ? 403 : 401)
        .type('text/html; charset=utf-8')
        .send(page(basePath, next, identity ? 'This identity has no hookrelay role.' : 'Invalid token.'));
    }
    // `next` was checked before this point (safeNext): nothing after the session exists may fail on it.
    const location = `${basePath}${next}`;
    const maxMs = identity.expiresAt ? identity.expiresAt * 1000 - Date.now() : undefined;
    const session = await sessions.create(identity, maxMs);
    req.identity = identity;
    audit(req, { action: 'login' });
    return reply
      .header(
        'set-cookie',
        sessionCookie(session.id, { path: cookiePath, maxAgeMs: session.ttlMs, secure: secure(req) }),
      )
      .header('cache-control', 'no-store')
      .redirect(location, 303);
  }

  app.get<{ Querystring: { token?: string; next?: string } }>(
    '/login',
    { config: { public: true } },
    async (req, reply) => {
      const next = safeNext(req.query.next);
      if (req.query.token) return exchange(req, reply, req.query.token, next);
      return reply
        .type('text/html; charset=utf-8')
        .header('cache-control', 'no-store')
        .send(page(basePath, next));
    },
  );

  app.post<{ Body: { token?: string; next?: string } }>(
    '/login',
    { config: { public: true } },
    async (req, reply) => exchange(req, reply, String(req.body?.token ?? ''), safeNext(req.body?.next)),
  );

  app.get('/logout', { config: { public: true } }, async (req, reply) => {
    const sid = readCookie(req.headers.cookie, SESSION_COOKIE);
    if (sid) await sessions.destroy(sid);
    return reply
      .header('set-cookie', sessionCookie('', { path: cookiePath, maxAgeMs: 0, secure: secure(req) }))
      .redirect(`${basePath}/login`, 303);
  });

  app.get('/', { config: { public: true } }, async (_req, reply) =>
    reply.redirect(`${basePath}${opts.home}`, 303),
  );
}
