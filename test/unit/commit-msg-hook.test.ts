import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const HOOK = resolve(import.meta.dirname, '../../.githooks/commit-msg');

function check(message: string) {
  const file = join(mkdtempSync(join(tmpdir(), 'commit-msg-')), 'MSG');
  writeFileSync(file, message);
  return spawnSync(HOOK, [file], { encoding: 'utf8' });
}

describe('the commit-msg hook', () => {
  it('accepts a subject of 72 characters with a body', () => {
    expect(check(`${'a'.repeat(72)}\n\nWhy it changed.\n`).status).toBe(0);
  });

  it('refuses a subject of 73 characters and says how long it is', () => {
    const result = check(`${'a'.repeat(73)}\n`);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('73 characters');
  });

  it('skips comment lines git puts above the subject and refuses an empty one', () => {
    expect(check('# Please enter the commit message\nShort subject\n').status).toBe(0);
    expect(check('# only comments\n\n').status).toBe(1);
  });
});
