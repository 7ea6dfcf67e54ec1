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
  /**
   * `workspace/slug` on Cloud, `PROJECT/slug` on Data Center; for a rename or move (DC `repo:modified`) the new
   * name. Null for events about no repository (project events).
   */
  repository: string | null;
  /** The project key of a project-level event (Cloud `project:updated`, DC `project:modified`). */
  project?: string;
  repositoryUuid?: string;
  refs: RefChange[];
  /**
   * The refs whose change repeats that ref's last transition seen within the content dedupe window (another
   * hook's copy, a replay): set by the store, absent when none repeat. An event all of whose refs repeat is a
   * duplicate and not stored at all.
   */
  repeatedRefs?: string[];
  headCommit?: CommitInfo;
  /** New commits that the payload lists (Cloud lists at most 5 per change; older DC lists none). */
  commits: CommitInfo[];
  pullRequest?: PullRequestInfo;
  actor?: Person;
}
