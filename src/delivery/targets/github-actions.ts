import type { NothingToSend, OutgoingRequest, RequestContext } from '../relay-headers.js';
import { apiRequest, jsonBody } from './api-request.js';
import { DEFAULT_PARAMETERS, isNotApplicable, triggerParameters, triggerRef } from './trigger-ref.js';

/**
 * GitHub Actions, through the two dispatch endpoints of the REST API:
 * - repository_dispatch: POST /repos/{owner}/{repo}/dispatches, `{event_type, client_payload}`
 *   (https://docs.github.com/rest/repos/repos#create-a-repository-dispatch-event); the workflow runs on the
 *   default branch and reads `github.event.client_payload`;
 * - workflow_dispatch: POST /repos/{owner}/{repo}/actions/workflows/{workflow}/dispatches, `{ref, inputs}`
 *   (https://docs.github.com/rest/actions/workflows#create-a-workflow-dispatch-event); the workflow runs on
 *   `ref`, and every input must be declared under `on.workflow_dispatch.inputs` or GitHub answers 422.
 * Both answer 204 No Content. Headers as https://docs.github.com/rest/about-the-rest-api/api-versions asks.
 */
const GITHUB_HEADERS = { 'x-github-api-version': '2022-11-28' };
const GITHUB_ACCEPT = 'application/vnd.github+json';

export function buildRepositoryDispatchRequest(ctx: RequestContext): OutgoingRequest | NothingToSend {
  const env = ctx.event.envelope;
  const ref = triggerRef(env);
  if (isNotApplicable(ref)) return { skip: ref.notApplicable };
  const body = {
    event_type: ctx.target.eventType ?? env.eventKey,
    client_payload: triggerParameters(ctx.target.parameters, DEFAULT_PARAMETERS, ref, env, ctx.event.id),
  };
  return apiRequest(ctx, {
    accept: GITHUB_ACCEPT,
    contentType: 'application/json',
    headers: GITHUB_HEADERS,
    body: jsonBody(body),
  });
}

export function buildWorkflowDispatchRequest(ctx: RequestContext): OutgoingRequest | NothingToSend {
  const env = ctx.event.envelope;
  const ref = triggerRef(env);
  if (isNotApplicable(ref)) return { skip: ref.notApplicable };
  // Inputs only as configured: an input the workflow does not declare makes GitHub refuse the whole dispatch.
  const inputs = triggerParameters(ctx.target.parameters, {}, ref, env, ctx.event.id);
  const body = { ref: ref.name, ...(Object.keys(inputs).length > 0 ? { inputs } : {}) };
  return apiRequest(ctx, {
    accept: GITHUB_ACCEPT,
    contentType: 'application/json',
    headers: GITHUB_HEADERS,
    body: jsonBody(body),
  });
}
