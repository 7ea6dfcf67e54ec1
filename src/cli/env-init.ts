import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

/** The documented template of the compose stack's .env, shipped beside the package (see package.json files). */
export const ENV_TEMPLATE = resolve(import.meta.dirname, '../../../.env.example');

/** Names whose empty value in the template is a secret to generate (a rotation's *_OLD stays empty). */
const GENERATED = /^(?!.*_OLD$)[A-Z0-9_]*(?:_SECRET|_TOKEN)$/;

/**
 * The template with every empty secret filled with 32 random bytes, hex-encoded: a .env the compose stack
 * starts with as it is. Comments, settings and their defaults are kept, so the file still explains itself.
 */
export function fillEnvTemplate(
  template: string,
  random: (bytes: number) => string = (n) => randomBytes(n).toString('hex'),
): string {
  return template
    .split('\n')
    .map((line) => {
      const match = /^([A-Z0-9_]+)=$/.exec(line);
      return match && GENERATED.test(match[1]!) ? `${line}${random(32)}` : line;
    })
    .join('\n');
}

export function envInit(): string {
  return fillEnvTemplate(readFileSync(ENV_TEMPLATE, 'utf8'));
}
