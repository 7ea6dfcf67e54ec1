/**
 * The config file's schema, and through TypeBox its types (types.ts): one source of truth. Defaults live here so
 * there is one place that says what an absent key means. ajv validates with it (load-config.ts); a key with a
 * default is listed as required, which ajv never reports because it fills the default first.
 */

import { type TSchema, Type } from '@sinclair/typebox';
import { Duration } from './duration.js';
import { TRIGGER_FIELDS, TRIGGER_TYPES } from './target-rules.js';

/** One of the strings, checked as `enum` (ajv's message lists them), typed as their union. */
function OneOf<const Values extends readonly string[]>(
  values: Values,
  options: { default?: Values[number] } = {},
) {
  return Type.Unsafe<Values[number]>({ enum: values, ...options });
}

const Id = () => Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$' });
const NonEmpty = () => Type.String({ minLength: 1 });
const Secret = NonEmpty;
const GlobList = (options: { default?: string[] } = {}) =>
  Type.Array(NonEmpty(), { minItems: 1, ...options });
const HttpUrl = () => Type.String({ format: 'uri', pattern: '^https?://' });
const Port = (options: { default?: number } = {}) => Type.Integer({ minimum: 0, maximum: 65535, ...options });
/** `host:port`, as the Redis client wants it. */
const HostPort = () =>
  Type.Transform(Type.String({ pattern: '^[^\\s:]+:\\d{1,5}$' }))
    .Decode((entry) => {
      const at = entry.lastIndexOf(':');
      return { host: entry.slice(0, at), port: Number(entry.slice(at + 1)) };
    })
    .Encode(({ host, port }) => `${host}:${port}`);
/** An object whose absent keys all have defaults: absent itself, it is `{}` filled with them. */
const Section = <Properties extends Record<string, TSchema>>(properties: Properties) =>
  Type.Object(properties, { additionalProperties: false, default: {} });
const Strict = <Properties extends Record<string, TSchema>>(properties: Properties) =>
  Type.Object(properties, { additionalProperties: false });

const authChoices = Type.Union([
  Strict({ type: Type.Literal('bearer'), token: Secret() }),
  Strict({ type: Type.Literal('basic'), username: Type.String(), password: Secret() }),
  Strict({
    type: Type.Literal('token'),
    token: Secret(),
    header: Type.Optional(NonEmpty()),
    query: Type.Optional(NonEmpty()),
  }),
  Strict({
    type: Type.Literal('oauth2'),
    tokenUrl: Type.String({ format: 'uri' }),
    clientId: NonEmpty(),
    clientSecret: Secret(),
    scope: Type.Optional(Type.String()),
    audience: Type.Optional(Type.String()),
  }),
]);
// oneOf with a discriminator: ajv then reports an unknown `type` as such instead of four branch failures.
const auth = Type.Unsafe<(typeof authChoices)['static']>({
  type: 'object',
  required: ['type'],
  discriminator: { propertyName: 'type' },
  oneOf: authChoices.anyOf,
});

const relay = Section({
  // The hop marker this relay adds to deliveries and refuses on ingress (relay chains). Same for every
  // instance of one deployment, different between deployments that may call each other. Absent: one is
  // generated once per deployment and kept in Redis (src/queue/relay-id.ts).
  id: Type.Optional(Id()),
});

const redis = Section({
  url: Type.Optional(Type.String({ pattern: '^(rediss?://|unix:///)' })),
  sentinels: Type.Optional(Type.Array(HostPort(), { minItems: 1 })),
  name: Type.Optional(NonEmpty()),
  sentinelPassword: Type.Optional(Type.String()),
  password: Type.Optional(Type.String()),
  cluster: Type.Optional(Type.Array(HostPort(), { minItems: 1 })),
  shards: Type.Optional(Type.Integer({ minimum: 1, maximum: 1024 })),
  prefix: Type.String({ pattern: '^[A-Za-z0-9_-]+$', default: 'hookrelay' }),
  durability: OneOf(['fast', 'fsync', 'replicated'] as const, { default: 'fast' }),
  replicas: Type.Integer({ minimum: 1, default: 1 }),
  commandTimeout: Duration({ minimum: 50, default: '2s', replaces: 'commandTimeoutMs' }),
  dataDir: Type.String({ minLength: 1, default: '.hookrelay-data' }),
  // TLS to Redis, and with sentinels to the sentinels too. Files are PEM; absent caFile = system CAs.
  tls: Type.Optional(
    Strict({
      caFile: Type.Optional(NonEmpty()),
      certFile: Type.Optional(NonEmpty()),
      keyFile: Type.Optional(NonEmpty()),
      serverName: Type.Optional(NonEmpty()),
    }),
  ),
  // Embedded Redis only: also listen on 127.0.0.1:<port> (with the folder's password). Absent: its Unix
  // socket alone.
  embeddedPort: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
});

const ingress = Section({
  host: Type.String({ default: '0.0.0.0' }),
  port: Port({ default: 8080 }),
  bodyLimit: Type.Integer({ minimum: 1024, maximum: 16777216, default: 1048576 }),
  trustProxy: Type.Union([Type.Boolean(), Type.Array(NonEmpty())], { default: false }),
  dedupe: Section({
    // How long a delivery id (X-Request-UUID, X-Event-Key + X-Hook-UUID) is remembered.
    deliveryIdWindow: Duration({ minimum: 1000, default: '1d', replaces: 'deliveryIdSeconds' }),
    // How long an identical body from one source counts as a duplicate (0: never).
    contentWindow: Duration({ default: '5m', replaces: 'contentSeconds' }),
  }),
});

const worker = Section({
  // A worker-only process has no other HTTP port: this serves its /metrics and /healthz (absent = none).
  metricsHost: Type.String({ default: '127.0.0.1' }),
  metricsPort: Type.Optional(Port()),
  // How long SIGTERM waits for in-flight deliveries (absent = the slowest target's timeout + 2 s).
  shutdownGrace: Type.Optional(Duration()),
  // An inbox entry a worker read and did not acknowledge for this long is taken over by another (its reader
  // stopped between read and acknowledge): how long a crash can delay the events it held. Longer than a
  // fan-out batch ever takes, or two workers decide the same entries (harmless, but twice the work).
  inboxTakeover: Duration({ minimum: 1000, default: '15s' }),
});

const admin = Section({
  host: Type.String({ default: '127.0.0.1' }),
  port: Port({ default: 8081 }),
  publicBasePath: Type.String({ pattern: '^(/[A-Za-z0-9._~-]+)*$', default: '' }),
  tokens: Type.Array(
    Strict({
      name: Id(),
      token: Type.String({ minLength: 16 }),
      role: OneOf(['viewer', 'operator'] as const, { default: 'operator' }),
    }),
    { default: [] },
  ),
  oidc: Type.Optional(
    Strict({
      issuer: NonEmpty(),
      audience: NonEmpty(),
      jwksUrl: Type.String({ format: 'uri' }),
      rolesClaim: Type.String({ default: 'roles' }),
    }),
  ),
});

export const sourceSchema = Strict({
  id: Id(),
  platform: OneOf(['cloud', 'datacenter'] as const),
  // Non-empty secrets only reach the Config: an empty key would let anyone sign. Several = rotation.
  secrets: Type.Array(Type.String({ maxLength: 128 }), { minItems: 1 }),
  // Data Center only: REST API access, to read a pushed commit's message when the payload has none.
  api: Type.Optional(
    Strict({
      url: HttpUrl(),
      token: Type.Optional(Secret()),
      username: Type.Optional(NonEmpty()),
      password: Type.Optional(Secret()),
    }),
  ),
});

const TARGET_TYPES = [
  'http',
  'jenkins-generic',
  'jenkins-branch-source',
  'jenkins-bitbucket',
  'teamcity',
  'buildkite',
  ...TRIGGER_TYPES,
] as const;

const retry = Section({
  attempts: Type.Integer({ minimum: 1, maximum: 100, default: 10 }),
  // Explicit delays before retry n (index n-1); the last entry repeats. Absent: exponential full jitter.
  schedule: Type.Optional(Type.Array(Duration(), { minItems: 1 })),
  delay: Duration({ default: '1s' }),
  maxDelay: Duration({ default: '1h' }),
  maxRetryAfter: Duration({ default: '1h' }),
  maxAge: Duration({ default: '1d' }),
});

export const targetSchema = Strict({
  id: Id(),
  type: OneOf(TARGET_TYPES, { default: 'http' }),
  url: HttpUrl(),
  timeout: Duration({ minimum: 100, maximum: 300_000, default: '10s', replaces: 'timeoutMs' }),
  auth: Type.Optional(auth),
  headers: Type.Optional(Type.Record(Type.String(), Type.String())),
  signingSecret: Type.Optional(Secret()),
  concurrency: Type.Integer({ minimum: 1, maximum: 256, default: 4 }),
  rateLimit: Type.Optional(Strict({ max: Type.Integer({ minimum: 1 }), duration: Duration() })),
  retry,
  circuit: Section({
    failureThreshold: Type.Integer({ minimum: 1, default: 5 }),
    cooldown: Duration({ default: '30s' }),
  }),
  // teamcity: the VCS-root locator for commitHookNotification; buildkite: nothing extra (url is the
  // pipeline's builds endpoint).
  locator: Type.Optional(NonEmpty()),
  // jenkins-branch-source: the Bitbucket Data Center URL as Jenkins knows it, sent as ?server_url=.
  serverUrl: Type.Optional(HttpUrl()),
  // Event keys (globs) this target gets; any other ends `not-applicable` without a request.
  events: Type.Optional(GlobList()),
  // Trigger targets (docs/targets.md): parameter name → the event field it carries (absent: the type's
  // default set).
  parameters: Type.Optional(
    Type.Unsafe<Record<string, (typeof TRIGGER_FIELDS)[number]>>({
      type: 'object',
      propertyNames: { pattern: '^[A-Za-z_][A-Za-z0-9_.-]{0,99}$' },
      additionalProperties: { enum: TRIGGER_FIELDS },
    }),
  ),
  // github-repository-dispatch: the `event_type` (absent: the event key); GitHub's limit on its length.
  eventType: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
  // bitbucket-pipelines: the custom pipeline to run (absent: the ref's own pipeline).
  customPipeline: Type.Optional(NonEmpty()),
  // bamboo: the branch the plan itself builds (pushes to it queue the plan, not a plan branch).
  defaultBranch: Type.Optional(NonEmpty()),
});

export const routeSchema = Strict({
  id: Type.Optional(Id()),
  source: Id(),
  events: GlobList({ default: ['*'] }),
  repos: GlobList({ default: ['*'] }),
  branches: Type.Optional(GlobList()),
  targets: Type.Array(Id(), { minItems: 1 }),
  coalesce: OneOf(['none', 'latest-per-ref'] as const, { default: 'none' }),
  // Without coalescing: an older push retried after a newer one was delivered is not sent.
  skipSuperseded: Type.Boolean({ default: false }),
});

const loop = Section({
  skipMarkers: Type.Array(NonEmpty(), { default: ['[skip ci]', '[ci skip]', '[no ci]', '***NO_CI***'] }),
  ignoreActors: Type.Array(NonEmpty(), { default: [] }),
  maxTriggersPerRef: Section({
    count: Type.Integer({ minimum: 1, default: 20 }),
    window: Duration({ minimum: 1000, default: '10m', replaces: 'windowSeconds' }),
  }),
  collapseMergePush: Type.Boolean({ default: true }),
  collapseWindow: Duration({ minimum: 1000, default: '10m', replaces: 'collapseWindowSeconds' }),
  // How long a merged-PR delivery waits for the push of its merge commit before it is sent anyway.
  collapseWait: Duration({ default: '15s', replaces: 'collapseWaitSeconds' }),
  // Causal loops: pushes by one actor on commits the relay delivered, turn after turn (loop-guard.ts).
  chain: Section({
    maxTurns: Type.Integer({ minimum: 1, default: 8 }),
    memory: Duration({ minimum: 1000, default: '1h', replaces: 'memorySeconds' }),
    actors: Type.Array(NonEmpty(), { default: ['*'] }),
  }),
});

export const configSchema = Strict({
  relay,
  redis,
  ingress,
  worker,
  admin,
  sources: Type.Array(sourceSchema, { minItems: 1 }),
  targets: Type.Array(targetSchema, { minItems: 1 }),
  routes: Type.Array(routeSchema, { minItems: 1 }),
  loop,
  retention: Section({
    events: Duration({ default: '7d' }),
    completedJobs: Duration({ default: '1h' }),
    deadLetters: Duration({ default: '14d' }),
  }),
  log: Section({
    level: OneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const, {
      default: 'info',
    }),
  }),
});
