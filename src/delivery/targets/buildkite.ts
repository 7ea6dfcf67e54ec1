import type { Envelope, Person } from '../../bitbucket/envelope.js';
import {
  type NothingToSend,
  type OutgoingRequest,
  type RequestContext,
  relayHeaders,
} from '../relay-headers.js';
import { lower } from './http.js';

/**
 * Buildkite's create-build API (buildkite/docs, pages/apis/rest_api/builds.md, "Create a build";
 * https://buildkite.com/docs/apis/rest-api/builds#create-a-build): POST JSON to the pipeline's builds URL,
 * `commit` and `branch` required, answered 201 with the build, 422 when it cannot be created.
 */
export interface BuildkiteBuild {
  commit: string;
  branch: string;
  message: string;
  author?: { name: string; email: string };
  env: Record<string, string>;
  meta_data: Record<string, string>;
  pull_request_id?: number;
  pull_request_base_branch?: string;
  pull_request_repository?: string;
}

/** meta_data keys that mark a build as this delivery's: what the look-up before a retry matches on. */
export const IDEMPOTENCY_META = 'hookrelay_idempotency_key';
export const REF_META = 'hookrelay_ref';

const MERGED = new Set(['pullrequest:fulfilled', 'pr:merged']);
const FULL_HASH = /^[0-9a-f]{40}$/i;

function author(person: Person | undefined): BuildkiteBuild['author'] {
  // Both or nothing: the docs ask for an object with a name and an email key.
  return person?.name && person.email ? { name: person.name, email: person.email } : undefined;
}

/**
 * What to build for an event: a list, one build per ref.
 * - Push: every branch or tag that got a new head, at that commit (a branch and a tag pushed together are two
 *   builds; a deleted ref is none). A tag's build names the tag as its branch, as Buildkite's own tag builds do.
 * - Merged pull request: the destination branch at the merge commit.
 * - Other pull request events: the source branch at its head, with the PR fields Buildkite shows.
 * Cloud pull request payloads carry 12-character hashes. They are sent as they are: `commit` takes a "Ref, SHA
 * or tag", git resolves a unique abbreviation, and it is the exact commit the event was about. The agent's
 * direct fetch of an abbreviation fails and it falls back to fetching all heads and tags (buildkite/agent,
 * internal/job/checkout_fetch.go, gitFetchWithFallback): a bigger fetch, never a wrong build, as `HEAD` would
 * be when the branch moved on before the agent ran.
 */
export function buildkiteBuilds(env: Envelope, eventId: string, key: string): BuildkiteBuild[] {
  const base = (ref: string) => ({
    env: {
      BITBUCKET_EVENT_KEY: env.eventKey,
      BITBUCKET_REPOSITORY: env.repository ?? '',
      HOOKRELAY_EVENT_ID: eventId,
    },
    meta_data: { [IDEMPOTENCY_META]: key, [REF_META]: ref },
  });
  const pushed = env.refs.filter((r) => r.newHash && !r.deleted);
  if (pushed.length > 0) {
    return pushed.map((ref) => {
      const hash = ref.newHash!;
      const head = env.headCommit?.hash === hash ? env.headCommit : env.commits.find((c) => c.hash === hash);
      const build: BuildkiteBuild = {
        commit: hash,
        branch: ref.name,
        message: head?.message?.trim() || `${env.eventKey} ${ref.name}`,
        ...base(`${ref.kind}:${ref.name}`),
      };
      const by = author(head?.author);
      if (by) build.author = by;
      if (ref.kind === 'tag') build.env.BITBUCKET_TAG = ref.name;
      return build;
    });
  }
  const pr = env.pullRequest;
  if (!pr) return [];
  const message = pr.title?.trim() || `Pull request #${pr.id}`;
  const by = author(pr.author);
  if (MERGED.has(env.eventKey) || pr.state === 'MERGED') {
    if (!pr.destinationBranch) return [];
    return [
      {
        commit: pr.mergeCommit ?? 'HEAD',
        branch: pr.destinationBranch,
        message,
        ...(by ? { author: by } : {}),
        ...base(`branch:${pr.destinationBranch}`),
      },
    ];
  }
  if (!pr.sourceBranch) return [];
  return [
    {
      commit: pr.sourceHash ?? 'HEAD',
      branch: pr.sourceBranch,
      message,
      ...(by ? { author: by } : {}),
      ...base(`pr:${pr.id}`),
      pull_request_id: pr.id,
      ...(pr.destinationBranch ? { pull_request_base_branch: pr.destinationBranch } : {}),
      ...(pr.forkRepository ? { pull_request_repository: pr.forkRepository } : {}),
    },
  ];
}

/**
 * The builds of this delivery already created, for the look-up before a retry: the pipeline's builds list
 * filtered by branch, by commit when it is a full hash (the filter "only works for full SHA"), and by our
 * meta_data (pages/apis/rest_api/_pipeline_builds_list_query_strings.md); a build counts only if its own
 * meta_data carries this delivery's key and ref, whatever the server's filtering did.
 */
export function lookupUrl(buildsUrl: string, build: BuildkiteBuild): string {
  const url = new URL(buildsUrl);
  url.searchParams.set('branch', build.branch);
  if (FULL_HASH.test(build.commit)) url.searchParams.set('commit', build.commit);
  url.searchParams.set(`meta_data[${IDEMPOTENCY_META}]`, build.meta_data[IDEMPOTENCY_META]!);
  url.searchParams.set('exclude_jobs', 'true');
  url.searchParams.set('exclude_pipeline', 'true');
  return url.toString();
}

export function listsBuild(body: string, build: BuildkiteBuild): boolean {
  let list: unknown;
  try {
    list = JSON.parse(body);
  } catch {
    return false;
  }
  if (!Array.isArray(list)) return false;
  return list.some((b) => {
    const meta = (b as { meta_data?: Record<string, unknown> } | null)?.meta_data;
    return (
      meta?.[IDEMPOTENCY_META] === build.meta_data[IDEMPOTENCY_META] &&
      meta?.[REF_META] === build.meta_data[REF_META]
    );
  });
}

/** `url` is the pipeline's builds endpoint: `https://api.buildkite.com/v2/organizations/{org}/pipelines/{p}/builds`. */
export function buildBuildkiteRequests(ctx: RequestContext): OutgoingRequest[] | NothingToSend {
  const builds = buildkiteBuilds(ctx.event.envelope, ctx.event.id, ctx.job.idempotencyKey);
  if (builds.length === 0) return { skip: 'nothing to build' };
  const headers = {
    ...lower(ctx.target.headers),
    accept: 'application/json',
    ...relayHeaders(ctx),
  };
  return builds.map((build) => ({
    url: ctx.target.url,
    method: 'POST',
    headers: { ...headers, 'content-type': 'application/json' },
    body: Buffer.from(JSON.stringify(build)),
    part: build.meta_data[REF_META],
    alreadyDone: {
      request: { url: lookupUrl(ctx.target.url, build), method: 'GET', headers, body: Buffer.alloc(0) },
      found: (body: string) => listsBuild(body, build),
    },
  }));
}
