import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The console's templates and stylesheet live in the package's `console/` folder (shipped beside `dist/`):
 * found by walking up from this module, which runs from `src/` under tsx and from `dist/src/` when built.
 */
function consoleDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let up = 0; up < 6; up++) {
    const candidate = join(dir, 'console');
    if (existsSync(join(candidate, 'views', 'layout.eta'))) return candidate;
    dir = dirname(dir);
  }
  throw new Error('the console templates (console/views) are missing from the package');
}

export const CONSOLE_DIR = consoleDir();
export const VIEWS_DIR = join(CONSOLE_DIR, 'views');
export const STYLESHEET = readFileSync(join(CONSOLE_DIR, 'console.css'));
