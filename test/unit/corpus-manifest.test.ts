import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { corpusDir, filesOnDisk, readBody, readManifest } from '../fixtures/bitbucket/corpus/corpus.js';
import { renderSources } from '../fixtures/bitbucket/corpus/render-sources.js';

const entries = readManifest();

describe('corpus manifest', () => {
  it('lists every body file once, and only files that exist', () => {
    const listed = entries.map((e) => e.file).sort();
    expect(new Set(listed).size).toBe(listed.length);
    expect(listed).toEqual(filesOnDisk().sort());
  });

  it('records platform, origin and kind of each', () => {
    for (const e of entries) {
      expect(e.file.startsWith(`${e.platform}/`), e.file).toBe(true);
      expect(e.commit, e.file).toMatch(/^[0-9a-f]{40}$/);
      expect(e.repository, e.file).toMatch(/^[\w.-]+\/[\w.-]+$/);
      expect(e.path.length, e.file).toBeGreaterThan(0);
      expect(['capture', 'docs-sample'], e.file).toContain(e.kind);
      expect(e.eventKey, e.file).toMatch(/^[a-z_]+(:[a-z_]+)+$/);
      for (const o of e.alsoIn ?? []) expect(o.commit, e.file).toMatch(/^[0-9a-f]{40}$/);
    }
  });

  it('holds no two identical bodies', () => {
    const seen = new Map<string, string>();
    for (const e of entries) {
      const bytes = readBody(e).toString('base64');
      expect(seen.get(bytes), `${e.file} repeats ${seen.get(bytes)}`).toBeUndefined();
      seen.set(bytes, e.file);
    }
  });

  it("agrees with a Data Center body's own eventKey field", () => {
    for (const e of entries.filter((x) => x.eventKeyFrom === 'payload eventKey field')) {
      const payload = JSON.parse(readBody(e).toString('utf8')) as { eventKey?: unknown };
      expect(payload.eventKey, e.file).toBe(e.eventKey);
    }
  });

  it('has SOURCES.md generated from the manifest', () => {
    expect(readFileSync(join(corpusDir, 'SOURCES.md'), 'utf8')).toBe(renderSources(entries));
  });
});
