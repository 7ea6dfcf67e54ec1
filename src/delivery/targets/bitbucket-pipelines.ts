import type { NothingToSend, OutgoingRequest, RequestContext } from '../relay-headers.js';
import { apiRequest, jsonBody } from './api-request.js';
import {
  DEFAULT_PARAMETERS,
  fullCommit,
  isNotApplicable,
  triggerParameters,
  triggerRef,
} from './trigger-ref.js';

/**
 * Bitbucket Pipelines: POST /2.0/repositories/{workspace}/{repo_slug}/pipelines/ (the run-pipeline operation,
 * https://developer.atlassian.com/cloud/bitbucket/rest/api-group-pipelines/#api-repositories-workspace-repo-slug-pipelines-post).
 * A branch or tag runs that ref's pipeline through a `pipeline_ref_target`. With `customPipeline` the custom
 * pipeline of that name runs (`selector: {type: custom, pattern}`), on the exact commit through a
 * `pipeline_commit_target` when the event names a full hash, else on the ref. Variables are sent as
 * `[{key, value, secured}]`; by default only to custom pipelines, the only ones that declare variables.
 * Answers 201 with the pipeline; 400 (no bitbucket-pipelines.yml, no such pipeline, Pipelines disabled) and 404
 * (no repository, or a ref it lacks) are permanent.
 */
export function buildPipelinesRequest(ctx: RequestContext): OutgoingRequest | NothingToSend {
  const env = ctx.event.envelope;
  const ref = triggerRef(env);
  if (isNotApplicable(ref)) return { skip: ref.notApplicable };
  const custom = ctx.target.customPipeline;
  const selector = custom ? { selector: { type: 'custom', pattern: custom } } : {};
  const commit = fullCommit(ref);
  const target =
    custom && commit
      ? { type: 'pipeline_commit_target', commit: { type: 'commit', hash: commit }, ...selector }
      : { type: 'pipeline_ref_target', ref_type: ref.kind, ref_name: ref.name, ...selector };
  const values = triggerParameters(
    ctx.target.parameters,
    custom ? DEFAULT_PARAMETERS : {},
    ref,
    env,
    ctx.event.id,
  );
  const variables = Object.entries(values).map(([key, value]) => ({ key, value, secured: false }));
  return apiRequest(ctx, {
    accept: 'application/json',
    contentType: 'application/json',
    body: jsonBody({ target, ...(variables.length > 0 ? { variables } : {}) }),
  });
}
