import { createHmac } from 'node:crypto';

/**
 * Standard Webhooks (standardwebhooks.com) signature headers: `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`.
 * A `whsec_` secret is base64 after the prefix (the format the spec's libraries generate); any other secret is
 * used as its UTF-8 bytes.
 */
export function signingKey(secret: string): Buffer {
  return secret.startsWith('whsec_') ? Buffer.from(secret.slice(6), 'base64') : Buffer.from(secret, 'utf8');
}

export function standardWebhookHeaders(
  secret: string,
  msgId: string,
  body: Buffer,
  nowSeconds = Math.floor(Date.now() / 1000),
): Record<string, string> {
  const ts = String(nowSeconds);
  const mac = createHmac('sha256', signingKey(secret))
    .update(`${msgId}.${ts}.`)
    .update(body)
    .digest('base64');
  return { 'webhook-id': msgId, 'webhook-timestamp': ts, 'webhook-signature': `v1,${mac}` };
}
