import type { NothingToSend, OutgoingRequest, RequestContext } from './relay-headers.js';
import { buildBuildkiteRequest } from './targets/buildkite.js';
import { buildHttpRequest } from './targets/http.js';
import { buildTeamcityRequest } from './targets/teamcity.js';

export type { NothingToSend, OutgoingRequest, RequestContext } from './relay-headers.js';
export { relayHeaders } from './relay-headers.js';

export function buildRequest(ctx: RequestContext): OutgoingRequest | NothingToSend {
  switch (ctx.target.type) {
    case 'http':
    case 'jenkins-generic':
      // Generic Webhook Trigger reads the same JSON body and headers as the Bitbucket plugins do.
      return buildHttpRequest(ctx);
    case 'teamcity':
      return buildTeamcityRequest(ctx);
    case 'buildkite':
      return buildBuildkiteRequest(ctx);
  }
}
