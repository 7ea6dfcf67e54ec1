/** JSON Schema of the config file. Defaults live here so there is one place that says what an absent key means. */

import { TRIGGER_FIELDS, TRIGGER_TYPES } from './target-rules.js';

const id = { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$' } as const;
const globList = { type: 'array', items: { type: 'string', minLength: 1 }, minItems: 1 } as const;
const hostPort = { type: 'string', pattern: '^[^\\s:]+:\\d{1,5}$' } as const;
/** A duration: milliseconds as a number, or "500ms", "5s", "5m", "2h", "1d". */
const duration = {
  anyOf: [
    { type: 'integer', minimum: 0 },
    { type: 'string', pattern: '^\\d+(ms|s|m|h|d)$' },
  ],
} as const;
const secret = { type: 'string', minLength: 1 } as const;

const auth = {
  type: 'object',
  required: ['type'],
  discriminator: { propertyName: 'type' },
  oneOf: [
    {
      properties: { type: { const: 'bearer' }, token: secret },
      required: ['token'],
      additionalProperties: false,
    },
    {
      properties: { type: { const: 'basic' }, username: { type: 'string' }, password: secret },
      required: ['username', 'password'],
      additionalProperties: false,
    },
    {
      properties: {
        type: { const: 'token' },
        token: secret,
        header: { type: 'string', minLength: 1 },
        query: { type: 'string', minLength: 1 },
      },
      required: ['token'],
      additionalProperties: false,
    },
    {
      properties: {
        type: { const: 'oauth2' },
        tokenUrl: { type: 'string', format: 'uri' },
        clientId: { type: 'string', minLength: 1 },
        clientSecret: secret,
        scope: { type: 'string' },
        audience: { type: 'string' },
      },
      required: ['tokenUrl', 'clientId', 'clientSecret'],
      additionalProperties: false,
    },
  ],
} as const;

export const configSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['sources', 'targets', 'routes'],
  properties: {
    relay: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        // The hop marker this relay adds to deliveries and refuses on ingress (relay chains). Same for every
        // instance of one deployment, different between deployments that may call each other. Absent: one is
        // generated once per deployment and kept in Redis (src/queue/relay-id.ts).
        id,
      },
    },
    redis: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        url: { type: 'string', pattern: '^(rediss?://|unix:///)' },
        sentinels: { type: 'array', items: hostPort, minItems: 1 },
        name: { type: 'string', minLength: 1 },
        sentinelPassword: { type: 'string' },
        password: { type: 'string' },
        cluster: { type: 'array', items: hostPort, minItems: 1 },
        shards: { type: 'integer', minimum: 1, maximum: 1024 },
        prefix: { type: 'string', pattern: '^[A-Za-z0-9_-]+$', default: 'hookrelay' },
        durability: { enum: ['fast', 'fsync', 'replicated'], default: 'fast' },
        replicas: { type: 'integer', minimum: 1, default: 1 },
        commandTimeoutMs: { type: 'integer', minimum: 50, default: 2000 },
        dataDir: { type: 'string', minLength: 1, default: '.hookrelay-data' },
        // TLS to Redis, and with sentinels to the sentinels too. Files are PEM; absent caFile = system CAs.
        tls: {
          type: 'object',
          additionalProperties: false,
          properties: {
            caFile: { type: 'string', minLength: 1 },
            certFile: { type: 'string', minLength: 1 },
            keyFile: { type: 'string', minLength: 1 },
            serverName: { type: 'string', minLength: 1 },
          },
        },
        // Embedded Redis only: also listen on 127.0.0.1:<port> (with the folder's password). Absent: its Unix
        // socket alone.
        embeddedPort: { type: 'integer', minimum: 1, maximum: 65535 },
      },
    },
    ingress: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        host: { type: 'string', default: '0.0.0.0' },
        port: { type: 'integer', minimum: 0, maximum: 65535, default: 8080 },
        bodyLimit: { type: 'integer', minimum: 1024, maximum: 16777216, default: 1048576 },
        trustProxy: {
          anyOf: [{ type: 'boolean' }, { type: 'array', items: { type: 'string', minLength: 1 } }],
          default: false,
        },
        dedupe: {
          type: 'object',
          additionalProperties: false,
          default: {},
          properties: {
            deliveryIdSeconds: { type: 'integer', minimum: 1, default: 86400 },
            contentSeconds: { type: 'integer', minimum: 0, default: 300 },
          },
        },
      },
    },
    worker: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        // A worker-only process has no other HTTP port: this serves its /metrics and /healthz (absent = none).
        metricsHost: { type: 'string', default: '127.0.0.1' },
        metricsPort: { type: 'integer', minimum: 0, maximum: 65535 },
        // How long SIGTERM waits for in-flight deliveries (absent = the slowest target's timeout + 2 s).
        shutdownGrace: duration,
      },
    },
    admin: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        host: { type: 'string', default: '127.0.0.1' },
        port: { type: 'integer', minimum: 0, maximum: 65535, default: 8081 },
        publicBasePath: { type: 'string', pattern: '^(/[A-Za-z0-9._~-]+)*$', default: '' },
        tokens: {
          type: 'array',
          default: [],
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['name', 'token'],
            properties: {
              name: id,
              token: { type: 'string', minLength: 16 },
              role: { enum: ['viewer', 'operator'], default: 'operator' },
            },
          },
        },
        oidc: {
          type: 'object',
          additionalProperties: false,
          required: ['issuer', 'audience', 'jwksUrl'],
          properties: {
            issuer: { type: 'string', minLength: 1 },
            audience: { type: 'string', minLength: 1 },
            jwksUrl: { type: 'string', format: 'uri' },
            rolesClaim: { type: 'string', default: 'roles' },
          },
        },
      },
    },
    sources: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['id', 'platform', 'secrets'],
        properties: {
          id,
          platform: { enum: ['cloud', 'datacenter'] },
          secrets: { type: 'array', items: { type: 'string', maxLength: 128 }, minItems: 1 },
          // Data Center only: REST API access, to read a pushed commit's message when the payload has none.
          api: {
            type: 'object',
            additionalProperties: false,
            required: ['url'],
            properties: {
              url: { type: 'string', format: 'uri', pattern: '^https?://' },
              token: secret,
              username: { type: 'string', minLength: 1 },
              password: secret,
            },
          },
        },
      },
    },
    targets: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['id', 'url'],
        properties: {
          id,
          type: {
            enum: [
              'http',
              'jenkins-generic',
              'jenkins-branch-source',
              'jenkins-bitbucket',
              'teamcity',
              'buildkite',
              ...TRIGGER_TYPES,
            ],
            default: 'http',
          },
          url: { type: 'string', format: 'uri', pattern: '^https?://' },
          timeoutMs: { type: 'integer', minimum: 100, maximum: 300000, default: 10000 },
          auth,
          headers: { type: 'object', additionalProperties: { type: 'string' } },
          signingSecret: secret,
          concurrency: { type: 'integer', minimum: 1, maximum: 256, default: 4 },
          rateLimit: {
            type: 'object',
            additionalProperties: false,
            required: ['max', 'duration'],
            properties: { max: { type: 'integer', minimum: 1 }, duration },
          },
          retry: {
            type: 'object',
            additionalProperties: false,
            default: {},
            properties: {
              attempts: { type: 'integer', minimum: 1, maximum: 100, default: 10 },
              schedule: { type: 'array', items: duration, minItems: 1 },
              delay: { ...duration, default: 1000 },
              maxDelay: { ...duration, default: 3600000 },
              maxRetryAfter: { ...duration, default: 3600000 },
              maxAge: { ...duration, default: '1d' },
            },
          },
          circuit: {
            type: 'object',
            additionalProperties: false,
            default: {},
            properties: {
              failureThreshold: { type: 'integer', minimum: 1, default: 5 },
              cooldown: { ...duration, default: 30000 },
            },
          },
          // teamcity: the VCS-root locator for commitHookNotification; buildkite: nothing extra (url is the
          // pipeline's builds endpoint).
          locator: { type: 'string', minLength: 1 },
          // jenkins-branch-source: the Bitbucket Data Center URL as Jenkins knows it, sent as ?server_url=.
          serverUrl: { type: 'string', format: 'uri', pattern: '^https?://' },
          // Event keys (globs) this target gets; any other ends `not-applicable` without a request.
          events: globList,
          // Trigger targets (docs/targets.md): parameter name → the event field it carries.
          parameters: {
            type: 'object',
            propertyNames: { pattern: '^[A-Za-z_][A-Za-z0-9_.-]{0,99}$' },
            additionalProperties: { enum: TRIGGER_FIELDS },
          },
          // GitHub's limit on event_type.
          eventType: { type: 'string', minLength: 1, maxLength: 100 },
          customPipeline: { type: 'string', minLength: 1 },
          defaultBranch: { type: 'string', minLength: 1 },
        },
      },
    },
    routes: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['source', 'targets'],
        properties: {
          id,
          source: id,
          events: { ...globList, default: ['*'] },
          repos: { ...globList, default: ['*'] },
          branches: globList,
          targets: { type: 'array', items: id, minItems: 1 },
          coalesce: { enum: ['none', 'latest-per-ref'], default: 'none' },
          // Without coalescing: an older push retried after a newer one was delivered is not sent.
          skipSuperseded: { type: 'boolean', default: false },
        },
      },
    },
    loop: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        skipMarkers: {
          type: 'array',
          items: { type: 'string', minLength: 1 },
          default: ['[skip ci]', '[ci skip]', '[no ci]', '***NO_CI***'],
        },
        ignoreActors: { type: 'array', items: { type: 'string', minLength: 1 }, default: [] },
        maxTriggersPerRef: {
          type: 'object',
          additionalProperties: false,
          default: {},
          properties: {
            count: { type: 'integer', minimum: 1, default: 20 },
            windowSeconds: { type: 'integer', minimum: 1, default: 600 },
          },
        },
        collapseMergePush: { type: 'boolean', default: true },
        collapseWindowSeconds: { type: 'integer', minimum: 1, default: 600 },
        // How long a merged-PR delivery waits for the push of its merge commit before it is sent anyway.
        collapseWaitSeconds: { type: 'integer', minimum: 0, default: 15 },
        // Causal loops: pushes by one actor on commits the relay delivered, turn after turn (loop-guard.ts).
        chain: {
          type: 'object',
          additionalProperties: false,
          default: {},
          properties: {
            maxTurns: { type: 'integer', minimum: 1, default: 8 },
            memorySeconds: { type: 'integer', minimum: 1, default: 3600 },
            actors: { type: 'array', items: { type: 'string', minLength: 1 }, default: ['*'] },
          },
        },
      },
    },
    retention: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        events: { ...duration, default: '7d' },
        completedJobs: { ...duration, default: '1h' },
        deadLetters: { ...duration, default: '14d' },
      },
    },
    log: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        level: { enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], default: 'info' },
      },
    },
  },
} as const;
