import type { Platform } from '../config/types.js';

/**
 * How the CLI authenticates to Bitbucket's REST API (never the webhook secret). Each kind has one environment
 * variable set and one scheme, because each platform accepts each token in exactly one way:
 * - Cloud user API token: Basic auth with the Atlassian account's email as the username
 *   (https://support.atlassian.com/bitbucket-cloud/docs/using-api-tokens/); sent as Bearer it gets 401.
 * - Cloud repository, project or workspace access token: Bearer
 *   (https://support.atlassian.com/bitbucket-cloud/docs/using-access-tokens/).
 * - Data Center HTTP access token (personal, project or repository): Bearer
 *   (https://confluence.atlassian.com/bitbucketserver/http-access-tokens-939515499.html).
 */
export type ApiCredentials =
  | { kind: 'cloud-api-token'; email: string; token: string }
  | { kind: 'cloud-access-token'; token: string }
  | { kind: 'dc-http-access-token'; token: string };

/** A credential problem found before any request: the CLI exits with a usage error naming the fix. */
export class CredentialsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CredentialsError';
  }
}

export const ENV = {
  cloudEmail: 'BITBUCKET_EMAIL',
  cloudApiToken: 'BITBUCKET_API_TOKEN',
  cloudAccessToken: 'BITBUCKET_ACCESS_TOKEN',
  dcToken: 'BITBUCKET_DC_TOKEN',
} as const;

/** Variables of earlier releases: set alone, they would silently not be used, so they are named in the error. */
const RETIRED = ['BITBUCKET_TOKEN', 'BITBUCKET_USERNAME', 'BITBUCKET_APP_PASSWORD'] as const;

/** The credential the environment holds for this platform, null when there is none. */
export function credentialsFromEnv(platform: Platform, env: NodeJS.ProcessEnv): ApiCredentials | null {
  if (platform === 'datacenter') {
    if (env[ENV.dcToken]) return { kind: 'dc-http-access-token', token: env[ENV.dcToken]! };
    retiredCheck(platform, env);
    return null;
  }
  const email = env[ENV.cloudEmail];
  const apiToken = env[ENV.cloudApiToken];
  const accessToken = env[ENV.cloudAccessToken];
  if (apiToken && accessToken)
    throw new CredentialsError(
      `set either ${ENV.cloudEmail} + ${ENV.cloudApiToken} (a user API token) or ${ENV.cloudAccessToken} ` +
        '(a repository, project or workspace access token), not both',
    );
  if (apiToken) {
    if (!email)
      throw new CredentialsError(
        `${ENV.cloudApiToken} needs ${ENV.cloudEmail}: Bitbucket Cloud accepts a user API token only as Basic ` +
          "auth with the Atlassian account's email (a repository, project or workspace access token goes in " +
          `${ENV.cloudAccessToken})`,
      );
    return { kind: 'cloud-api-token', email, token: apiToken };
  }
  if (accessToken) return { kind: 'cloud-access-token', token: accessToken };
  retiredCheck(platform, env);
  return null;
}

function retiredCheck(platform: Platform, env: NodeJS.ProcessEnv): void {
  const set = RETIRED.filter((name) => env[name]);
  if (set.length > 0)
    throw new CredentialsError(
      `${set.join(' and ')} ${set.length > 1 ? 'are' : 'is'} no longer read: ${credentialsHelp(platform)}`,
    );
}

export function authorizationHeader(c: ApiCredentials): string {
  return c.kind === 'cloud-api-token'
    ? `Basic ${Buffer.from(`${c.email}:${c.token}`).toString('base64')}`
    : `Bearer ${c.token}`;
}

export function credentialsHelp(platform: Platform): string {
  return platform === 'datacenter'
    ? `set ${ENV.dcToken} (a Data Center HTTP access token with admin permission on the repository or project)`
    : `set ${ENV.cloudEmail} + ${ENV.cloudApiToken} (a user API token with the scopes read:webhook:bitbucket and ` +
        `write:webhook:bitbucket), or ${ENV.cloudAccessToken} (a repository, project or workspace access token ` +
        'with the Webhooks scope)';
}

/** What was sent, in words an admin can act on (never the token itself). */
export function describeCredentials(c: ApiCredentials): string {
  switch (c.kind) {
    case 'cloud-api-token':
      return `a user API token as Basic auth with ${ENV.cloudEmail} (${ENV.cloudApiToken})`;
    case 'cloud-access-token':
      return `an access token as Bearer (${ENV.cloudAccessToken})`;
    case 'dc-http-access-token':
      return `an HTTP access token as Bearer (${ENV.dcToken})`;
  }
}

/** The part of a 401 message that says which credential went out and what the platform takes instead. */
export function unauthorizedHint(c: ApiCredentials): string {
  const sent = `sent ${describeCredentials(c)}`;
  switch (c.kind) {
    case 'cloud-api-token':
      return (
        `${sent}. Bitbucket Cloud takes a user API token only with the Atlassian account's email (not the ` +
        'Bitbucket username); check the email, that the token has not expired and that it has the scopes ' +
        `read:webhook:bitbucket and write:webhook:bitbucket. A repository, project or workspace access token ` +
        `goes in ${ENV.cloudAccessToken} instead.`
      );
    case 'cloud-access-token':
      return (
        `${sent}. Bitbucket Cloud takes only repository, project or workspace access tokens as Bearer; a user ` +
        `API token (made at id.atlassian.com) goes in ${ENV.cloudApiToken} with ${ENV.cloudEmail} (Basic ` +
        'auth). App passwords no longer work.'
      );
    case 'dc-http-access-token':
      return (
        `${sent}. Bitbucket Data Center takes a personal, project or repository HTTP access token as Bearer; ` +
        'check that it has not expired or been revoked and that it has admin permission (REPO_ADMIN for a ' +
        'repository hook, PROJECT_ADMIN for a project hook).'
      );
  }
}
