import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../..');
const TOP = /^(src|workers|test|deploy|haproxy|bench|config|docs|bin)\//;

/** Paths the project makes at run time (a development certificate, data folders) are git-ignored, not missing. */
const ignored = (path: string) => spawnSync('git', ['check-ignore', '-q', path], { cwd: root }).status === 0;

/** Every repository path a document names in backticks: the docs must not send a reader to a file that moved. */
function namedPaths(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/`([^`\s]+)`/g)]
    .map((m) => m[1]!.replace(/[.,:;)]+$/, ''))
    .filter((p) => TOP.test(p) && !/[<>*…{}$]/.test(p));
}

it('every file path named in README.md and docs/ exists', () => {
  const documents = [
    'README.md',
    ...readdirSync(join(root, 'docs'))
      .filter((f) => f.endsWith('.md'))
      .map((f) => `docs/${f}`),
  ];
  const missing = documents.flatMap((doc) =>
    namedPaths(join(root, doc))
      .filter((p) => !existsSync(join(root, p)) && !ignored(p))
      .map((p) => `${doc}: ${p}`),
  );
  expect(documents).toContain('docs/architecture.md');
  expect(missing).toEqual([]);
});
