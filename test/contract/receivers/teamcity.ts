import type { Behaviour, Received } from '../../helpers/target-server.js';

/**
 * TeamCity's commitHookNotification as its source answers (JetBrains/teamcity-rest at 7f73e36c,
 * rest-api/src/jetbrains/buildServer/server/rest/request/VcsRootInstanceRequest.java,
 * scheduleCheckingForChanges), behind Jersey 1's method and media-type matching (javaee/jersey-1.x,
 * jersey-server/src/main/java/com/sun/jersey/server/impl/uri/rules/HttpMethodRule.java).
 */
export const ENDPOINT = '/app/rest/vcs-root-instances/commitHookNotification';

export class TeamcityReceiver {
  /** Locators that select at least one VCS root instance, and the checks scheduled for them. */
  readonly scheduled: string[] = [];

  constructor(
    private readonly knownLocators: string[],
    private readonly token: string,
  ) {}

  readonly answer = (req: Received): Behaviour => {
    const url = new URL(req.url, 'http://teamcity');
    if (!url.pathname.endsWith(ENDPOINT)) return { status: 404, body: 'Not Found' };
    // Jersey: no resource method for the HTTP method → 405 with Allow (the endpoint is @POST only).
    if (req.method !== 'POST') return { status: 405, headers: { allow: 'POST,OPTIONS' } };
    if (req.headers.authorization !== `Bearer ${this.token}`) {
      return { status: 401, body: 'Authentication required' };
    }
    // Jersey: @Produces({"text/plain"}) against the Accept list (none means */*) → 406 when nothing fits.
    if (!acceptsTextPlain(req.headers.accept)) return { status: 406, body: '' };
    // Tomcat refuses a body-less POST without a length (what the relay's explicit Content-Length: 0 is for).
    if (req.headers['content-length'] === undefined && req.headers['transfer-encoding'] === undefined) {
      return { status: 411 };
    }
    const locator = url.searchParams.get('locator');
    if (!locator) {
      return {
        status: 400,
        body: "No 'locator' parameter provided, should be not empty VCS root instances locator",
      };
    }
    if (!this.knownLocators.includes(locator)) {
      const ok = url.searchParams.get('okOnNothingFound') === 'true';
      return { status: ok ? 200 : 404, body: `No VCS roots are found for locator '${locator}'` };
    }
    this.scheduled.push(locator);
    return {
      status: 202,
      headers: { 'content-type': 'text/plain' },
      body: 'Scheduled checking for changes for 1 VCS roots. (Server time: 20261130T092400.000+0000)',
    };
  };
}

/** JAX-RS MediaType.isCompatible of each Accept range against text/plain; q=0 ranges are not acceptable. */
export function acceptsTextPlain(accept: string | undefined): boolean {
  if (!accept) return true;
  return accept.split(',').some((range) => {
    const [type, ...params] = range.trim().toLowerCase().split(';');
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    if (q && Number(q.slice(2)) === 0) return false;
    return type === '*/*' || type === 'text/*' || type === 'text/plain';
  });
}
