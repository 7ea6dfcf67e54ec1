import type { Platform } from '../config/types.js';

/** How the CLI authenticates to Bitbucket's REST API (never the webhook secret). */
export type ApiCredentials =
  | { kind: 'basic'; username: string; password: string }
  | { kind: 'bearer'; token: string };

/**
 * Cloud: an API token / repository or workspace access token (`BITBUCKET_TOKEN`, Bearer), or a username with an
 * app password or API token (`BITBUCKET_USERNAME` + `BITBUCKET_APP_PASSWORD`, Basic). Data Center: an HTTP
 * access token / personal access token (`BITBUCKET_DC_TOKEN`, Bearer).
 */
export function credentialsFromEnv(platform: Platform, env: NodeJS.ProcessEnv): ApiCredentials | null {
  if (platform === 'datacenter')
    return env.BITBUCKET_DC_TOKEN ? { kind: 'bearer', token: env.BITBUCKET_DC_TOKEN } : null;
  if (env.BITBUCKET_USERNAME && env.BITBUCKET_APP_PASSWORD)
    return { kind: 'basic', username: env.BITBUCKET_USERNAME, password: env.BITBUCKET_APP_PASSWORD };
  if (env.BITBUCKET_TOKEN) return { kind: 'bearer', token: env.BITBUCKET_TOKEN };
  return null;
}

export function authorizationHeader(c: ApiCredentials): string {
  return c.kind === 'basic'
    ? `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`
    : `Bearer ${c.token}`;
}

export function credentialsHelp(platform: Platform): string {
  return platform === 'datacenter'
    ? 'set BITBUCKET_DC_TOKEN (an HTTP access token with repository admin permission)'
    : 'set BITBUCKET_TOKEN (API/access token with webhook scope) or BITBUCKET_USERNAME + BITBUCKET_APP_PASSWORD';
}
