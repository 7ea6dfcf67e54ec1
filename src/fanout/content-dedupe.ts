import type { Envelope } from '../bitbucket/envelope.js';
import { contentKeys } from '../bitbucket/normalise.js';
import type { Config } from '../config/types.js';
import type { Keys } from '../queue/keys.js';

/** A content dedupe key, the tag its value must carry to make a copy, and how long it is kept. */
export interface ContentDedupeKey {
  key: string;
  tag: string;
  ttlSeconds: number;
}

/**
 * The keys that make a routed event a copy of a stored one (`contentWindow`, see contentKeys): each ref's
 * transition, a merge, or the body. An event is a copy only when all of them are held (route-event.lua). The
 * request keys (delivery id, body hash) are the ingress's (append-event.lua): they need no parse.
 */
export function contentDedupeKeys(
  keys: Keys,
  windows: Config['ingress']['dedupe'],
  input: { sourceId: string; envelope: Envelope; bodyHash: string; shard: number },
): ContentDedupeKey[] {
  if (windows.contentWindow <= 0) return [];
  return contentKeys(input.sourceId, input.envelope, input.bodyHash).map((c) => ({
    key: keys.dedupeContent(c.key, input.shard),
    tag: c.tag,
    ttlSeconds: Math.ceil(windows.contentWindow / 1000),
  }));
}
