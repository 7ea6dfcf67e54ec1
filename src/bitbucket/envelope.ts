import type { Platform } from '../config/types.js';

/** One shape for Cloud and Data Center events: what routing, dedupe, the loop guard and ops read. */

export interface Person {
  name?: string;
  email?: string;
  /** Cloud account_id or Data Center numeric id, as a string. */
  accountId?: string;
  /** Cloud uuid with braces, or Data Center user slug. */
  uuid?: string;
}

export interface RefChange {
  name: string;
  kind: 'branch' | 'tag';
  oldHash: string | null;
  newHash: string | null;
  created: boolean;
  deleted: boolean;
  /** Unknown (false) on Data Center, which does not report forced pushes. */
  forced: boolean;
  truncated: boolean;
}

export interface CommitInfo {
  hash: string;
  message?: string;
  author?: Person;
  /** Parent commit hashes, when the payload lists them (the loop guard follows them to what it delivered). */
  parents?: string[];
}

export interface PullRequestInfo {
  id: number;
  title?: string;
  state?: string;
  sourceBranch?: string;
  sourceHash?: string;
  destinationBranch?: string;
  destinationHash?: string;
  /** Often a 12-character short hash on Cloud: compare by prefix. */
  mergeCommit?: string;
  author?: Person;
  /** A clone URL of the source repository, only when it is a fork (not the destination repository). */
  forkRepository?: string;
}

export interface Envelope {
  platform: Platform;
  eventKey: string;
  deliveryId: string;
  hookId?: string;
  attempt?: number;
  /** `workspace/slug` on Cloud, `PROJECT/slug` on Data Center. */
  repository: string | null;
  repositoryUuid?: string;
  refs: RefChange[];
  headCommit?: CommitInfo;
  /** New commits that the payload lists (Cloud lists at most 5 per change; older DC lists none). */
  commits: CommitInfo[];
  pullRequest?: PullRequestInfo;
  actor?: Person;
}
