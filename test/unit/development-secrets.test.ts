import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EXAMPLE_SOURCE_SECRETS } from '../../src/config/development-defaults.js';

describe('development secrets', () => {
  it('are exactly the secret defaults of the example config, so register refuses every one of them', () => {
    const example = readFileSync(resolve(import.meta.dirname, '../../config/hookrelay.example.yaml'), 'utf8');
    const secretsLines = example.split('\n').filter((line) => /secrets:/.test(line));
    const defaults = secretsLines.flatMap((line) =>
      [...line.matchAll(/\$\{[A-Z_]+:-([^}]+)\}/g)].map((m) => m[1]!),
    );
    expect(defaults.length).toBeGreaterThan(0);
    expect([...EXAMPLE_SOURCE_SECRETS].sort()).toEqual([...new Set(defaults)].sort());
  });
});
