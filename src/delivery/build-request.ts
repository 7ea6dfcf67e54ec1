import type { LookupFirst, NothingToSend, OutgoingRequest, RequestContext } from './relay-headers.js';
import { buildAzurePipelinesRequest } from './targets/azure-pipelines.js';
import { buildBambooRequest } from './targets/bamboo.js';
import { buildPipelinesRequest } from './targets/bitbucket-pipelines.js';
import { buildBuildkiteRequests } from './targets/buildkite.js';
import { buildCircleciRequest } from './targets/circleci.js';
import { buildRepositoryDispatchRequest, buildWorkflowDispatchRequest } from './targets/github-actions.js';
import { buildGitlabTriggerRequest } from './targets/gitlab.js';
import { buildHttpRequest } from './targets/http.js';
import { buildPprRequest } from './targets/jenkins-bitbucket.js';
import { buildBranchSourceRequest } from './targets/jenkins-branch-source.js';
import { buildJenkinsJobRequest } from './targets/jenkins-job.js';
import { buildTeamcityRequest } from './targets/teamcity.js';

export type { LookupFirst, NothingToSend, OutgoingRequest, RequestContext } from './relay-headers.js';
export { relayHeaders } from './relay-headers.js';

/**
 * One request, or several sent in order within the delivery (each one build), or one that needs a look-up at
 * the target first, or nothing to send.
 */
export function buildRequest(
  ctx: RequestContext,
): OutgoingRequest | OutgoingRequest[] | LookupFirst | NothingToSend {
  switch (ctx.target.type) {
    case 'http':
    case 'jenkins-generic':
      // Generic Webhook Trigger reads the same JSON body and headers as the Bitbucket plugins do.
      return buildHttpRequest(ctx);
    case 'jenkins-branch-source':
      return buildBranchSourceRequest(ctx);
    case 'jenkins-bitbucket':
      return buildPprRequest(ctx);
    case 'teamcity':
      return buildTeamcityRequest(ctx);
    case 'buildkite':
      return buildBuildkiteRequests(ctx);
    case 'github-repository-dispatch':
      return buildRepositoryDispatchRequest(ctx);
    case 'github-workflow-dispatch':
      return buildWorkflowDispatchRequest(ctx);
    case 'gitlab-trigger':
      return buildGitlabTriggerRequest(ctx);
    case 'bitbucket-pipelines':
      return buildPipelinesRequest(ctx);
    case 'circleci':
      return buildCircleciRequest(ctx);
    case 'azure-pipelines':
      return buildAzurePipelinesRequest(ctx);
    case 'bamboo':
      return buildBambooRequest(ctx);
    case 'jenkins-job':
      return buildJenkinsJobRequest(ctx);
  }
}
