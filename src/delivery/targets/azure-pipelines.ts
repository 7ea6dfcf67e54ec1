import type { NothingToSend, OutgoingRequest, RequestContext } from '../relay-headers.js';
import { apiRequest, jsonBody } from './api-request.js';
import { fullCommit, isNotApplicable, triggerParameters, triggerRef } from './trigger-ref.js';

const API_VERSION = '7.1';

/**
 * Azure Pipelines runs API: POST https://dev.azure.com/{org}/{project}/_apis/pipelines/{id}/runs?api-version=7.1
 * with `resources.repositories.self.refName` (`refs/heads/…` or `refs/tags/…`) and, for a full hash, `version`
 * (the commit), plus `templateParameters` as configured
 * (https://learn.microsoft.com/rest/api/azure/devops/pipelines/runs/run-pipeline?view=azure-devops-rest-7.1).
 * Answers 200 with the run. A template parameter the YAML does not declare is refused with 400. The relay adds
 * `api-version=7.1` when the url has none.
 */
export function azureRunsUrl(url: string): string {
  const out = new URL(url);
  if (!out.searchParams.has('api-version')) out.searchParams.set('api-version', API_VERSION);
  return out.toString();
}

export function buildAzurePipelinesRequest(ctx: RequestContext): OutgoingRequest | NothingToSend {
  const env = ctx.event.envelope;
  const ref = triggerRef(env);
  if (isNotApplicable(ref)) return { skip: ref.notApplicable };
  const commit = fullCommit(ref);
  const self = {
    refName: `refs/${ref.kind === 'tag' ? 'tags' : 'heads'}/${ref.name}`,
    ...(commit ? { version: commit } : {}),
  };
  const templateParameters = triggerParameters(ctx.target.parameters, {}, ref, env, ctx.event.id);
  const body = {
    resources: { repositories: { self } },
    ...(Object.keys(templateParameters).length > 0 ? { templateParameters } : {}),
  };
  return apiRequest(ctx, {
    url: azureRunsUrl(ctx.target.url),
    accept: 'application/json',
    contentType: 'application/json',
    body: jsonBody(body),
  });
}
