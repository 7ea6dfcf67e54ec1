import type { Config } from '../config/types.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { EventStore } from '../queue/event-store.js';
import type { Keys } from '../queue/keys.js';
import type { RedisClient } from '../queue/redis-connection.js';
import type { RelayIdentity } from '../queue/relay-id.js';

/** What the ingress needs, built once by the process start (or a test) and handed to the Fastify plugin. */
export interface IngressDeps {
  config: Config;
  log: Logger;
  redis: RedisClient;
  keys: Keys;
  store: EventStore;
  metrics: Metrics;
  relayId: RelayIdentity;
}
