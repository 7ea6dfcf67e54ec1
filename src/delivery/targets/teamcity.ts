import { type OutgoingRequest, type RequestContext, relayHeaders } from '../relay-headers.js';
import { lower } from './http.js';

const ENDPOINT = '/app/rest/vcs-root-instances/commitHookNotification';
const EMPTY = Buffer.alloc(0);

/**
 * `url` is the TeamCity server's base URL (`https://tc.example.com`, or with a context path); the relay appends
 * the commitHookNotification endpoint. A url that already names that endpoint is used as it is. The call only
 * asks TeamCity to look for changes in the VCS roots the locator selects, so every event type may be sent and a
 * repeat is harmless. TeamCity answers 411 without a Content-Length, hence the explicit empty body.
 */
export function teamcityUrl(base: string, locator: string): string {
  const url = new URL(base);
  if (!url.pathname.endsWith(ENDPOINT)) url.pathname = url.pathname.replace(/\/+$/, '') + ENDPOINT;
  url.searchParams.set('locator', locator);
  return url.toString();
}

/**
 * The endpoint is `@POST @Produces({"text/plain"})` (JetBrains/teamcity-rest,
 * rest-api/src/jetbrains/buildServer/server/rest/request/VcsRootInstanceRequest.java,
 * scheduleCheckingForChanges), and Jersey answers 406 to an Accept that no `@Produces` type is compatible with
 * (javaee/jersey-1.x, jersey-server/.../uri/rules/HttpMethodRule.java, NO_MATCH_FOR_PRODUCE): so `text/plain`,
 * whatever a configured header says. It declares no `@Consumes`, so no Content-Type is needed.
 */
export function buildTeamcityRequest(ctx: RequestContext): OutgoingRequest {
  return {
    url: teamcityUrl(ctx.target.url, ctx.target.locator ?? ''),
    method: 'POST',
    headers: {
      ...lower(ctx.target.headers),
      accept: 'text/plain',
      'content-length': '0',
      ...relayHeaders(ctx),
    },
    body: EMPTY,
  };
}
