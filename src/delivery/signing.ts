import { createHash, createHmac, randomBytes } from 'node:crypto';

/**
 * Standard Webhooks (standardwebhooks.com; spec/standard-webhooks.md in standard-webhooks/standard-webhooks):
 * `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, keyed by the secret's bytes. A secret is `whsec_` + base64
 * of 24 to 64 random bytes: the official libraries base64-decode every secret, so no other form can verify.
 */
export const SECRET_PREFIX = 'whsec_';
export const SECRET_MIN_BYTES = 24;
export const SECRET_MAX_BYTES = 64;

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** Why a secret is not a Standard Webhooks secret, or null when it is one. */
export function secretProblem(secret: string): string | null {
  if (!secret.startsWith(SECRET_PREFIX)) return `must start with ${SECRET_PREFIX}`;
  const encoded = secret.slice(SECRET_PREFIX.length);
  if (!BASE64.test(encoded) || encoded.length % 4 !== 0) return `must be ${SECRET_PREFIX} followed by base64`;
  const bytes = Buffer.from(encoded, 'base64').length;
  if (bytes < SECRET_MIN_BYTES || bytes > SECRET_MAX_BYTES) {
    return `must encode ${SECRET_MIN_BYTES} to ${SECRET_MAX_BYTES} random bytes (it encodes ${bytes})`;
  }
  return null;
}

export function newSecret(bytes = 32): string {
  return `${SECRET_PREFIX}${randomBytes(bytes).toString('base64')}`;
}

export function signingKey(secret: string): Buffer {
  return Buffer.from(secret.slice(SECRET_PREFIX.length), 'base64');
}

/**
 * The `webhook-id` of a delivery: derived from its Idempotency-Key, so it is the same across retries, crashes
 * and replays (a fresh replay's new key gives a new id), and never contains the `.` that delimits the signed
 * content (the spec asks ids not to). `part` tells apart the messages of one delivery (one build per ref).
 */
export function webhookId(idempotencyKey: string, part?: string): string {
  const digest = createHash('sha256').update(idempotencyKey);
  if (part !== undefined) digest.update('\0').update(part);
  return `msg_${digest.digest('base64url').slice(0, 32)}`;
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
