import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import { installErrorHandlers } from '../errors/index.js';
import { healthRoutes } from '../health-routes.js';
import type { AdminDeps } from './admin-deps.js';
import { createAudit } from './audit.js';
import { createAuthenticator } from './auth.js';
import { installAuth } from './auth-hook.js';
import { CONSOLE_PATH, consoleRoutes } from './console/console-routes.js';
import { deadLetterRoutes } from './dead-letter-routes.js';
import { eventsRoutes } from './events-routes.js';
import { loginRoutes } from './login-routes.js';
import { LoginThrottle } from './login-throttle.js';
import { metricsRoute } from './metrics-route.js';
import { quarantinedRoutes } from './quarantined-routes.js';
import { Sessions } from './sessions.js';
import { suppressedRoutes } from './suppressed-routes.js';
import { targetRoutes } from './target-routes.js';

/**
 * The admin API, metrics and ops console as one Fastify instance on its own port, without listening (tests
 * build it on port 0; server.ts listens). Paths are as seen behind the edge, which strips `/admin`;
 * `admin.publicBasePath` is what the browser sees, for links, redirects and the cookie path.
 */
export async function buildAdminApp(deps: AdminDeps): Promise<FastifyInstance> {
  const log = deps.log.child({ role: 'admin' });
  const app = Fastify({
    loggerInstance: log as FastifyBaseLogger,
    // The audit lines are the record of what was done; per-request lines would only repeat them.
    logController: new LogController({ disableRequestLogging: true }),
    // Behind the same edge as the ingress: audit lines get the operator's address, cookies the real scheme.
    trustProxy: deps.config.ingress.trustProxy,
    bodyLimit: 1_048_576,
    connectionTimeout: 60_000,
    requestTimeout: 120_000,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
  });
  installErrorHandlers(app);
  app.addContentTypeParser(
    'application/x-www-form-urlencoded',
    { parseAs: 'string', bodyLimit: 16_384 },
    (_req, body, done) => done(null, Object.fromEntries(new URLSearchParams(String(body)))),
  );

  const basePath = deps.config.admin.publicBasePath;
  const audit = createAudit(log);
  const auth = createAuthenticator(deps.config.admin);
  const sessions = new Sessions(deps.redis, deps.keys);
  const throttle = new LoginThrottle();
  installAuth(app, { auth, sessions, audit, throttle, loginPath: `${basePath}/login` });

  healthRoutes(app, deps.redis, { config: { public: true } });
  // Browsers ask for it on the login page; a 401 there would only be noise in their console.
  app.get('/favicon.ico', { config: { public: true } }, async (_req, reply) => reply.code(204).send());
  app.get('/api/whoami', async (req) => ({
    name: req.identity?.name,
    role: req.identity?.role,
    kind: req.identity?.kind,
  }));

  await app.register(async (scope) =>
    loginRoutes(scope, { auth, sessions, audit, throttle, basePath, home: `${CONSOLE_PATH}/events` }),
  );
  await app.register(async (scope) => eventsRoutes(scope, deps, audit));
  await app.register(async (scope) => deadLetterRoutes(scope, deps, audit));
  await app.register(async (scope) => suppressedRoutes(scope, deps, audit));
  await app.register(async (scope) => quarantinedRoutes(scope, deps, audit));
  await app.register(async (scope) => metricsRoute(scope, deps));
  await app.register(async (scope) => targetRoutes(scope, deps, audit));
  await app.register(async (scope) => consoleRoutes(scope, deps, audit, basePath));
  return app;
}
