import calculateSlot from 'cluster-key-slot';
import { type Cluster, Redis, type RedisOptions } from 'ioredis';

/**
 * Plain connections to a cluster's primaries, for what must happen on the one node that holds a slot. A
 * durable store writes an event and then waits (WAIT/WAITAOF) for that node's replicas or AOF, and both must
 * go over one connection to that node: ioredis' Cluster client routes keyed commands, but sends a WAIT to any
 * node. The slot map is the Cluster client's own; a MOVED answer asks it to refresh.
 */
export class ClusterNodes {
  private readonly conns = new Map<string, Redis>();

  constructor(
    private readonly cluster: Cluster,
    private readonly options: RedisOptions,
  ) {}

  /** The connection to the primary that holds `key`'s slot, per the slot map, or undefined while unknown. */
  forKey(key: string): Redis | undefined {
    const nodeKey = this.cluster.slots[calculateSlot(key)]?.[0];
    if (!nodeKey) return undefined;
    let conn = this.conns.get(nodeKey);
    if (!conn) {
      const at = nodeKey.lastIndexOf(':');
      conn = new Redis({ ...this.options, host: nodeKey.slice(0, at), port: Number(nodeKey.slice(at + 1)) });
      // Reported by the Cluster client's own handler; a failed command here answers 503.
      conn.on('error', () => {});
      this.conns.set(nodeKey, conn);
    }
    return conn;
  }

  /** After a MOVED or ASK (resharding, failover): the next request uses the refreshed map. */
  refresh(): void {
    this.cluster.refreshSlotsCache();
  }

  close(): void {
    for (const conn of this.conns.values()) conn.disconnect();
    this.conns.clear();
  }
}
