import type { NothingToSend, OutgoingRequest, RequestContext } from '../relay-headers.js';
import { apiRequest } from './api-request.js';
import { DEFAULT_PARAMETERS, isNotApplicable, triggerParameters, triggerRef } from './trigger-ref.js';

/**
 * A parameterised Jenkins job: POST {job}/buildWithParameters with the parameters as a form. Jenkins
 * (jenkinsci/jenkins, core/src/main/java/hudson/model/ParametersDefinitionProperty.java, buildWithParameters)
 * reads one value per parameter the job declares and ignores any other name, so the default set is safe for
 * any job; it answers 201 with `Location: …/queue/item/N/`. Auth is Basic `user:apiToken`: a request
 * authenticated by an API token needs no CSRF crumb (core/src/main/java/jenkins/security/ApiCrumbExclusion.java,
 * JENKINS-22474). A disabled job answers 409 (permanent). Jenkins answers 500 for an exception thrown while
 * handling the request, which may come after the build was queued: like Generic Webhook Trigger's 500 it is not
 * retried blindly (classify.ts).
 */
export function buildJenkinsJobRequest(ctx: RequestContext): OutgoingRequest | NothingToSend {
  const env = ctx.event.envelope;
  const ref = triggerRef(env);
  if (isNotApplicable(ref)) return { skip: ref.notApplicable };
  const form = new URLSearchParams(
    triggerParameters(ctx.target.parameters, DEFAULT_PARAMETERS, ref, env, ctx.event.id),
  );
  return apiRequest(ctx, {
    accept: '*/*',
    contentType: 'application/x-www-form-urlencoded',
    body: Buffer.from(form.toString()),
  });
}
