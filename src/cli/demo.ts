import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TargetView } from '../admin/event-view.js';
import type { EventDetail } from '../admin/events-routes.js';
import { sign } from '../bitbucket/signature.js';
import { buildConfig } from '../config/load-config.js';
import { createLogger } from '../log.js';
import { startDemoTarget } from './demo-target.js';

const SOURCE = 'demo-cloud';
const TARGET = 'demo-jenkins';

/** A Bitbucket Cloud repo:push of one branch moving to a new commit, in the shape Bitbucket sends. */
function cloudPush(branch: string, message: string): Buffer {
  const hash = () => randomBytes(20).toString('hex');
  const actor = { type: 'user', display_name: 'Demo User', uuid: '{6a7f0f3e-2f3e-4f7a-9d51-0e7b2c1d3a55}' };
  const newHash = hash();
  return Buffer.from(
    JSON.stringify({
      push: {
        changes: [
          {
            old: { type: 'branch', name: branch, target: { type: 'commit', hash: hash() } },
            new: {
              type: 'branch',
              name: branch,
              target: {
                type: 'commit',
                hash: newHash,
                message,
                author: { raw: 'Demo User <demo@example.com>' },
              },
            },
            created: false,
            closed: false,
            forced: false,
            truncated: false,
            commits: [
              { type: 'commit', hash: newHash, message, author: { raw: 'Demo User <demo@example.com>' } },
            ],
          },
        ],
      },
      actor,
      repository: {
        type: 'repository',
        full_name: 'demo/widgets',
        name: 'widgets',
        uuid: '{1b9e3f2a-0c4d-4e5f-8a6b-7c8d9e0f1a2b}',
      },
    }),
  );
}

/**
 * `hookrelay demo`: the whole flow on this machine in under a minute, with nothing to configure. It starts the
 * relay with its own redis-server in a temporary folder and a stand-in Jenkins, sends signed pushes, and
 * narrates a delivery, a retry, a dead letter and its replay; then it keeps running so the console can be
 * explored, until Ctrl-C (or at once with --exit).
 */
export async function runDemo(opts: { exit?: boolean }, print: (line: string) => void): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'hookrelay-demo-'));
  const secret = randomBytes(32).toString('hex');
  const token = randomBytes(24).toString('hex');
  const target = await startDemoTarget();
  const config = buildConfig(
    {
      redis: { dataDir: join(dir, 'data') },
      ingress: { host: '127.0.0.1', port: 0 },
      admin: { host: '127.0.0.1', port: 0, tokens: [{ name: 'demo', token, role: 'operator' }] },
      sources: [{ id: SOURCE, platform: 'cloud', secrets: [secret] }],
      // Short waits between retries, so the demo shows them in seconds rather than minutes.
      targets: [{ id: TARGET, url: target.url, retry: { attempts: 3, schedule: ['1s', '2s'] } }],
      routes: [{ source: SOURCE, events: ['repo:push'], repos: ['*'], targets: [TARGET] }],
      log: { level: 'error' },
    },
    {},
  );
  const { runRelay } = await import('../server.js');
  // Quiet: the walk-through narrates what happens; the relay's own warnings (a dead letter) would only repeat it.
  const relay = await runRelay(config, { ingress: true, worker: true, admin: true }, createLogger('error'));
  const admin = (path: string, init: RequestInit = {}) =>
    fetch(`${relay.adminUrl}${path}`, {
      ...init,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...init.headers },
    });

  const push = async (branch: string, message: string): Promise<string> => {
    const body = cloudPush(branch, message);
    const res = await fetch(`${relay.ingressUrl}/hooks/${SOURCE}`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'user-agent': 'Bitbucket-Webhooks/2.0',
        'x-event-key': 'repo:push',
        'x-request-uuid': randomUUID(),
        'x-hook-uuid': '{0d6c2b1a-9e8f-4a7b-8c6d-5e4f3a2b1c0d}',
        'x-attempt-number': '1',
        'x-hub-signature': sign(secret, body),
      },
      body,
    });
    const answer = (await res.json()) as { id: string };
    print(`  Bitbucket → relay: ${res.status} (event ${answer.id})`);
    return answer.id;
  };
  const settled = async (eventId: string, until: (d: TargetView) => boolean): Promise<TargetView> => {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const res = await admin(`/api/events/${eventId}`);
      if (res.ok) {
        const view = (await res.json()) as EventDetail;
        const delivery = view.targets[0];
        if (delivery && until(delivery)) return delivery;
      }
      if (Date.now() > deadline) throw new Error(`event ${eventId} did not settle in 30 s`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  const attempts = (d: TargetView) => d.attempts.map((a) => a.status ?? 'error').join(' → ');

  try {
    print(`hookrelay demo: relay at ${relay.ingressUrl}, a stand-in Jenkins at ${target.url}\n`);
    print('1. A push to main, delivered:');
    let d = await settled(await push('main', 'Add the widget factory'), (v) => v.state === 'delivered');
    print(`  relay → Jenkins: ${attempts(d)} (${d.state})\n`);

    print('2. Jenkins is restarting (503 twice): the relay retries with backoff until it answers:');
    target.set({ kind: 'down', times: 2 });
    d = await settled(await push('feature/login', 'Log in with SSO'), (v) => v.state === 'delivered');
    print(`  relay → Jenkins: ${attempts(d)} (${d.state} after ${d.attempts.length - 1} retries)\n`);

    print('3. Jenkins refuses the request (400): a permanent answer makes a dead letter at once:');
    target.set({ kind: 'refuse' });
    const deadId = await push('release/1.0', 'Cut release 1.0');
    d = await settled(deadId, (v) => v.state === 'dead');
    print(`  relay → Jenkins: ${attempts(d)} (${d.state}: ${d.reason})\n`);

    print('4. Jenkins is fixed; an operator replays the dead letter:');
    target.set({ kind: 'ok' });
    const replay = await admin('/api/dead-letters/replay', {
      method: 'POST',
      body: JSON.stringify({ target: TARGET }),
    });
    print(`  POST /api/dead-letters/replay → ${replay.status}`);
    d = await settled(deadId, (v) => v.state === 'delivered');
    print(`  relay → Jenkins: ${attempts(d)} (${d.state})\n`);

    print(`Console: ${relay.adminUrl}/  (log in with the token ${token})`);
    print(
      `CLI:     HOOKRELAY_ADMIN_URL=${relay.adminUrl} HOOKRELAY_ADMIN_TOKEN=${token} npx hookrelay events list`,
    );
    if (!opts.exit) {
      print('Press Ctrl-C to stop (the demo keeps nothing: its data folder is temporary).');
      await new Promise<void>((done) => {
        process.once('SIGINT', done);
        process.once('SIGTERM', done);
      });
    }
  } finally {
    await relay.stop();
    await target.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
