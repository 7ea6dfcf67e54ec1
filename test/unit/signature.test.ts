import { createHmac } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sign, verifySignature } from '../../src/bitbucket/signature.js';

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

  // Bitbucket's published vectors live in ../shared (reference data, not copied into the project).
  const shared = resolve(__dirname, '../../../shared/fixtures/bitbucket');
  const vectors = [
    {
      file: 'cloud-repo-push.signed.jenkins-bbs.json',
      secret: 'Gkvl$k$wyNpQAF42',
      header: 'sha256=f205c729821c6954aff2afe72b965c34015b4baf96ea8ddc2cc44999c014a035',
    },
    {
      file: 'dc-repo-comment-added.signed.gwt.json',
      secret: 'this is secret',
      header: 'sha256=87e3e7b7e4567f528342a75b6d88c619f272c68a4d0d565c68d596a830213164',
    },
  ];
  for (const v of vectors) {
    it.skipIf(!existsSync(resolve(shared, v.file)))(`verifies the published vector of ${v.file}`, () => {
      const bytes = readFileSync(resolve(shared, v.file));
      expect(verifySignature(v.header, bytes, [v.secret])).toBe('ok');
      expect(verifySignature(v.header, bytes, ['another'])).toBe('invalid');
    });
  }
});
