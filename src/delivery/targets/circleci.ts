import type { NothingToSend, OutgoingRequest, RequestContext } from '../relay-headers.js';
import { apiRequest, jsonBody } from './api-request.js';
import { isNotApplicable, triggerParameters, triggerRef } from './trigger-ref.js';

/**
 * CircleCI API v2 trigger: POST /api/v2/project/{project-slug}/pipeline with `{branch}` or `{tag}` and
 * `parameters`, authenticated by the `Circle-Token` header
 * (https://circleci.com/docs/api/v2/index.html#operation/triggerPipeline). Answers 201 with the pipeline's id
 * and number. Parameters go only as configured: a parameter the config does not declare is refused with 400
 * ("Unexpected argument(s)"). A project slug is `bb/{workspace}/{repo}` for a Bitbucket project.
 */
export function buildCircleciRequest(ctx: RequestContext): OutgoingRequest | NothingToSend {
  const env = ctx.event.envelope;
  const ref = triggerRef(env);
  if (isNotApplicable(ref)) return { skip: ref.notApplicable };
  const parameters = triggerParameters(ctx.target.parameters, {}, ref, env, ctx.event.id);
  const body = {
    [ref.kind]: ref.name,
    ...(Object.keys(parameters).length > 0 ? { parameters } : {}),
  };
  return apiRequest(ctx, {
    accept: 'application/json',
    contentType: 'application/json',
    body: jsonBody(body),
  });
}
