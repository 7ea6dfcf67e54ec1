import type { NothingToSend, OutgoingRequest, RequestContext } from '../relay-headers.js';
import { apiRequest } from './api-request.js';
import { DEFAULT_PARAMETERS, isNotApplicable, triggerParameters, triggerRef } from './trigger-ref.js';

/**
 * GitLab CI pipeline trigger: POST /api/v4/projects/:id/trigger/pipeline with the form fields `token`, `ref` and
 * `variables[KEY]=value` (https://docs.gitlab.com/ci/triggers/, https://docs.gitlab.com/api/pipeline_triggers/).
 * GitLab's handler (gitlabhq/gitlabhq, lib/api/ci/triggers.rb) answers 201 with the pipeline, 404 for an unknown
 * project or token, 400 for variables that are not strings and for a ref the project does not have ("Reference
 * not found"). `ref` must be a branch or tag name: a commit hash starts nothing. The trigger token travels in
 * the body, never in the URL, so it stays out of access logs.
 */
export function buildGitlabTriggerRequest(ctx: RequestContext): OutgoingRequest | NothingToSend {
  const env = ctx.event.envelope;
  const ref = triggerRef(env);
  if (isNotApplicable(ref)) return { skip: ref.notApplicable };
  const auth = ctx.target.auth;
  const form = new URLSearchParams();
  form.set('token', auth?.type === 'token' ? auth.token : '');
  form.set('ref', ref.name);
  const variables = triggerParameters(ctx.target.parameters, DEFAULT_PARAMETERS, ref, env, ctx.event.id);
  for (const [key, value] of Object.entries(variables)) form.set(`variables[${key}]`, value);
  return apiRequest(ctx, {
    accept: 'application/json',
    contentType: 'application/x-www-form-urlencoded',
    body: Buffer.from(form.toString()),
  });
}
