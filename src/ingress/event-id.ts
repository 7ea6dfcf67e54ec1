import { randomUUID } from 'node:crypto';

/**
 * A UUIDv7 (RFC 9562): 48-bit millisecond timestamp, version 7, then random bits, so event ids sort by arrival.
 * Built on crypto.randomUUID, which draws from a pooled entropy buffer: the `uuid` package's v7 asks the OS for
 * 16 fresh bytes per id, which showed up in the ingress's CPU profile under load (docs/benchmarks.md).
 */
export function newEventId(now = Date.now(), shard?: number): string {
  const ts = now.toString(16).padStart(12, '0');
  const r = randomUUID();
  // r is xxxxxxxx-xxxx-4xxx-Vxxx-xxxxxxxxxxxx: keep its random tail and RFC variant, replace time and version.
  const id = `${ts.slice(0, 8)}-${ts.slice(8, 12)}-7${r.slice(15)}`;
  return shard === undefined ? id : withShard(id, shard);
}

/**
 * The id with its last 3 hex digits naming `shard` (keys.ts), leaving 62 random bits: a new event's inbox
 * shard, or the routed record of an event whose repository lives in another shard than its inbox.
 */
export function withShard(id: string, shard: number): string {
  return id.slice(0, -3) + shard.toString(16).padStart(3, '0');
}
