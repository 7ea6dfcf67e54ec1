import { describe, expect, it } from 'vitest';
import { buildConfig } from '../../src/config/load-config.js';
import { secretsOf } from '../../src/delivery/auth.js';
import { excerpt } from '../../src/delivery/http-client.js';
import { ConfigError } from '../../src/errors/index.js';

const TOKEN = 'tok/en+with=odd chars&more';

describe('dead-letter excerpts redact every encoding of a secret', () => {
  it('as sent, percent-encoded (either hex case, + for spaces) and base64 / base64url', () => {
    const echoes = [
      TOKEN,
      encodeURIComponent(TOKEN),
      encodeURIComponent(TOKEN).toLowerCase(),
      new URLSearchParams({ t: TOKEN }).toString().slice(2),
      Buffer.from(TOKEN).toString('base64'),
      Buffer.from(TOKEN).toString('base64url'),
    ];
    for (const echo of echoes) {
      const out = excerpt(`request was: ${echo} <end>`, [TOKEN]);
      expect(out, echo).toBe('request was: [redacted] <end>');
    }
  });

  it('base64 of a token inside a longer base64 blob, at every alignment', () => {
    for (const prefix of ['', 'a', 'ab', 'abc', 'user:', '{"t":"']) {
      const blob = Buffer.from(`${prefix}${TOKEN}","x":1}`).toString('base64');
      const out = excerpt(`echo ${blob}`, [TOKEN]);
      // What is left of the blob cannot be decoded back into the token.
      const left = Buffer.from(out.replace('echo ', '').replace('[redacted]', ''), 'base64').toString(
        'latin1',
      );
      expect(left, prefix).not.toContain('odd chars');
      expect(out, prefix).toContain('[redacted]');
    }
  });
});

describe('secretsOf', () => {
  const config = (target: Record<string, unknown>) =>
    buildConfig(
      {
        sources: [{ id: 'a', platform: 'cloud', secrets: ['s3cret'] }],
        targets: [{ id: 'j', ...target }],
        routes: [{ source: 'a', targets: ['j'] }],
      },
      {},
    );

  it("includes the URL's query values and credential-like headers", () => {
    const [target] = config({
      url: 'https://ci.example/invoke?token=query-token-123&job=deploy-all',
      headers: { 'X-Api-Key': 'header-key-456', 'X-Team': 'core-team' },
    }).targets;
    const secrets = secretsOf(target!);
    expect(secrets).toEqual(expect.arrayContaining(['query-token-123', 'deploy-all', 'header-key-456']));
    expect(secrets).not.toContain('core-team');
  });

  it('config check refuses user:password@ in a target URL, naming the key and the fix', () => {
    try {
      config({ url: 'https://builder:p4ss@ci.example/hook' });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).problems).toEqual([
        expect.stringMatching(/^targets\[0\]\.url: must not contain user:password@ .*auth: \{ type: basic/),
      ]);
    }
  });
});
