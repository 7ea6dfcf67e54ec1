import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

/*
 * The ingress and the worker meet only in neutral modules (src/relay/ for the relay rules, src/queue/ for Redis):
 * neither side imports the other, so each can change, or run in its own process, without pulling the other in.
 */

const root = resolve(import.meta.dirname, '../..');

// `from '…'` (imports and re-exports, `import type` included), a bare `import '…'`, and `import('…')`.
const SPECIFIER =
  /\bfrom\s*['"]([^'"]+)['"]|\bimport\s*['"]([^'"]+)['"]|\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g;

function sourceFiles(folder: string): string[] {
  return readdirSync(join(root, folder), { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.ts'))
    .map((file) => join(folder, file));
}

/** The repository-relative paths a module's relative imports point at. */
function importedPaths(file: string, text: string): string[] {
  return [...text.matchAll(SPECIFIER)]
    .map((match) => match[1] ?? match[2] ?? match[3]!)
    .filter((specifier) => specifier.startsWith('.'))
    .map((specifier) => relative(root, resolve(root, dirname(file), specifier)));
}

/** `file imports target` for every import from a module under `from` into a module under `forbidden`. */
function crossImports(from: string, forbidden: string): string[] {
  return sourceFiles(from).flatMap((file) =>
    importedPaths(file, readFileSync(join(root, file), 'utf8'))
      .filter((target) => target.startsWith(`${forbidden}/`))
      .map((target) => `${file} imports ${target}`),
  );
}

describe('module boundaries', () => {
  it('reads every form of import statement', () => {
    const text = [
      "import { a } from '../delivery/a.js';",
      "import type { B } from '../delivery/b.js';",
      "export { c } from '../delivery/c.js';",
      "import '../delivery/d.js';",
      "const e = await import('../delivery/e.js');",
      "import { f } from 'fastify';",
    ].join('\n');
    expect(importedPaths('src/ingress/x.ts', text)).toEqual([
      'src/delivery/a.js',
      'src/delivery/b.js',
      'src/delivery/c.js',
      'src/delivery/d.js',
      'src/delivery/e.js',
    ]);
  });

  it('finds the modules it checks', () => {
    expect(sourceFiles('src/ingress')).toContain(join('src/ingress', 'hooks-route.ts'));
    expect(sourceFiles('src/delivery')).toContain(join('src/delivery', 'targets', 'http.ts'));
  });

  it('no module under src/ingress imports src/delivery', () => {
    expect(crossImports('src/ingress', 'src/delivery')).toEqual([]);
  });

  it('no module under src/delivery imports src/ingress', () => {
    expect(crossImports('src/delivery', 'src/ingress')).toEqual([]);
  });

  it('src/relay imports neither side', () => {
    expect([
      ...crossImports('src/relay', 'src/ingress'),
      ...crossImports('src/relay', 'src/delivery'),
    ]).toEqual([]);
  });
});
