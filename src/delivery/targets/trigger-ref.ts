import type { Envelope } from '../../bitbucket/envelope.js';
import type { TriggerField } from '../../config/types.js';

/**
 * What a trigger API (GitHub Actions, GitLab, Pipelines, CircleCI, Azure, Bamboo, a Jenkins job) is asked to
 * build for an event. These APIs start a build of a branch or tag, not of a webhook, so every one of them
 * needs the same answer: which ref, at which commit, and why.
 */
export interface TriggerRef {
  kind: 'branch' | 'tag';
  name: string;
  /** The commit the event names: 40 characters on pushes, often 12 on Cloud pull requests. */
  commit?: string;
  pullRequest?: { id: number; sourceBranch?: string; destinationBranch?: string };
}

/** An event a trigger target has nothing to do with: recorded with this reason, never sent. */
export interface NotApplicable {
  notApplicable: string;
}

// Pull request events that change what would be built. Approvals, comments, declines change no code.
const PR_BUILD = new Set(['pullrequest:created', 'pullrequest:updated', 'pr:opened', 'pr:from_ref_updated']);
const PR_MERGED = new Set(['pullrequest:fulfilled', 'pr:merged']);

/**
 * Push: the first ref that got a new head (Bitbucket sends one change per push in practice), at that head.
 * A push that only deleted refs has nothing to build. Merged pull request: the destination branch at the merge
 * commit. Opened or updated pull request: the source branch at its head. Anything else: not applicable.
 */
export function triggerRef(env: Envelope): TriggerRef | NotApplicable {
  if (env.refs.length > 0) {
    const ref = env.refs.find((r) => r.newHash);
    if (!ref?.newHash) {
      const gone = env.refs[0]!;
      return { notApplicable: `${gone.kind} ${gone.name} deleted` };
    }
    return { kind: ref.kind, name: ref.name, commit: ref.newHash };
  }
  const pr = env.pullRequest;
  if (!pr) return { notApplicable: `${env.eventKey} names no branch or tag` };
  const about = {
    id: pr.id,
    ...(pr.sourceBranch ? { sourceBranch: pr.sourceBranch } : {}),
    ...(pr.destinationBranch ? { destinationBranch: pr.destinationBranch } : {}),
  };
  if (PR_MERGED.has(env.eventKey)) {
    if (!pr.destinationBranch) return { notApplicable: 'merged pull request without a destination' };
    return {
      kind: 'branch',
      name: pr.destinationBranch,
      ...(pr.mergeCommit ? { commit: pr.mergeCommit } : {}),
      pullRequest: about,
    };
  }
  if (PR_BUILD.has(env.eventKey)) {
    if (!pr.sourceBranch) return { notApplicable: 'pull request without a source branch' };
    return {
      kind: 'branch',
      name: pr.sourceBranch,
      ...(pr.sourceHash ? { commit: pr.sourceHash } : {}),
      pullRequest: about,
    };
  }
  return { notApplicable: `${env.eventKey} changes no code` };
}

export function isNotApplicable(ref: TriggerRef | NotApplicable): ref is NotApplicable {
  return 'notApplicable' in ref;
}

/** A full commit hash: the only form every API accepts as a revision (Cloud PRs carry 12 characters). */
export function fullCommit(ref: TriggerRef): string | undefined {
  return ref.commit && /^[0-9a-f]{40}$/i.test(ref.commit) ? ref.commit : undefined;
}

/** The value of each field for this ref and event; absent when the event has none (e.g. `tag` on a branch). */
export function fieldValue(
  field: TriggerField,
  ref: TriggerRef,
  env: Envelope,
  eventId: string,
): string | undefined {
  switch (field) {
    case 'branch':
      return ref.kind === 'branch' ? ref.name : undefined;
    case 'tag':
      return ref.kind === 'tag' ? ref.name : undefined;
    case 'ref':
      return ref.name;
    case 'refType':
      return ref.kind;
    case 'commit':
      return ref.commit;
    case 'repository':
      return env.repository ?? undefined;
    case 'eventKey':
      return env.eventKey;
    case 'eventId':
      return eventId;
    case 'pullRequestId':
      return ref.pullRequest ? String(ref.pullRequest.id) : undefined;
    case 'pullRequestSourceBranch':
      return ref.pullRequest?.sourceBranch;
    case 'pullRequestDestinationBranch':
      return ref.pullRequest?.destinationBranch;
  }
}

/**
 * The parameters sent where a receiver takes any name (GitLab variables, Jenkins parameters, Bamboo variables,
 * Pipelines variables, repository_dispatch's client_payload): seven, within GitHub's limit of ten.
 */
export const DEFAULT_PARAMETERS: Readonly<Record<string, TriggerField>> = {
  BITBUCKET_BRANCH: 'branch',
  BITBUCKET_TAG: 'tag',
  BITBUCKET_COMMIT: 'commit',
  BITBUCKET_REPOSITORY: 'repository',
  BITBUCKET_EVENT_KEY: 'eventKey',
  BITBUCKET_PR_ID: 'pullRequestId',
  HOOKRELAY_EVENT_ID: 'eventId',
};

/**
 * Name → string value for the configured mapping (or `defaults`); fields the event lacks are left out, so the
 * receiver uses its own default for them. Values are strings: GitHub inputs, GitLab variables, Jenkins and
 * Bamboo parameters are all strings on the wire.
 */
export function triggerParameters(
  mapping: Readonly<Record<string, TriggerField>> | undefined,
  defaults: Readonly<Record<string, TriggerField>>,
  ref: TriggerRef,
  env: Envelope,
  eventId: string,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, field] of Object.entries(mapping ?? defaults)) {
    const value = fieldValue(field, ref, env, eventId);
    if (value !== undefined) out[name] = value;
  }
  return out;
}
