import type { TargetConfig } from '../config/types.js';
import { compile as compileGlobs } from '../relay/routing.js';
import { pprAccepts } from './targets/jenkins-bitbucket.js';
import { branchSourceProcesses } from './targets/jenkins-branch-source.js';

const matchers = new WeakMap<TargetConfig, (key: string) => boolean>();

function eventsMatcher(target: TargetConfig): (key: string) => boolean {
  let m = matchers.get(target);
  if (!m) {
    // The routes' glob semantics: a lone `*` is everything, `pr:*` matches `pr:comment:added`.
    m = target.events ? compileGlobs(target.events) : () => true;
    matchers.set(target, m);
  }
  return m;
}

/**
 * Why an event is of no use to a target (the delivery then ends `not-applicable` without a request), or null.
 * The target's own `events` filter first, then what its receiver processes at all: sending a key the receiver
 * refuses would only turn into a dead letter for something nobody lost.
 */
export function notApplicable(target: TargetConfig, eventKey: string): string | null {
  if (!eventsMatcher(target)(eventKey)) return `event ${eventKey} not in the target's events`;
  if (target.type === 'jenkins-branch-source' && !branchSourceProcesses(eventKey)) {
    return `event ${eventKey} not processed by the Bitbucket Branch Source plugin`;
  }
  if (target.type === 'jenkins-bitbucket' && !pprAccepts(eventKey)) {
    return `event ${eventKey} not processed by the Bitbucket Push and Pull Request plugin`;
  }
  return null;
}
