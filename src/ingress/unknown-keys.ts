import type { Metrics } from '../metrics.js';

/** Distinct unknown keys counted under their own label per source; any more share OVERFLOW_LABEL. */
export const UNKNOWN_KEY_LABELS = 32;
export const OVERFLOW_LABEL = 'other';

/**
 * Counts events whose well-formed key the relay does not know, so ops see a Bitbucket upgrade's new keys
 * (`hookrelay_unknown_event_keys_total{source,key}`). The key is a signed header, so only an authentic sender
 * can add labels, and at most UNKNOWN_KEY_LABELS per source per process.
 */
export class UnknownKeyCounter {
  private readonly seen = new Map<string, Set<string>>();

  constructor(private readonly metrics: Metrics) {}

  count(source: string, key: string): void {
    let keys = this.seen.get(source);
    if (!keys) {
      keys = new Set();
      this.seen.set(source, keys);
    }
    if (!keys.has(key) && keys.size < UNKNOWN_KEY_LABELS) keys.add(key);
    this.metrics.unknownEventKeys.inc({ source, key: keys.has(key) ? key : OVERFLOW_LABEL });
  }
}
