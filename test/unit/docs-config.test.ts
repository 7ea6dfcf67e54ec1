import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { expect, it } from 'vitest';
import { parse } from 'yaml';
import { buildConfig } from '../../src/config/load-config.js';

// The reference's example is a config the relay accepts: a key it names that the schema does not know, or a
// value the schema refuses, fails here instead of misleading the reader.
it('the example in docs/config.md passes the config schema', () => {
  const text = readFileSync(resolve(import.meta.dirname, '../../docs/config.md'), 'utf8');
  const example = /```yaml\n([\s\S]*?)```/.exec(text)?.[1];
  expect(example, 'docs/config.md has a yaml example').toBeDefined();
  const names = [...example!.matchAll(/\$\{([A-Z0-9_]+)/g)].map((m) => m[1]!);
  expect(names.length).toBeGreaterThan(3);
  // Every variable the example reads, set to a value of the strength the relay asks of secrets.
  const env = Object.fromEntries(names.map((name) => [name, `${name.toLowerCase()}-0123456789abcdef`]));
  env.HOOK_SIGNING_SECRET = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;
  expect(() => buildConfig(parse(example!), env)).not.toThrow();
});
