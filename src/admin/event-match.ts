import type { EventMeta } from './event-view.js';
import type { Filter } from './filters.js';
import { globMatch } from './filters.js';

/**
 * The filters that are about the event itself (not one delivery of it), shared by the event, dead-letter and
 * suppressed lists. An expired event (no meta) matches only a filter that asks nothing of the event.
 */
export function matchesEvent(eventId: string, meta: EventMeta | null, f: Filter): boolean {
  if (f.eventId && eventId !== f.eventId) return false;
  const asksEvent =
    f.source ||
    f.repo ||
    f.eventKey ||
    f.branch ||
    f.commit ||
    f.actor ||
    f.deliveryId ||
    f.since !== undefined ||
    f.until !== undefined;
  if (!asksEvent) return true;
  if (!meta) return false;
  const env = meta.envelope;
  if (f.source && meta.sourceId !== f.source) return false;
  if (f.repo && !globMatch(f.repo, env.repository)) return false;
  if (f.eventKey && !globMatch(f.eventKey, env.eventKey)) return false;
  if (f.deliveryId && env.deliveryId !== f.deliveryId) return false;
  if (f.since !== undefined && meta.receivedAt < f.since) return false;
  if (f.until !== undefined && meta.receivedAt >= f.until) return false;
  if (f.branch) {
    const pattern = f.branch;
    const names = [
      ...env.refs.map((r) => r.name),
      ...(env.pullRequest?.sourceBranch ? [env.pullRequest.sourceBranch] : []),
      ...(env.pullRequest?.destinationBranch ? [env.pullRequest.destinationBranch] : []),
    ];
    if (!names.some((n) => globMatch(pattern, n))) return false;
  }
  if (f.commit) {
    const prefix = f.commit;
    const hashes = [
      env.headCommit?.hash,
      ...env.refs.map((r) => r.newHash),
      env.pullRequest?.sourceHash,
      env.pullRequest?.mergeCommit,
    ];
    if (!hashes.some((h) => h?.toLowerCase().startsWith(prefix))) return false;
  }
  if (f.actor) {
    const a = env.actor;
    const pattern = f.actor;
    if (!a || ![a.name, a.uuid, a.accountId].some((v) => globMatch(pattern, v))) return false;
  }
  return true;
}
