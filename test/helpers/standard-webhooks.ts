import { Webhook } from 'standardwebhooks';
import type { Received } from './target-server.js';

/**
 * Verifies a captured request with the official Standard Webhooks library (the `standardwebhooks` npm package
 * from standard-webhooks/standard-webhooks): throws WebhookVerificationError unless the signature, id and
 * timestamp headers verify over the exact body bytes.
 */
export function verifyStandardWebhook(secret: string, got: Pick<Received, 'headers' | 'body'>): void {
  const headers: Record<string, string> = {};
  for (const name of ['webhook-id', 'webhook-timestamp', 'webhook-signature']) {
    const value = got.headers[name];
    if (typeof value !== 'string') throw new Error(`no ${name} header`);
    headers[name] = value;
  }
  // The signature covers the bytes whatever their type: a form body (Jenkins, GitLab) verifies as JSON does.
  new Webhook(secret).verify(got.body, headers, { jsonParse: false });
}
