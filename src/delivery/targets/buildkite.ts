import type { Envelope } from '../../bitbucket/envelope.js';
import {
  type NothingToSend,
  type OutgoingRequest,
  type RequestContext,
  relayHeaders,
} from '../relay-headers.js';
import { lower } from './http.js';

export interface BuildkiteBuild {
  commit: string;
  branch: string;
  message: string;
  env: Record<string, string>;
  pull_request_id?: number;
  pull_request_base_branch?: string;
}

const MERGED = new Set(['pullrequest:fulfilled', 'pr:merged']);

/**
 * What to build for an event. Push: the first branch or tag that got a new head, at that commit. Merged pull
 * request: the destination branch at the merge commit. Other pull request events: the source branch at its
 * head, with the PR fields Buildkite shows. Anything else (a deleted branch, a comment) has nothing to build.
 */
export function buildkiteBuild(env: Envelope, eventId: string): BuildkiteBuild | null {
  const base = {
    BITBUCKET_EVENT_KEY: env.eventKey,
    BITBUCKET_REPOSITORY: env.repository ?? '',
    HOOKRELAY_EVENT_ID: eventId,
  };
  const ref = env.refs.find((r) => r.newHash);
  if (ref?.newHash) {
    const head = env.headCommit?.hash === ref.newHash ? env.headCommit : undefined;
    return {
      commit: ref.newHash,
      branch: ref.name,
      message: head?.message?.trim() || `${env.eventKey} ${ref.name}`,
      env: base,
    };
  }
  const pr = env.pullRequest;
  if (!pr) return null;
  const message = pr.title?.trim() || `Pull request #${pr.id}`;
  if (MERGED.has(env.eventKey) || pr.state === 'MERGED') {
    if (!pr.destinationBranch) return null;
    return { commit: pr.mergeCommit ?? 'HEAD', branch: pr.destinationBranch, message, env: base };
  }
  if (!pr.sourceBranch) return null;
  return {
    commit: pr.sourceHash ?? 'HEAD',
    branch: pr.sourceBranch,
    message,
    env: base,
    pull_request_id: pr.id,
    ...(pr.destinationBranch ? { pull_request_base_branch: pr.destinationBranch } : {}),
  };
}

/** `url` is the pipeline's builds endpoint: `https://api.buildkite.com/v2/organizations/{org}/pipelines/{p}/builds`. */
export function buildBuildkiteRequest(ctx: RequestContext): OutgoingRequest | NothingToSend {
  const build = buildkiteBuild(ctx.event.envelope, ctx.event.id);
  if (!build) return { skip: 'nothing to build' };
  return {
    url: ctx.target.url,
    method: 'POST',
    headers: { ...lower(ctx.target.headers), 'content-type': 'application/json', ...relayHeaders(ctx) },
    body: Buffer.from(JSON.stringify(build)),
  };
}
