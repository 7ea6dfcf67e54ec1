/** The Redis server cannot keep the promise `redis.durability` makes: the relay refuses to start. */
export class DurabilityError extends Error {}

/** The event is stored on the primary but not yet as durable as `redis.durability` asks: answer 503, keep it. */
export class NotDurableYet extends Error {}
