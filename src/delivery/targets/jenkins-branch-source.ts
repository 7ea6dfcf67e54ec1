import type { OutgoingRequest, RequestContext } from '../relay-headers.js';
import { buildHttpRequest } from './http.js';

const ENDPOINT = '/bitbucket-scmsource-hook/notify';

/**
 * The event keys the Bitbucket Branch Source plugin has a processor for (jenkinsci/bitbucket-branch-source-plugin
 * at 8fdcfe19, src/main/java/com/cloudbees/jenkins/plugins/bitbucket/impl/webhook/{cloud,server}/*WebhookProcessor
 * `supportedEvents`, keys from hooks/HookEventType.java). Its receiver (hooks/BitbucketSCMSourcePushHookReceiver
 * .java, getHookProcessor) answers 400 "No processor found that supports this event" to any other key.
 * Cloud keys are taken without `server_url`, Data Center keys only with it.
 */
export const CLOUD_KEYS: ReadonlySet<string> = new Set([
  'repo:push',
  'pullrequest:created',
  'pullrequest:updated',
  'pullrequest:fulfilled',
  'pullrequest:rejected',
]);
export const DATACENTER_KEYS: ReadonlySet<string> = new Set([
  'repo:refs_changed',
  'mirror:repo_synchronized',
  'pr:opened',
  'pr:merged',
  'pr:declined',
  'pr:deleted',
  'pr:modified',
  'pr:from_ref_updated',
  'diagnostics:ping',
]);

export function branchSourceProcesses(eventKey: string): boolean {
  return CLOUD_KEYS.has(eventKey) || DATACENTER_KEYS.has(eventKey);
}

/**
 * `url` is Jenkins' base URL (or the full endpoint URL). A Data Center event gets `?server_url=` (the processors'
 * canHandle require it; it must name a Bitbucket endpoint configured in Jenkins, else 400 "No bitbucket
 * endpoint found"), a Cloud event never does (its processors refuse one). The original bytes and headers go
 * through as for `http`: the plugin verifies X-Hub-Signature over the body.
 */
export function branchSourceUrl(base: string, platform: 'cloud' | 'datacenter', serverUrl?: string): string {
  const url = new URL(base);
  if (!url.pathname.endsWith(ENDPOINT)) url.pathname = url.pathname.replace(/\/+$/, '') + ENDPOINT;
  if (platform === 'datacenter' && serverUrl) url.searchParams.set('server_url', serverUrl);
  if (platform === 'cloud') url.searchParams.delete('server_url');
  return url.toString();
}

export function buildBranchSourceRequest(ctx: RequestContext): OutgoingRequest {
  const req = buildHttpRequest(ctx);
  return {
    ...req,
    url: branchSourceUrl(ctx.target.url, ctx.event.envelope.platform, ctx.target.serverUrl),
  };
}
