import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Behaviour, Received } from '../../helpers/target-server.js';

/** X-Hub-Signature `sha256=<hex>` over the body bytes, as both plugins check it when a hook secret is set. */
function signatureValid(req: Received, secret: string): boolean {
  const header = String(req.headers['x-hub-signature'] ?? '');
  const [algorithm, hex] = header.split('=');
  if (algorithm !== 'sha256' || !hex) return false;
  const want = createHmac('sha256', secret).update(req.body).digest();
  const got = Buffer.from(hex, 'hex');
  return got.length === want.length && timingSafeEqual(got, want);
}

/**
 * Bitbucket Branch Source's /bitbucket-scmsource-hook/notify (jenkinsci/bitbucket-branch-source-plugin at
 * 8fdcfe19): hooks/BitbucketSCMSourcePushHookReceiver.java (doNotify, getHookProcessor) picks the one processor
 * whose canHandle matches (impl/webhook/{cloud,server}/*WebhookProcessor.java: the event key in its
 * supportedEvents, X-Request-UUID and no server_url for Cloud, X-Request-Id and server_url for Data Center;
 * the ping needs server_url only), else 400; an empty body is 400; server_url must name a configured
 * endpoint, else 400; then AbstractWebhookProcessor.verifyPayload: 403 on a missing or wrong signature.
 */
const CLOUD = [
  'repo:push',
  'pullrequest:created',
  'pullrequest:rejected',
  'pullrequest:fulfilled',
  'pullrequest:updated',
];
const SERVER = [
  'repo:refs_changed',
  'mirror:repo_synchronized',
  'pr:opened',
  'pr:merged',
  'pr:declined',
  'pr:deleted',
  'pr:modified',
  'pr:from_ref_updated',
];

export class BranchSourceReceiver {
  /** Event keys processed (an SCM event fired), in order. */
  readonly processed: string[] = [];

  constructor(
    private readonly hookSecrets: { cloud: string; server: string },
    private readonly serverUrls: string[],
  ) {}

  readonly answer = (req: Received): Behaviour => {
    const url = new URL(req.url, 'http://jenkins');
    // Jenkins may run under a context path (`/jenkins`): the plugin sees the path below it.
    const path = url.pathname.replace(/^\/jenkins(?=\/)/, '');
    if (req.method !== 'POST' || !path.startsWith('/bitbucket-scmsource-hook/notify')) {
      return { status: 404 };
    }
    const key = String(req.headers['x-event-key'] ?? '');
    const serverUrl = url.searchParams.get('server_url');
    const cloud =
      CLOUD.includes(key) &&
      req.headers['x-request-uuid'] !== undefined &&
      !url.searchParams.has('server_url');
    const server =
      (SERVER.includes(key) && req.headers['x-request-id'] !== undefined && serverUrl !== null) ||
      (key === 'diagnostics:ping' && serverUrl !== null);
    if (!cloud && !server) {
      return { status: 400, body: 'No processor found that supports this event.' };
    }
    if (req.body.length === 0) return { status: 400, body: 'Payload is empty.' };
    if (server && !this.serverUrls.includes(serverUrl ?? '')) {
      return { status: 400, body: `No bitbucket endpoint found for ${serverUrl}` };
    }
    if (
      key !== 'diagnostics:ping' &&
      !signatureValid(req, cloud ? this.hookSecrets.cloud : this.hookSecrets.server)
    ) {
      return { status: 403, body: 'Signature verification failed' };
    }
    this.processed.push(key);
    return { status: 200, body: '' };
  };
}

/**
 * Bitbucket Push and Pull Request's /bitbucket-hook/ (jenkinsci/bitbucket-push-and-pull-request-plugin at
 * 35e25c3a, receiver/BitBucketPPRHookReceiver.java): its CrumbExclusion (`process`) matches the path
 * `/bitbucket-hook/` exactly, so any other path is left to Jenkins' CSRF filter, which refuses a POST without a
 * crumb (403); with a hook secret set, a missing or wrong X-Hub-Signature is 403; an event key
 * BitBucketPPRHookEvent.checkOperationSupported refuses, or an empty body, is 400; else 200.
 */
export class PprReceiver {
  readonly processed: string[] = [];

  constructor(private readonly hookSecret: string) {}

  readonly answer = (req: Received): Behaviour => {
    const url = new URL(req.url, 'http://jenkins');
    if (url.pathname !== '/bitbucket-hook/') {
      return { status: 403, body: 'No valid crumb was included in the request' };
    }
    if (req.method !== 'POST') return { status: 405 };
    if (!signatureValid(req, this.hookSecret)) {
      return { status: 403, body: 'Bitbucket PPR Plugin: request rejected: missing or invalid signature.' };
    }
    const key = String(req.headers['x-event-key'] ?? 'repo:post');
    if (!checkOperationSupported(key) || req.body.length === 0) {
      return { status: 400, body: 'Bitbucket PPR Plugin: request failed.' };
    }
    this.processed.push(key);
    return { status: 200, body: 'Bitbucket PPR Plugin: request received successfully.' };
  };
}

/** BitBucketPPRHookEvent's setEventAndAction + checkOperationSupported, transcribed (Java's && binds before ||). */
function checkOperationSupported(bitbucketEventKey: string): boolean {
  const pair = bitbucketEventKey.split(':');
  const event = pair[0]!.toLowerCase();
  let action: string;
  if (pair.length === 3 && pair[1]!.toLowerCase() === 'reviewer') action = pair[2]!;
  else if (pair.length === 3 && pair[1]!.toLowerCase() === 'comment') action = `${pair[1]}:${pair[2]}`;
  else action = pair[1] ?? '';
  action = action.toLowerCase();
  if (event === 'repo' && ['push', 'post', 'refs_changed'].includes(action)) return true;
  const listed = [
    'approved',
    'created',
    'updated',
    'fulfilled',
    'comment_created',
    'comment_updated',
    'rejected',
    'comment_deleted',
    'opened',
    'approved',
    'modified',
    'from_ref_updated',
    'merged',
    'declined',
    'comment:added',
  ];
  if (event === 'pullrequest' || (event === 'pr' && listed.includes(action))) return true;
  return event === 'diagnostics' && action === 'ping';
}
