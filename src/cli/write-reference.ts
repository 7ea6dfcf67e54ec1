import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { buildCli } from './main.js';
import { cliReference } from './reference.js';

// `npm run docs:cli`: rewrites docs/cli.md from the commands' own help.
const file = resolve(import.meta.dirname, '../../docs/cli.md');
writeFileSync(file, cliReference(buildCli()));
process.stdout.write(`wrote ${file}\n`);
