import { describe, expect, it } from 'vitest';
import { redactSecrets } from '../../src/delivery/secret-forms.js';

describe('redactSecrets', () => {
  it('blanks each secret set’s own forms, also when sets change between calls (fetched tokens)', () => {
    const text = 'token=first-token-value&other=second-token-value';
    expect(redactSecrets(text, ['first-token-value'])).toBe('token=[redacted]&other=second-token-value');
    expect(redactSecrets(text, ['second-token-value'])).toBe('token=first-token-value&other=[redacted]');
    expect(redactSecrets(text, ['first-token-value', 'second-token-value'])).toBe(
      'token=[redacted]&other=[redacted]',
    );
  });

  it('blanks the base64 and percent-encoded forms of a secret', () => {
    const secret = 'p@ss word/with+signs';
    const echoed = `basic ${Buffer.from(secret).toString('base64')} q=${encodeURIComponent(secret)}`;
    expect(redactSecrets(echoed, [secret])).toBe('basic [redacted] q=[redacted]');
  });
});
