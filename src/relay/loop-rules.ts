import { createHash } from 'node:crypto';
import picomatch from 'picomatch';
import type { Envelope, Person } from '../bitbucket/envelope.js';
import { apiAuthorization } from '../bitbucket-api/commit-message.js';
import type { Config, SourceConfig } from '../config/types.js';
import type { Evidence } from '../queue/delivery-state.js';
import { branchTransition } from './branch-transition.js';
import type { JobGuard, StaticSuppressReason } from './job-types.js';

/*
 * The loop guard's rules that need nothing but the event: skip markers, ignored actors, and the inputs of the
 * Redis rules (merge marks, the commits a push builds on, the pusher's identity). Pure, so unit-tested alone;
 * loop-guard.ts runs the Redis side.
 */

type LoopConfig = Config['loop'];

export const MERGED_EVENTS = new Set(['pullrequest:fulfilled', 'pr:merged']);
// Cloud pull request payloads carry 12-character hashes, pushes 40: both sides key on the common prefix.
export const MERGE_HASH_PREFIX = 12;
// A push names its old and new head and the head commit's parents; more than this is a push of many refs,
// whose first few are enough to find a chain.
const MAX_PARENTS = 8;

/**
 * Identity patterns: globs (`*` for any run of characters, e.g. `*@ci.acme.test`, `ci-bot*`), compared without
 * case against a person's account id, uuid, name and email. A pattern is also compared literally, so a Cloud
 * uuid with its braces (`{7d3a…}`) matches as written instead of being read as a brace expansion.
 */
export function actorMatcher(patterns: readonly string[]): (p: Person | undefined) => boolean {
  if (patterns.length === 0) return () => false;
  const literal = new Set(patterns.map((x) => x.toLowerCase()));
  const glob = picomatch([...patterns], { nocase: true, dot: true, bash: true });
  const one = (value: string | undefined) =>
    value !== undefined && value !== '' && (literal.has(value.toLowerCase()) || glob(value));
  return (p) => !!p && (one(p.accountId) || one(p.uuid) || one(p.name) || one(p.email));
}

/** The first marker the text contains (any case), or undefined. */
export function findSkipMarker(text: string | undefined, markers: readonly string[]): string | undefined {
  if (!text) return undefined;
  const lower = text.toLowerCase();
  return markers.find((marker) => lower.includes(marker.toLowerCase()));
}

export function hasSkipMarker(message: string | undefined, markers: readonly string[]): boolean {
  return findSkipMarker(message, markers) !== undefined;
}

/** How a person is named in evidence: the payload's name, else its ids. */
export function personName(p: Person | undefined): string {
  return p?.name ?? p?.uuid ?? p?.accountId ?? p?.email ?? 'unknown';
}

/**
 * A short, stable digest of a person's identity (Cloud uuid, Data Center user slug, else account id or name):
 * the key of per-actor counters and of who pushed a delivered commit.
 */
export function actorDigest(p: Person | undefined): string {
  const identity = (p?.uuid ?? p?.accountId ?? p?.name ?? p?.email ?? '').toLowerCase();
  if (identity === '') return '-';
  return createHash('sha256').update(identity).digest('hex').slice(0, 16);
}

const prefix = (hash: string) => hash.toLowerCase().slice(0, MERGE_HASH_PREFIX);

/**
 * The commits a push builds on, as 12-character prefixes: each ref's old head, its new head (a tag or branch
 * made at an already built commit, a fast-forward to one), and the head commit's parents (the other side of
 * a merge). A push is a turn of a causal chain when one of them is a commit the relay delivered.
 */
export function chainParents(env: Envelope): string[] {
  const found = new Set<string>();
  const add = (hash: string | null | undefined) => {
    if (hash && hash.length >= 7 && found.size < MAX_PARENTS) found.add(prefix(hash));
  };
  for (const ref of env.refs) {
    if (ref.deleted) continue;
    add(ref.oldHash);
    add(ref.newHash);
  }
  for (const parent of env.headCommit?.parents ?? []) add(parent);
  return [...found];
}

/** What a delivered event built, as 12-character prefixes: a push's new heads, a merged PR's merge commit. */
export function deliveredHeads(env: Envelope): string[] {
  if (MERGED_EVENTS.has(env.eventKey)) {
    const merge = env.pullRequest?.mergeCommit;
    return merge && merge.length >= 7 ? [prefix(merge)] : [];
  }
  const heads = new Set<string>();
  for (const ref of env.refs) if (ref.newHash && ref.newHash.length >= 7) heads.add(prefix(ref.newHash));
  return [...heads];
}

/**
 * Keys that identify "this change was merged into this branch": a merge's destination branch and merge commit;
 * a push's updated branches and their new heads (a new branch is never a merge's push). The branch is part of
 * the key so that pushing an already built commit to another branch is not mistaken for the merge's push.
 */
export function mergeMarks(env: Envelope): string[] {
  const mark = (branch: string, hash: string) => `${branch}:${prefix(hash)}`;
  if (MERGED_EVENTS.has(env.eventKey)) {
    const pr = env.pullRequest;
    return pr?.mergeCommit && pr.mergeCommit.length >= 7 && pr.destinationBranch
      ? [mark(pr.destinationBranch, pr.mergeCommit)]
      : [];
  }
  return env.refs
    .filter(
      (r) => r.kind === 'branch' && !r.created && typeof r.newHash === 'string' && r.newHash.length >= 7,
    )
    .map((r) => mark(r.name, r.newHash!));
}

export interface StaticVerdict {
  reason: StaticSuppressReason;
  evidence: Evidence;
}

/**
 * The rules that depend on the event alone. Pushes: a skip marker in the head commit message; the actor
 * matching `ignoreActors`, or every new commit the payload lists authored by a matching identity (a bot
 * pushing through a human's credentials still authors its own commits). Merged pull requests: a skip marker
 * in the title, the merging actor matching `ignoreActors` (the merge commit's message is judged on its push,
 * whose verdict the merged PR inherits: PR payloads carry only the merge commit's hash).
 */
export class StaticLoopRules {
  private readonly ignored: (p: Person | undefined) => boolean;
  private readonly chained: (p: Person | undefined) => boolean;

  constructor(private readonly loop: LoopConfig) {
    this.ignored = actorMatcher(loop.ignoreActors);
    this.chained = actorMatcher(loop.chain.actors);
  }

  check(env: Envelope, headMessage?: string): StaticSuppressReason | null {
    return this.verdict(env, headMessage)?.reason ?? null;
  }

  /** `headMessage`: the head commit's message when the payload lacked it and it was looked up. */
  verdict(env: Envelope, headMessage?: string): StaticVerdict | null {
    const markers = this.loop.skipMarkers;
    const ignored = (actor: Person | undefined, where: string): StaticVerdict => ({
      reason: 'ignored-actor',
      evidence: { rule: 'ignored-actor', actor: personName(actor), where },
    });
    if (MERGED_EVENTS.has(env.eventKey)) {
      const marker = findSkipMarker(env.pullRequest?.title, markers);
      if (marker) {
        return {
          reason: 'skip-marker',
          evidence: { rule: 'skip-marker', marker, where: 'pull request title' },
        };
      }
      if (this.ignored(env.actor)) return ignored(env.actor, 'merging actor');
      return null;
    }
    const message = env.headCommit?.message ?? headMessage;
    const marker = findSkipMarker(message, markers);
    if (marker) {
      return {
        reason: 'skip-marker',
        evidence: { rule: 'skip-marker', marker, where: 'head commit message' },
      };
    }
    if (env.refs.length > 0 && this.loop.ignoreActors.length > 0) {
      if (this.ignored(env.actor)) return ignored(env.actor, 'pusher');
      const commits = env.commits.length > 0 ? env.commits : env.headCommit ? [env.headCommit] : [];
      if (commits.length > 0 && commits.every((c) => this.ignored(c.author))) {
        return ignored(commits[0]!.author, 'author of every new commit');
      }
    }
    return null;
  }

  /** Whether the causal chain rule counts this pusher (`loop.chain.actors`, everyone by default). */
  chainApplies(actor: Person | undefined): boolean {
    return this.chained(actor ?? { name: '-' });
  }
}

/**
 * A Data Center push whose payload carries no commit message (older servers send refs only): the head commit
 * to read the message of, or null.
 */
export function missingMessage(env: Envelope): string | null {
  if (env.platform !== 'datacenter' || env.headCommit?.message !== undefined) return null;
  return env.refs.find((ref) => ref.newHash)?.newHash ?? null;
}

/**
 * The guard's inputs of an accepted (or released) event, with the head commit to look up when the payload has
 * no message and the source can ask its server for it.
 */
export function eventGuard(
  rules: StaticLoopRules,
  env: Envelope,
  source: Pick<SourceConfig, 'id' | 'api'>,
  receivedAt: number,
): JobGuard {
  const lookup = missingMessage(env);
  return {
    ...jobGuard(rules, env, source.id, receivedAt),
    ...(lookup && apiAuthorization(source) ? { lookup } : {}),
  };
}

/** The guard's inputs of an event (see JobGuard), for its delivery jobs. */
export function jobGuard(
  rules: StaticLoopRules,
  env: Envelope,
  sourceId: string,
  receivedAt: number,
): JobGuard {
  const fixed = rules.check(env);
  const push = env.refs.length > 0;
  const branch = branchTransition(env);
  return {
    repository: env.repository ?? '-',
    refs: env.refs.map((ref) => ref.name),
    mergeMarks: mergeMarks(env),
    ...(MERGED_EVENTS.has(env.eventKey) ? { merge: true as const } : {}),
    ...(fixed ? { staticVerdict: fixed } : {}),
    source: sourceId,
    receivedAt,
    ...(push
      ? {
          actor: actorDigest(env.actor),
          actorName: personName(env.actor),
          parents: chainParents(env),
          ...(rules.chainApplies(env.actor) ? { chain: true as const } : {}),
        }
      : {}),
    ...(branch ? { branch } : {}),
  };
}
