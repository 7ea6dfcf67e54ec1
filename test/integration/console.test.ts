import { existsSync, mkdirSync } from 'node:fs';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Config } from '../../src/config/types.js';
import { cloudPullRequest, cloudPush } from '../fixtures/payloads.js';
import { api, type Outcome, scriptedWorker, startAdmin, waitFor } from '../helpers/admin.js';
import { cloudRequest, send } from '../helpers/bitbucket.js';
import { testConfig } from '../helpers/config.js';
import { startIngress, type TestIngress } from '../helpers/ingress.js';
import { captureLogs } from '../helpers/logs.js';
import { startTestRedis } from '../helpers/redis.js';
import { routed } from '../helpers/routed.js';

// Every step runs a real process on a shared two-core machine: generous per-test time.
vi.setConfig({ testTimeout: 180_000 });

const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOTS = '.tmp/screenshots';
const OPERATOR = 'console-operator-token-0123456789';
const VIEWER = 'console-viewer-token-0123456789';
const COMMIT = '3f2a9c1e5d7b4a6c8e0f1a2b3c4d5e6f7a8b9c0d';

let redis: Awaited<ReturnType<typeof startTestRedis>>;
let config: Config;
let ing: TestIngress;
let admin: Awaited<ReturnType<typeof startAdmin>>;
let logs: ReturnType<typeof captureLogs>;
let browser: Browser;
const ids: Record<string, string> = {};
/** What the stand-in worker does with the next job (changed per step). */
let decide: (eventId: string) => Outcome = () => ({ status: 503, excerpt: 'Jenkins is down' });

async function push(name: string, opts: Parameters<typeof cloudPush>[0]) {
  const res = await send(ing.url, 'cloud', cloudRequest('repo:push', cloudPush(opts)));
  ids[name] = res.json.id as string;
  return ids[name]!;
}

beforeAll(async () => {
  redis = await startTestRedis();
  config = testConfig(redis.url, {
    admin: {
      tokens: [
        { name: 'ops', token: OPERATOR, role: 'operator' },
        { name: 'viewer', token: VIEWER, role: 'viewer' },
      ],
    },
  });
  logs = captureLogs();
  ing = await startIngress(config, logs.log);
  admin = await startAdmin(ing.runtime);
  const worker = scriptedWorker(ing.runtime, 'ci', (job) => decide(job.data.eventId));
  // Two dead letters (Jenkins down) on two branches, one push held back by a [skip ci] marker.
  await push('main', { ref: 'main' });
  await push('release', { ref: 'release/2.4', newHash: COMMIT });
  await waitFor(async () => (await ing.runtime.queues.get('ci')!.getFailedCount()) === 2);
  decide = () => ({ suppress: 'skip-marker' });
  await push('skipped', { ref: 'main', message: 'Bump version [skip ci]\n', newHash: '5'.repeat(40) });
  await waitFor(async () => (await ing.runtime.redis.zcard(ing.runtime.keys.suppressed)) === 1);
  await worker.close();
  mkdirSync(SCREENSHOTS, { recursive: true });
  if (!existsSync(CHROMIUM)) return;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await admin?.close();
  await ing?.close();
  await redis?.cleanup();
});

/** A page that records every request it makes, to prove nothing leaves the origin. */
async function openPage(context: BrowserContext): Promise<{ page: Page; requested: string[] }> {
  const page = await context.newPage();
  page.setDefaultTimeout(30_000);
  const requested: string[] = [];
  page.on('request', (r) => requested.push(r.url()));
  return { page, requested };
}

async function signIn(page: Page, token: string, next = '/console/events') {
  await page.goto(`${admin.url}${next}`);
  await expect.poll(() => new URL(page.url()).pathname).toBe('/login');
  await page.fill('#token', token);
  await page.click('button[type=submit]');
  await expect.poll(() => new URL(page.url()).pathname).toBe(next);
}

/** The aria-label of the element that has the keyboard focus (the test runs without the DOM's types). */
const focusedLabel = (page: Page) =>
  page.evaluate(() => {
    const doc = (
      globalThis as unknown as {
        document: { activeElement: { getAttribute(n: string): string | null } | null };
      }
    ).document;
    return doc.activeElement?.getAttribute('aria-label') ?? null;
  });

const shot = (page: Page, name: string) =>
  page.screenshot({ path: `${SCREENSHOTS}/${name}.png`, fullPage: true });

describe.runIf(existsSync(CHROMIUM))('ops console in headless Chromium', () => {
  it('an operator finds an event by branch, reads its timeline, the suppression and the payload', async () => {
    const context = await browser.newContext();
    const { page, requested } = await openPage(context);

    // Not signed in: the console sends the browser to the login page, which comes back to the events list.
    await page.goto(`${admin.url}/`);
    await expect.poll(() => new URL(page.url()).pathname).toBe('/login');
    await page.fill('#token', OPERATOR);
    await page.click('button[type=submit]');
    await expect.poll(() => new URL(page.url()).pathname).toBe('/console/events');
    await expect.poll(() => page.locator('table.list tbody tr').count()).toBe(3);
    await shot(page, 'events');

    // Search by branch: the filter goes into the URL, and only that branch's push is listed.
    await page.getByLabel('Branch or tag').fill('release/*');
    await page.getByRole('button', { name: 'Search' }).click();
    await expect.poll(() => new URL(page.url()).searchParams.get('branch')).toBe('release/*');
    await expect.poll(() => page.locator('table.list tbody tr').count()).toBe(1);
    expect(await page.locator('table.list tbody').textContent()).toContain('release/2.4');

    // The event page: received (headers masked), routing, the attempt with its answer, the dead outcome.
    await page.locator('table.list tbody a').first().click();
    await expect.poll(() => new URL(page.url()).pathname).toBe(`/console/events/${ids.release}`);
    const timeline = (await page.locator('ol.timeline').textContent()) ?? '';
    expect(timeline).toContain('Received from Bitbucket');
    expect(timeline).toMatch(/header x-hub-signature\s*•••• \(masked\)/);
    expect(timeline).toContain('Routed to ci');
    expect(timeline).toMatch(/Attempt 1 of \d+ to ci: 503/);
    expect(timeline).toContain('Jenkins is down');
    expect(timeline).not.toContain(config.sources[0]!.secrets[0]!);
    await page.getByText('Show the payload').click();
    expect(await page.locator('pre.payload').textContent()).toContain('"release/2.4"');
    await shot(page, 'event');

    // The suppressed list gives the reason with the commit message that carried the marker.
    await page.getByRole('link', { name: 'Suppressed' }).click();
    const row = page.locator('table.list tbody tr').first();
    await expect.poll(() => row.textContent()).toContain('skip-marker');
    expect(await row.textContent()).toContain('Bump version [skip ci]');
    await shot(page, 'suppressed');
    // …and the event page shows the loop guard's evidence.
    await row.getByRole('link').first().click();
    const guard = (await page.locator('li.step', { hasText: 'Loop guard' }).textContent()) ?? '';
    expect(guard).toContain('[skip ci]');

    // Nothing on any page came from elsewhere.
    const origin = new URL(admin.url).origin;
    expect(requested.length).toBeGreaterThan(5);
    expect(requested.filter((u) => new URL(u).origin !== origin)).toEqual([]);
    await context.close();
  });

  it('serves every console page with a CSP that allows only its own origin and no framing', async () => {
    const login = await fetch(`${admin.url}/login?token=${VIEWER}`, { redirect: 'manual' });
    const cookie = login.headers.get('set-cookie')!.split(';')[0]!;
    for (const path of [
      '/console/events',
      '/console/dead-letters',
      '/console/suppressed',
      '/console/quarantined',
      '/console/targets',
    ]) {
      const res = await fetch(`${admin.url}${path}`, { headers: { cookie } });
      expect(res.status, path).toBe(200);
      const csp = res.headers.get('content-security-policy') ?? '';
      expect(csp).toContain("default-src 'self'");
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).not.toMatch(/https?:/);
      const html = await res.text();
      // No absolute URL to fetch anything from: every src/href is a path of ours.
      expect(html.match(/(?:src|href)="(?![/#])[^"]*"/g) ?? []).toEqual([]);
    }
  });

  it('bulk-replays dead letters by filter: preview with count and sample, confirmation, outcome summary', async () => {
    const context = await browser.newContext();
    const { page } = await openPage(context);
    await signIn(page, OPERATOR, '/console/dead-letters');
    await expect.poll(() => page.locator('table.list tbody tr').count()).toBe(2);
    await shot(page, 'dead-letters');

    await page.getByLabel('Repository').fill('acme/*');
    await page.getByRole('button', { name: 'Search' }).click();
    await expect.poll(() => new URL(page.url()).searchParams.get('repo')).toBe('acme/*');
    await page.getByRole('link', { name: /Replay all matching/ }).click();
    await expect.poll(() => page.locator('#replay-count').textContent()).toBe('2');
    expect(await page.locator('table.list tbody tr').count()).toBe(2);
    await shot(page, 'replay-preview');

    // One delivers now, the other still fails: the summary tells them apart.
    decide = (e) => (e === ids.main ? { ok: true } : { status: 502, excerpt: 'still down' });
    const worker = scriptedWorker(ing.runtime, 'ci', (job) => decide(job.data.eventId));
    try {
      await page.getByRole('button', { name: 'Replay 2 dead letters' }).click();
      await expect.poll(() => new URL(page.url()).pathname).toMatch(/^\/console\/replays\//);
      await expect
        .poll(
          async () => {
            await page.reload();
            return page.locator('#outcome-waiting').textContent();
          },
          { timeout: 60_000, interval: 500 },
        )
        .toBe('0');
      expect(await page.locator('#outcome-delivered').textContent()).toBe('1');
      expect(await page.locator('#outcome-failed').textContent()).toBe('1');
      expect(await page.locator('main').textContent()).toContain(`${ids.release}.ci`);
      await shot(page, 'replay-summary');
    } finally {
      await worker.close();
    }
    expect(
      logs.lines.find((l) => l.audit && l.action === 'dead-letters.replay' && l.via === 'console'),
    ).toMatchObject({ identity: 'ops', count: 2 });
    // The one that failed again is back in the list (the index follows the failed set), the delivered one is not.
    await page.goto(`${admin.url}/console/dead-letters`);
    await expect.poll(() => page.locator('table.list tbody tr').count()).toBe(1);
    expect(await page.locator('table.list tbody').textContent()).toContain(`${ids.release}.ci`);
    await context.close();
  });

  it('pauses and resumes a target: deliveries wait meanwhile and nothing is lost', async () => {
    const context = await browser.newContext();
    const { page } = await openPage(context);
    await signIn(page, OPERATOR, '/console/targets');
    const queue = ing.runtime.queues.get('ci')!;
    await page.getByRole('button', { name: 'Pause deliveries to ci' }).click();
    await expect.poll(() => page.locator('[role=status]').textContent()).toContain('Paused ci');
    expect(await queue.isPaused()).toBe(true);
    const held = await push('held', { ref: 'main', newHash: '6'.repeat(40) });
    await page.reload();
    await expect.poll(() => page.locator('#target-ci').textContent()).toContain('1 waiting');
    await shot(page, 'targets-paused');

    decide = () => ({ ok: true });
    const worker = scriptedWorker(ing.runtime, 'ci', (job) => decide(job.data.eventId));
    try {
      // Paused: the worker takes nothing.
      await new Promise((r) => setTimeout(r, 500));
      expect(await queue.getJobState(`${held}.ci`)).not.toBe('completed');
      // Keyboard only: Tab reaches the button, Enter presses it.
      const label = 'Resume deliveries to ci';
      for (let tabs = 0; tabs < 40 && (await focusedLabel(page)) !== label; tabs++)
        await page.keyboard.press('Tab');
      expect(await focusedLabel(page)).toBe(label);
      await page.keyboard.press('Enter');
      await expect.poll(() => page.locator('[role=status]').textContent()).toContain('Resumed ci');
      await waitFor(async () => (await queue.getJobState(`${held}.ci`)) === 'completed', 30_000);
    } finally {
      await worker.close();
    }
    expect(
      logs.lines
        .filter((l) => l.audit && /^targets\.(pause|resume)$/.test(String(l.action)))
        .map((l) => l.action),
    ).toEqual(['targets.pause', 'targets.resume']);
    await context.close();
  });

  it('a viewer sees no action controls and cannot act; cross-site changes are refused', async () => {
    const context = await browser.newContext();
    const { page } = await openPage(context);
    await signIn(page, VIEWER, '/console/dead-letters');
    await expect.poll(() => page.locator('table.list tbody tr').count()).toBe(1);
    for (const path of [
      '/console/dead-letters',
      '/console/suppressed',
      '/console/targets',
      `/console/events/${ids.release}`,
    ]) {
      await page.goto(`${admin.url}${path}`);
      expect(await page.locator('main form[method=post]').count(), path).toBe(0);
      expect(await page.locator('main').textContent(), path).not.toMatch(/Replay all|Download the original/);
    }
    await shot(page, 'viewer-dead-letters');
    const preview = await page.goto(`${admin.url}/console/dead-letters/replay?target=ci`);
    expect(preview!.status()).toBe(403);
    const asViewer = await page.evaluate(async (id) => {
      const r = await fetch(`/console/dead-letters/${id}/purge`, { method: 'POST' });
      return r.status;
    }, `${ids.release}.ci`);
    expect(asViewer).toBe(403);
    await context.close();

    // An operator's cookie used from another origin (CSRF) is refused, from the same origin accepted.
    const opLogin = await fetch(`${admin.url}/login?token=${OPERATOR}`, { redirect: 'manual' });
    const opCookie = opLogin.headers.get('set-cookie')!.split(';')[0]!;
    const csrf = await api(admin.url, 'POST', '/console/targets/ci/pause', {
      headers: { cookie: opCookie, origin: 'https://evil.example.com' },
    });
    expect(csrf.status).toBe(403);
    expect(await ing.runtime.queues.get('ci')!.isPaused()).toBe(false);
  });

  it('an operator finds a quarantined event with its reason and releases it for delivery', async () => {
    // A signed pull request whose title is an object: authentic, so stored, but held back for its shape.
    const pr = cloudPullRequest() as { pullrequest: Record<string, unknown> };
    pr.pullrequest.title = { nested: true };
    const res = await send(ing.url, 'cloud', cloudRequest('pullrequest:created', pr));
    const id = String(res.json.id);
    expect(await routed(ing, id)).toMatchObject({ state: 'quarantined', targets: [] });

    const context = await browser.newContext();
    const { page } = await openPage(context);
    await signIn(page, OPERATOR, '/console/quarantined');
    const row = page.locator('table.list tbody tr', { hasText: 'pullrequest:created' });
    await expect.poll(() => row.textContent()).toContain('pullrequest.title: must be a string');
    await shot(page, 'quarantined');
    await row.getByRole('button', { name: `Release ${id}` }).click();
    await expect.poll(() => page.locator('main').textContent()).toContain(`Released ${id}`);
    expect(await page.locator('table.list tbody tr', { hasText: 'pullrequest:created' }).count()).toBe(0);
    // Released: routed now, one delivery job with the usual id, and audited as the console's action.
    expect(await ing.runtime.queues.get('ci')!.getJob(`${id}.ci`)).toBeDefined();
    expect(
      logs.lines.some(
        (l) =>
          l.action === 'quarantined.release' &&
          l.via === 'console' &&
          (l.ids as string[] | undefined)?.includes(id),
      ),
    ).toBe(true);
    await context.close();
  });
});
