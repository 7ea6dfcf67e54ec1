/** The validated, normalised and frozen config. Durations are milliseconds here, whatever the file said. */

import type { TRIGGER_FIELDS, TRIGGER_TYPES } from './target-rules.js';

export type Platform = 'cloud' | 'datacenter';
export type Durability = 'fast' | 'fsync' | 'replicated';
export type TargetType =
  | 'http'
  | 'jenkins-generic'
  | 'jenkins-branch-source'
  | 'jenkins-bitbucket'
  | 'teamcity'
  | 'buildkite'
  | (typeof TRIGGER_TYPES)[number];

/** What a trigger target's parameter carries, taken from the event (see src/delivery/targets/trigger-ref.ts). */
export type TriggerField = (typeof TRIGGER_FIELDS)[number];

export type TargetAuth =
  | { type: 'bearer'; token: string }
  | { type: 'basic'; username: string; password: string }
  | { type: 'token'; token: string; header?: string; query?: string }
  | {
      type: 'oauth2';
      tokenUrl: string;
      clientId: string;
      clientSecret: string;
      scope?: string;
      audience?: string;
    };

export interface RetryPolicy {
  attempts: number;
  /** Explicit delays before retry n (index n-1); the last entry repeats. Absent: exponential full jitter. */
  scheduleMs?: number[];
  delayMs: number;
  maxDelayMs: number;
  maxRetryAfterMs: number;
  maxAgeMs: number;
}

export interface TargetConfig {
  id: string;
  type: TargetType;
  url: string;
  timeoutMs: number;
  auth?: TargetAuth;
  headers?: Record<string, string>;
  signingSecret?: string;
  concurrency: number;
  rateLimit?: { max: number; durationMs: number };
  retry: RetryPolicy;
  circuit: { failureThreshold: number; cooldownMs: number };
  locator?: string;
  /** jenkins-branch-source: the Data Center URL configured in Jenkins (`?server_url=`). */
  serverUrl?: string;
  /** Event-key globs this target gets; others end `not-applicable`. Absent: every routed event. */
  events?: string[];
  /** Trigger targets: parameter name → what it carries (absent: the type's default set). */
  parameters?: Record<string, TriggerField>;
  /** github-repository-dispatch: the `event_type` (absent: the Bitbucket event key). */
  eventType?: string;
  /** bitbucket-pipelines: the custom pipeline to run (absent: the ref's own pipeline). */
  customPipeline?: string;
  /** bamboo: the branch the plan itself builds (pushes to it queue the plan, not a plan branch). */
  defaultBranch?: string;
}

export interface SourceConfig {
  id: string;
  platform: Platform;
  /** Non-empty secrets only: an empty key would let anyone sign. Several = rotation. */
  secrets: string[];
  /** Data Center REST API access (bearer token, or basic), to read commit messages older servers leave out. */
  api?: { url: string; token?: string; username?: string; password?: string };
}

export interface RouteConfig {
  id: string;
  source: string;
  events: string[];
  repos: string[];
  branches?: string[];
  targets: string[];
  coalesce: 'none' | 'latest-per-ref';
  skipSuperseded: boolean;
}

export interface Config {
  /** `id` absent: the deployment's generated id, kept in Redis (src/queue/relay-id.ts). */
  relay: { id?: string };
  redis: {
    url?: string;
    sentinels?: { host: string; port: number }[];
    name?: string;
    sentinelPassword?: string;
    password?: string;
    cluster?: { host: string; port: number }[];
    /** Shards of the keyspace on a cluster (see keys.ts); always 1 without one. */
    shards: number;
    prefix: string;
    durability: Durability;
    replicas: number;
    commandTimeoutMs: number;
    dataDir: string;
    /** TLS for every Redis connection (and the sentinels'): PEM file paths, an optional name to verify. */
    tls?: { caFile?: string; certFile?: string; keyFile?: string; serverName?: string };
    /** Embedded Redis only: a loopback TCP port besides its Unix socket. */
    embeddedPort?: number;
  };
  ingress: {
    host: string;
    port: number;
    bodyLimit: number;
    trustProxy: boolean | string[];
    dedupe: { deliveryIdSeconds: number; contentSeconds: number };
  };
  worker: {
    metricsHost: string;
    metricsPort?: number;
    /** SIGTERM's wait for in-flight deliveries, ms: the slowest target's timeout + 2 s unless configured. */
    shutdownGraceMs: number;
  };
  admin: {
    host: string;
    port: number;
    publicBasePath: string;
    tokens: { name: string; token: string; role: 'viewer' | 'operator' }[];
    oidc?: { issuer: string; audience: string; jwksUrl: string; rolesClaim: string };
  };
  sources: SourceConfig[];
  targets: TargetConfig[];
  routes: RouteConfig[];
  loop: {
    skipMarkers: string[];
    ignoreActors: string[];
    maxTriggersPerRef: { count: number; windowSeconds: number };
    collapseMergePush: boolean;
    collapseWindowSeconds: number;
    collapseWaitSeconds: number;
    chain: { maxTurns: number; memorySeconds: number; actors: string[] };
  };
  retention: { eventsMs: number; completedJobsMs: number; deadLettersMs: number };
  log: { level: string };
}
