import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { sign, verifySignature } from '../../src/bitbucket/signature.js';
import { readBody, readManifest } from '../fixtures/bitbucket/corpus/corpus.js';

const body = Buffer.from('{"push":{"changes":[]},"repository":{"full_name":"acme/w"}}');

describe('signature', () => {
  it('computes sha256=<hex> HMAC over the raw bytes', () => {
    const expected = createHmac('sha256', 'k').update(body).digest('hex');
    expect(sign('k', body)).toBe(`sha256=${expected}`);
  });

  it('accepts any of the secrets (rotation) and refuses the rest', () => {
    const header = sign('old', body);
    expect(verifySignature(header, body, ['new', 'old'])).toBe('ok');
    expect(verifySignature(header, body, ['new'])).toBe('invalid');
    expect(verifySignature(header.toUpperCase().replace('SHA256', 'sha256'), body, ['old'])).toBe('ok');
    expect(verifySignature(undefined, body, ['old'])).toBe('missing');
    expect(verifySignature('', body, ['old'])).toBe('missing');
    expect(verifySignature('sha1=abc', body, ['old'])).toBe('unsupported-algorithm');
    expect(verifySignature('sha256=zz', body, ['old'])).toBe('invalid');
    expect(verifySignature('sha256', body, ['old'])).toBe('invalid');
    expect(verifySignature(header, Buffer.concat([body, Buffer.from(' ')]), ['old'])).toBe('invalid');
  });

  // Signed captures published with their secret and signature (see test/fixtures/bitbucket/corpus/SOURCES.md).
  // Read without a guard: a missing file fails the test.
  const vectors = readManifest().filter((entry) => entry.signature);

  it('has the published vectors', () => {
    expect(vectors.map((v) => v.file)).toContain('datacenter/gwt-hmac-repo-comment-added.json');
  });

  for (const v of vectors) {
    it(`verifies the published vector of ${v.file}`, () => {
      const bytes = readBody(v);
      expect(verifySignature(v.signature!.header, bytes, [v.signature!.secret])).toBe('ok');
      expect(verifySignature(v.signature!.header, bytes, ['another'])).toBe('invalid');
      expect(sign(v.signature!.secret, bytes)).toBe(v.signature!.header);
    });
  }
});
