import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { resolveConfigPath } from '../../src/cli/config-path.js';
import { fillEnvTemplate } from '../../src/cli/env-init.js';
import { ConfigError } from '../../src/errors/index.js';

describe('which config file a command reads', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('takes --config first, then HOOKRELAY_CONFIG, then ./hookrelay.yaml', () => {
    dir = mkdtempSync(join(tmpdir(), 'hookrelay-cwd-'));
    writeFileSync(join(dir, 'hookrelay.yaml'), 'sources: []\n');
    expect(resolveConfigPath('given.yaml', { HOOKRELAY_CONFIG: 'env.yaml' }, dir)).toBe('given.yaml');
    expect(resolveConfigPath(undefined, { HOOKRELAY_CONFIG: 'env.yaml' }, dir)).toBe('env.yaml');
    expect(resolveConfigPath(undefined, {}, dir)).toBe(join(dir, 'hookrelay.yaml'));
  });

  it('names all three ways when none applies', () => {
    dir = mkdtempSync(join(tmpdir(), 'hookrelay-cwd-'));
    expect(() => resolveConfigPath(undefined, {}, dir)).toThrow(ConfigError);
    expect(() => resolveConfigPath(undefined, {}, dir)).toThrow(
      /--config <file>.*HOOKRELAY_CONFIG.*hookrelay\.yaml/,
    );
  });
});

describe('env init', () => {
  const template = [
    '# a comment',
    'HOOKRELAY_ADMIN_TOKEN=',
    'BB_SECRET=',
    'BB_SECRET_OLD=',
    'JENKINS_URL=http://x',
    'PLAIN=',
    'BB_DC_SECRET=kept',
  ].join('\n');

  it('fills every empty secret and token, and nothing else', () => {
    let n = 0;
    const filled = fillEnvTemplate(template, () => `random${++n}`);
    expect(filled.split('\n')).toEqual([
      '# a comment',
      'HOOKRELAY_ADMIN_TOKEN=random1',
      'BB_SECRET=random2',
      'BB_SECRET_OLD=',
      'JENKINS_URL=http://x',
      'PLAIN=',
      'BB_DC_SECRET=kept',
    ]);
  });

  it('generates a distinct 64-hex-character value for each', () => {
    const values = fillEnvTemplate(template)
      .split('\n')
      .filter((l) => /^(HOOKRELAY_ADMIN_TOKEN|BB_SECRET)=/.test(l))
      .map((l) => l.split('=')[1]);
    expect(values).toHaveLength(2);
    for (const v of values) expect(v).toMatch(/^[0-9a-f]{64}$/);
    expect(values[0]).not.toBe(values[1]);
  });
});
