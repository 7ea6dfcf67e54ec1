import type { NothingToSend, OutgoingRequest, RequestContext } from './relay-headers.js';
import { buildBuildkiteRequests } from './targets/buildkite.js';
import { buildHttpRequest } from './targets/http.js';
import { buildPprRequest } from './targets/jenkins-bitbucket.js';
import { buildBranchSourceRequest } from './targets/jenkins-branch-source.js';
import { buildTeamcityRequest } from './targets/teamcity.js';

export type { NothingToSend, OutgoingRequest, RequestContext } from './relay-headers.js';
export { relayHeaders } from './relay-headers.js';

/** One request, or several sent in order within the delivery (each one build), or nothing to send. */
export function buildRequest(ctx: RequestContext): OutgoingRequest | OutgoingRequest[] | NothingToSend {
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
  }
}
