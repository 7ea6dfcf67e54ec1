import { createHmac, timingSafeEqual } from 'node:crypto';

export type SignatureCheck = 'ok' | 'missing' | 'invalid' | 'unsupported-algorithm';

const HEX_SHA256 = /^[0-9a-f]{64}$/i;

/** `sha256=<hex>` over the raw body bytes, as Bitbucket Cloud and Data Center both send it. */
export function sign(secret: string, body: Buffer | string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/**
 * Check `X-Hub-Signature` against every secret of a source (several during rotation). The algorithm is read
 * from the prefix rather than assumed, and only sha256 is accepted: a sha1 header (GitHub's old scheme) is
 * refused instead of silently compared.
 */
export function verifySignature(
  header: string | undefined,
  body: Buffer,
  secrets: readonly string[],
): SignatureCheck {
  if (!header) return 'missing';
  const eq = header.indexOf('=');
  if (eq < 0) return 'invalid';
  if (header.slice(0, eq).trim().toLowerCase() !== 'sha256') return 'unsupported-algorithm';
  const hex = header.slice(eq + 1).trim();
  if (!HEX_SHA256.test(hex)) return 'invalid';
  const given = Buffer.from(hex, 'hex');
  let match = false;
  // Compare against every secret even after a match, so timing does not reveal which secret matched.
  for (const secret of secrets) {
    const expected = createHmac('sha256', secret).update(body).digest();
    if (timingSafeEqual(expected, given)) match = true;
  }
  return match ? 'ok' : 'invalid';
}
