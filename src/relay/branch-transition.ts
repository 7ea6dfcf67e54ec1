import type { Envelope } from '../bitbucket/envelope.js';

/** A single-branch push's move from one head to the next. */
export interface BranchTransition {
  ref: string;
  oldHash: string;
  newHash: string;
}

/**
 * A single-branch push's transition, the only kind whose order of pushes is kept (tags and multi-ref pushes are
 * not): the branch order (delivery/ref-order.ts) and coalescing use it.
 */
export function branchTransition(env: Envelope): BranchTransition | null {
  if (env.refs.length !== 1) return null;
  const ref = env.refs[0]!;
  if (ref.kind !== 'branch' || !ref.newHash) return null;
  return { ref: ref.name, oldHash: (ref.oldHash ?? '').toLowerCase(), newHash: ref.newHash.toLowerCase() };
}
