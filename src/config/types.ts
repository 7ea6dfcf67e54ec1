/**
 * The validated, normalised and frozen config, derived from the schema (schema.ts) so the two cannot drift.
 * Durations are milliseconds here, whatever the file said.
 */

import type { StaticDecode } from '@sinclair/typebox';
import type { configSchema, routeSchema, sourceSchema, targetSchema } from './schema.js';
import type { TRIGGER_FIELDS } from './target-rules.js';

type Decoded = StaticDecode<typeof configSchema>;

export type TargetConfig = StaticDecode<typeof targetSchema>;
export type TargetType = TargetConfig['type'];
export type TargetAuth = NonNullable<TargetConfig['auth']>;
export type RetryPolicy = TargetConfig['retry'];

/** What a trigger target's parameter carries, taken from the event (see src/delivery/targets/trigger-ref.ts). */
export type TriggerField = (typeof TRIGGER_FIELDS)[number];

export type SourceConfig = StaticDecode<typeof sourceSchema>;
export type Platform = SourceConfig['platform'];

/** A route's `id` is filled in by the loader (`route-<index>`) when the file has none. */
export type RouteConfig = StaticDecode<typeof routeSchema> & { id: string };

export type Durability = Decoded['redis']['durability'];

export type Config = Omit<Decoded, 'redis' | 'worker' | 'routes'> & {
  /** Shards of the keyspace on a cluster (see keys.ts); always 1 without one. */
  redis: Decoded['redis'] & { shards: number };
  /** `shutdownGrace` absent from the file: the slowest target's timeout + 2 s. */
  worker: Decoded['worker'] & { shutdownGrace: number };
  routes: RouteConfig[];
};
