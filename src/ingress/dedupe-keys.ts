import { createHash } from 'node:crypto';
import type { Envelope } from '../bitbucket/envelope.js';
import { contentKeys } from '../bitbucket/normalise.js';
import type { Config } from '../config/types.js';
import type { DedupeKey } from '../queue/event-store.js';
import type { Keys } from '../queue/keys.js';

export interface DedupeInput {
  sourceId: string;
  deliveryId: string;
  envelope: Envelope;
  body: Buffer;
  /** The event's shard: every dedupe key lives in it, so the store script stays one slot on a cluster. */
  shard: number;
  /**
   * Only the request keys: a quarantined event's envelope may lack what its body holds, so it takes no
   * change keys (a later event repeating its refs is not held to be a copy of it).
   */
  requestOnly?: boolean;
}

/**
 * The keys that make a request a copy of a stored event:
 * - the delivery id (Bitbucket's own retry), kept `deliveryIdWindow`;
 * - the body's SHA-256 (the replay guard): Bitbucket's signature has no timestamp, so a captured signed body
 *   resent with a fresh delivery id is only recognisable by its bytes; kept as long as delivery ids;
 * - the change (`contentWindow`, see contentKeys): each ref's transition, a merge, or the body.
 */
export function dedupeKeys(
  keys: Keys,
  windows: Config['ingress']['dedupe'],
  input: DedupeInput,
): DedupeKey[] {
  const { sourceId, shard } = input;
  const bodyHash = createHash('sha256').update(input.body).digest('base64url');
  const out: DedupeKey[] = [
    {
      key: keys.dedupeDelivery(sourceId, input.deliveryId, shard),
      tag: '',
      ttlSeconds: Math.ceil(windows.deliveryIdWindow / 1000),
      kind: 'request',
    },
    {
      key: keys.dedupeBody(sourceId, bodyHash, shard),
      tag: '',
      ttlSeconds: Math.ceil(windows.deliveryIdWindow / 1000),
      kind: 'request',
    },
  ];
  if (windows.contentWindow > 0 && !input.requestOnly) {
    for (const c of contentKeys(sourceId, input.envelope, bodyHash)) {
      out.push({
        key: keys.dedupeContent(c.key, shard),
        tag: c.tag,
        ttlSeconds: Math.ceil(windows.contentWindow / 1000),
        kind: 'change',
      });
    }
  }
  return out;
}
