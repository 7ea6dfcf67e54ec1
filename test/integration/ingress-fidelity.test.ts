import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { sign } from '../../src/bitbucket/signature.js';
import type { Config } from '../../src/config/types.js';
import { dcRefsChanged } from '../fixtures/payloads.js';
import { dcRequest, send } from '../helpers/bitbucket.js';
import { SECRETS } from '../helpers/config.js';
import { useIngress } from '../helpers/ingress.js';
import { useTestRedis } from '../helpers/redis.js';

const db = useTestRedis();

const ingress = useIngress(() => db.url);

/** A capture from test/fixtures/bitbucket/captured (see SOURCES.md there), bytes unchanged. */
function captured(name: string): Buffer {
  return readFileSync(new URL(`../fixtures/bitbucket/captured/${name}`, import.meta.url));
}

/** A captured DC body signed as that server would sign it. */
function dcCaptured(eventKey: string, name: string) {
  const body = captured(name);
  const { headers } = dcRequest(eventKey, {});
  return { body, headers: { ...headers, 'x-hub-signature': sign(SECRETS.dc, body) } };
}

async function jobIds(config: Config, target = 'ci'): Promise<string[]> {
  return db.inspect.lrange(`${config.redis.prefix}:deliver-${target}:wait`, 0, -1);
}

describe('every event family is stored and routed', () => {
  it('accepts a captured DC pr:reviewer:needs_work and queues its delivery', async () => {
    const { ing, config } = await ingress();
    const req = dcCaptured('pr:reviewer:needs_work', 'dc-pr-reviewer-needs-work.json');
    const res = await send(ing.url, 'dc', req);
    expect(res.status).toBe(202);
    expect(res.json.targets).toEqual(['ci']);
    expect(await jobIds(config)).toEqual([`${res.json.id}.ci`]);
    const stored = await ing.rt.store.read(String(res.json.id));
    expect(stored?.body.equals(req.body)).toBe(true);
  });

  it('routes a captured DC repo:modified (repository only in old/new) by its new name and by `*`', async () => {
    const { ing } = await ingress({
      targets: [
        { id: 'ci', url: 'http://127.0.0.1:9/a' },
        { id: 'gopher', url: 'http://127.0.0.1:9/b' },
      ],
      routes: [
        { source: 'dc', repos: ['*'], targets: ['ci'] },
        { source: 'dc', repos: ['gopher/webhook-test'], targets: ['gopher'] },
      ],
    });
    const res = await send(ing.url, 'dc', dcCaptured('repo:modified', 'dc-repo-modified.json'));
    expect(res.status).toBe(202);
    expect(res.json.targets).toEqual(['ci', 'gopher']);
    const stored = await ing.rt.store.read(String(res.json.id));
    expect(stored?.envelope.repository).toBe('gopher/webhook-test');
  });

  it('routes a project event by `*` and a mirror synchronisation by its branches', async () => {
    const { ing } = await ingress({
      targets: [
        { id: 'ci', url: 'http://127.0.0.1:9/a' },
        { id: 'release', url: 'http://127.0.0.1:9/b' },
      ],
      routes: [
        { source: 'dc', events: ['project:*'], targets: ['ci'] },
        { source: 'dc', events: ['mirror:*'], branches: ['release/*'], targets: ['release'] },
      ],
    });
    const project = await send(
      ing.url,
      'dc',
      dcRequest('project:modified', {
        eventKey: 'project:modified',
        date: '2024-05-02T10:00:00+0000',
        old: { key: 'OLD', id: 1, name: 'Old', public: false, type: 'NORMAL' },
        new: { key: 'NEW', id: 1, name: 'New', public: false, type: 'NORMAL' },
      }),
    );
    expect(project.status).toBe(202);
    expect(project.json.targets).toEqual(['ci']);
    const mirror = await send(
      ing.url,
      'dc',
      dcRequest('mirror:repo_synchronized', {
        ...dcRefsChanged({ ref: 'release/2' }),
        eventKey: 'mirror:repo_synchronized',
        mirrorServer: { id: 'B0F2-4F5D', name: 'Mirror' },
        syncType: 'INCREMENTAL',
      }),
    );
    expect(mirror.status).toBe(202);
    expect(mirror.json.targets).toEqual(['release']);
  });
});
