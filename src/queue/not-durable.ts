/** The event is stored on the primary but not yet as durable as `redis.durability` asks: answer 503, keep it. */
export class NotDurableYet extends Error {}
