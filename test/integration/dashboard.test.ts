import { existsSync } from 'node:fs';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Config } from '../../src/config/types.js';
import { cloudPush } from '../fixtures/payloads.js';
import { api, scriptedWorker, startAdmin, waitFor } from '../helpers/admin.js';
import { cloudRequest, send } from '../helpers/bitbucket.js';
import { testConfig } from '../helpers/config.js';
import { startIngress, type TestIngress } from '../helpers/ingress.js';
import { captureLogs } from '../helpers/logs.js';
import { startTestRedis } from '../helpers/redis.js';

// Every step runs a real process on a shared two-core machine: generous per-test time.
vi.setConfig({ testTimeout: 120_000 });

const CHROMIUM = '/usr/bin/chromium';
const OPERATOR = 'dash-operator-token-0123456789';
const VIEWER = 'dash-viewer-token-0123456789';

let redis: Awaited<ReturnType<typeof startTestRedis>>;
let config: Config;
let ing: TestIngress;
let admin: Awaited<ReturnType<typeof startAdmin>>;
let logs: ReturnType<typeof captureLogs>;
let browser: Browser;
const dead: string[] = [];

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
  admin = await startAdmin(ing.rt);
  // Two dead letters; no worker afterwards, so a replayed job stays visible in `wait`.
  const worker = scriptedWorker(ing.rt, 'ci', () => ({ status: 503, excerpt: 'Jenkins is down' }));
  for (const ref of ['main', 'release']) {
    const res = await send(ing.url, 'cloud', cloudRequest('repo:push', cloudPush({ ref })));
    dead.push(`${res.json.id}.ci`);
  }
  await waitFor(async () => (await ing.rt.queues.get('ci')!.getFailedCount()) === 2);
  await worker.close();
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
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await admin?.close();
  await ing?.close();
  await redis?.cleanup();
});

describe.runIf(existsSync(CHROMIUM))('dashboard in headless Chromium', () => {
  it('signs in, finds the dead letter in the failed list and replays it from the browser', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    page.setDefaultTimeout(30_000);

    // Not signed in: the dashboard sends the browser to the login page.
    await page.goto(`${admin.url}/dashboard/`);
    await expect.poll(() => new URL(page.url()).pathname).toBe('/login');
    await page.fill('#token', 'not-a-token-at-all');
    await page.click('button[type=submit]');
    await expect.poll(() => page.locator('[role=alert]').textContent()).toContain('Invalid token');
    await page.fill('#token', OPERATOR);
    await page.click('button[type=submit]');
    await expect.poll(() => new URL(page.url()).pathname).toBe('/dashboard/');
    const cookie = (await context.cookies()).find((c) => c.name === 'hookrelay_admin')!;
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Lax', path: '/' });
    expect(cookie.value).not.toContain(OPERATOR);

    const [target, other] = dead as [string, string];
    await page.goto(`${admin.url}/dashboard/queue/deliver-ci?status=failed`);
    const card = page.locator('div[class*="card"]', { has: page.locator(`text="${target}"`) }).last();
    await card.waitFor();
    await expect.poll(() => card.textContent()).toContain('target answered 503');
    await card.locator('button:has(svg.lucide-refresh-cw)').click();
    await page.getByRole('button', { name: 'Confirm' }).click();

    // The replay went through the dead-letter service: back in wait, marked `replay`, same Idempotency-Key.
    const queue = ing.rt.queues.get('ci')!;
    await waitFor(async () => (await queue.getJobState(target)) === 'waiting');
    expect((await queue.getJob(target))!.data).toMatchObject({ k: target, trigger: 'replay' });
    expect(await queue.getJobState(other)).toBe('failed');
    await expect.poll(() => page.locator(`text="${target}"`).count(), { timeout: 30_000 }).toBe(0);
    await expect.poll(() => page.locator(`text="${other}"`).count()).toBe(1);
    await page.goto(`${admin.url}/dashboard/queue/deliver-ci?status=waiting`);
    await page.locator(`text="${target}"`).waitFor();
    expect(logs.lines.find((l) => l.audit && l.action === 'dead-letters.replay')).toMatchObject({
      via: 'dashboard',
      identity: 'ops',
      ids: [target],
      count: 1,
    });

    // Sign out ends the session for good.
    await page.goto(`${admin.url}/logout`);
    await expect.poll(() => new URL(page.url()).pathname).toBe('/login');
    const stale = await api(admin.url, 'GET', '/dashboard/api/queues', {
      headers: { cookie: `hookrelay_admin=${cookie.value}` },
    });
    expect(stale.status).toBe(401);
    await context.close();
  });

  it('a viewer signed in with a ?token= link can look but not replay; cross-site changes are refused', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    page.setDefaultTimeout(30_000);
    await page.goto(
      `${admin.url}/login?token=${VIEWER}&next=${encodeURIComponent('/dashboard/queue/deliver-ci?status=failed')}`,
    );
    await expect.poll(() => new URL(page.url()).pathname).toBe('/dashboard/queue/deliver-ci');
    const other = dead[1]!;
    await page.locator(`text="${other}"`).waitFor();
    const cookie = (await context.cookies()).find((c) => c.name === 'hookrelay_admin')!;
    const asViewer = await page.evaluate(async (id) => {
      const r = await fetch(`/dashboard/api/queues/deliver-ci/${id}/retry`, { method: 'PUT' });
      return r.status;
    }, other);
    expect(asViewer).toBe(403);
    expect(await ing.rt.queues.get('ci')!.getJobState(other)).toBe('failed');
    await context.close();

    // An operator's cookie used from another origin (CSRF) is refused.
    const opLogin = await fetch(`${admin.url}/login?token=${OPERATOR}`, { redirect: 'manual' });
    const opCookie = opLogin.headers.get('set-cookie')!.split(';')[0]!;
    expect(cookie.value).not.toBe(opCookie.split('=')[1]);
    const csrf = await api(admin.url, 'POST', `/api/dead-letters/${other}/replay`, {
      body: {},
      headers: { cookie: opCookie, origin: 'https://evil.example.com' },
    });
    expect(csrf.status).toBe(403);
    const sameSite = await api(admin.url, 'POST', `/api/dead-letters/${other}/replay`, {
      body: {},
      headers: { cookie: opCookie, origin: admin.url },
    });
    expect(sameSite.status).toBe(200);
  });
});
