import type { Socket } from 'node:net';
import type { RedisClient } from './redis-connection.js';

const corked = new WeakSet<Socket>();

/**
 * Group commit for one connection: what the handlers of one pass of the event loop's poll phase send over it
 * leaves in one socket write (one writev at the check phase that follows), instead of one write each. Under
 * load the ingress answers many webhooks per pass, and a socket write (with the wake-up of redis-server it
 * causes) costs more than the command it carries. Nothing waits longer than that pass: with one request per
 * pass the write leaves at once. Commands keep their own promises and order.
 *
 * Only a plain connection that is up: a cluster client's writes go to the node connections it picks, and a
 * connection that is not ready queues its commands in ioredis until it is.
 */
export function batchWrites(redis: RedisClient): void {
  if (redis.status !== 'ready' || !('stream' in redis)) return;
  const stream = (redis as unknown as { stream?: Socket }).stream;
  if (!stream || corked.has(stream) || stream.destroyed) return;
  corked.add(stream);
  stream.cork();
  setImmediate(() => {
    corked.delete(stream);
    stream.uncork();
  });
}
