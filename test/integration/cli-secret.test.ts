import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';

function configWith(signingSecret: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'hookrelay-secret-'));
  const file = join(dir, 'hookrelay.yaml');
  writeFileSync(
    file,
    [
      'sources: [{ id: bb, platform: cloud, secrets: [s3cret] }]',
      `targets: [{ id: ci, url: "https://ci.acme.test/hook", signingSecret: "${signingSecret}" }]`,
      'routes: [{ source: bb, targets: [ci] }]',
    ].join('\n'),
  );
  return file;
}

describe('hookrelay secret new --standard-webhooks', () => {
  it('makes a secret config check takes and the official library reads; a hex secret is refused with how to make one', async () => {
    const made = await runCli(['secret', 'new', '--standard-webhooks']);
    expect(made.code).toBe(0);
    const secret = made.stdout.trim();
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
    expect(Buffer.from(secret.slice(6), 'base64')).toHaveLength(32);
    // The official verifier takes it as a key (it throws on an empty or undecodable one).
    expect(() => new Webhook(secret)).not.toThrow();
    expect((await runCli(['config', 'check', '-c', configWith(secret)])).code).toBe(0);

    const hex = (await runCli(['secret', 'new'])).stdout.trim();
    const refused = await runCli(['config', 'check', '-c', configWith(hex)]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('targets[0].signingSecret: must start with whsec_');
    expect(refused.stderr).toContain('hookrelay secret new --standard-webhooks');

    const small = await runCli(['secret', 'new', '--standard-webhooks', '--bytes', '16']);
    expect(small.code).toBe(2);
    expect(small.stderr).toContain('--bytes must be 24..64');
  });
});
