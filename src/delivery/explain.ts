import type { Evidence } from '../queue/delivery-state.js';

/** One sentence saying why a rule held a delivery (or what ordering found), from its recorded evidence. */
export function explain(e: Evidence): string {
  const v = (key: string) => String(e[key] ?? '?');
  switch (e.rule) {
    case 'chain-loop':
      return `${v('actor')} pushed on ${v('parentCommit')}, a commit this relay delivered to this target, ${v('turns')} times in a row (loop.chain.maxTurns ${v('maxTurns')}; turns remembered ${v('memorySeconds')} s)`;
    case 'ref-rate':
      return `${v('actor')} pushed to ${v('ref')} more than ${v('count')} times within ${v('windowSeconds')} s (loop.maxTriggersPerRef)`;
    case 'skip-marker':
      return `"${v('marker')}" in the ${v('where')}`;
    case 'ignored-actor':
      return `${v('actor')} (${v('where')}) matches loop.ignoreActors`;
    case 'merge-push-collapsed':
      return `the push of its merge commit (event ${v('pushEvent')}) builds the branch`;
    case 'merge-push-verdict':
      return `inherits the verdict of its merge commit's push (event ${v('pushEvent')}): ${v('pushReason')}`;
    case 'superseded':
      return `a newer push to the branch (event ${v('newerEvent')}, head ${v('newerHead')}) was delivered first; ${e.action === 'skipped' ? 'not sent (skipSuperseded)' : 'sent anyway'}`;
    default:
      return Object.entries(e)
        .map(([key, value]) => `${key}=${value}`)
        .join(' ');
  }
}
