import type { OutgoingRequest, RequestContext } from '../relay-headers.js';
import { buildHttpRequest } from './http.js';

const HOOK = 'bitbucket-hook';

/**
 * The keys the Bitbucket Push and Pull Request plugin accepts (jenkinsci/bitbucket-push-and-pull-request-plugin
 * at 35e25c3a, src/main/java/io/jenkins/plugins/bitbucketpushandpullrequest/model/BitBucketPPRHookEvent.java,
 * checkOperationSupported; constants in common/BitBucketPPRConst.java). Any other key makes its receiver
 * (receiver/BitBucketPPRHookReceiver.java, doIndex) answer 400 "request failed". The action is the key's second
 * part, or its third after `reviewer`, or `comment:<third>`; every `pullrequest:` key passes (the check's `||`
 * binds before the action list), `pr:` keys only with a listed action.
 */
const PR_ACTIONS = new Set([
  'approved',
  'created',
  'updated',
  'fulfilled',
  'comment_created',
  'comment_updated',
  'rejected',
  'comment_deleted',
  'opened',
  'modified',
  'from_ref_updated',
  'merged',
  'declined',
  'comment:added',
]);

export function pprAccepts(eventKey: string): boolean {
  const parts = eventKey.toLowerCase().split(':');
  const [event] = parts;
  let action = parts[1] ?? '';
  if (parts.length === 3 && parts[1] === 'reviewer') action = parts[2]!;
  else if (parts.length === 3 && parts[1] === 'comment') action = `comment:${parts[2]}`;
  if (event === 'repo') return action === 'push' || action === 'post' || action === 'refs_changed';
  if (event === 'pullrequest') return true;
  if (event === 'pr') return PR_ACTIONS.has(action);
  return event === 'diagnostics' && action === 'ping';
}

/**
 * `url` is Jenkins' base URL; the hook path is appended with its trailing slash, which the plugin requires: its
 * CrumbExclusion only matches the path `/bitbucket-hook/` exactly, so without the slash Jenkins' CSRF filter
 * refuses the POST (403, no crumb). A url already ending in `/bitbucket-hook` gets the slash added.
 */
export function pprUrl(base: string): string {
  const url = new URL(base);
  const path = url.pathname.replace(/\/+$/, '');
  url.pathname = path.endsWith(`/${HOOK}`) ? `${path}/` : `${path}/${HOOK}/`;
  return url.toString();
}

export function buildPprRequest(ctx: RequestContext): OutgoingRequest {
  return { ...buildHttpRequest(ctx), url: pprUrl(ctx.target.url) };
}
