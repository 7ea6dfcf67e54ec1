import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { expect, it } from 'vitest';
import { buildCli } from '../../src/cli/main.js';
import { cliReference } from '../../src/cli/reference.js';

it('docs/cli.md is the CLI as built (npm run docs:cli rewrites it)', () => {
  const written = readFileSync(resolve(import.meta.dirname, '../../docs/cli.md'), 'utf8');
  const reference = cliReference(buildCli());
  expect(reference).toContain('## hookrelay env init');
  expect(written, 'docs/cli.md is stale: run npm run docs:cli').toBe(reference);
});
