import type { Config } from '../config/types.js';

/**
 * Every Redis key the relay writes outside BullMQ's own, in one place. Each target has its own BullMQ queue so
 * that concurrency, rate limits and the circuit breaker are per target, and on a cluster each queue carries
 * its own hash tag so targets spread over shards.
 */
export interface Keys {
  prefix: string;
  event(id: string): string;
  eventIndex: string;
  dedupeDelivery(sourceId: string, deliveryId: string): string;
  dedupeContent(contentKey: string): string;
  queueName(targetId: string): string;
  queuePrefix(targetId: string): string;
  loop(name: string): string;
  /** ZSET of suppressed deliveries (member `<eventId>.<targetId>`, score = time suppressed). */
  suppressed: string;
  /** Hash of the shared circuit-breaker state of a target (consecutive failures, open until, probe). */
  circuit(targetId: string): string;
}

export function makeKeys(config: Pick<Config, 'redis'>): Keys {
  const p = config.redis.prefix;
  const clustered = config.redis.cluster !== undefined;
  return {
    prefix: p,
    event: (id) => `${p}:ev:${id}`,
    eventIndex: `${p}:events`,
    dedupeDelivery: (sourceId, deliveryId) => `${p}:dd:${sourceId}:${deliveryId}`,
    dedupeContent: (contentKey) => `${p}:dc:${contentKey}`,
    queueName: (targetId) => `deliver-${targetId}`,
    queuePrefix: (targetId) => (clustered ? `{${p}-${targetId}}` : p),
    loop: (name) => `${p}:loop:${name}`,
    suppressed: `${p}:suppressed`,
    circuit: (targetId) => `${p}:circuit:${targetId}`,
  };
}
