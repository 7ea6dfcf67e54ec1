import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { uniquePush } from '../../edge/helpers/clients.js';
import type { Signed } from '../../helpers/bitbucket.js';

/**
 * A steady stream of distinct signed Cloud pushes (own delivery id, own ref, own commit) over a few concurrent
 * loops, recording what each ingress answered. Like Bitbucket, a request whose connection failed (no answer at
 * all) is sent again, byte for byte, to the next ingress; a 503 is counted and not retried (the test only
 * counts what was acknowledged).
 */
export interface DriverStats {
  sent: number;
  /** Event id → the ingress URL that acknowledged it (2xx). */
  acked: Map<string, string>;
  status: Record<string, number>;
  /** 503s that carried a Retry-After header. */
  retryAfter503: number;
  /** Requests that got no HTTP answer at all (connection refused/reset); retried elsewhere. */
  networkErrors: number;
  /** Re-sent requests answered `200 duplicate` (the dead ingress had stored them before dying). */
  duplicatesOnRetry: number;
  /** Requests that never got a 2xx after all their tries (not acknowledged: not owed). */
  unacked: number;
}

export interface Driver {
  stats: DriverStats;
  ackedCount(): number;
  /** Resolves once `max` webhooks were sent and answered (without stopping the stream early). */
  finished(): Promise<DriverStats>;
  stop(): Promise<DriverStats>;
}

const NETWORK_RETRIES = 4;

export function startDriver(o: {
  urls: () => string[];
  concurrency?: number;
  /** Pause between two requests of one loop. */
  pauseMs?: number;
  /** Stop after this many distinct webhooks. */
  max?: number;
  /** Repositories the pushes cycle through (default: one). */
  repos?: string[];
}): Driver {
  const stats: DriverStats = {
    sent: 0,
    acked: new Map(),
    status: {},
    retryAfter503: 0,
    networkErrors: 0,
    duplicatesOnRetry: 0,
    unacked: 0,
  };
  const agent = new Agent({ connections: 16, keepAliveTimeout: 5_000 });
  let stopping = false;
  let rr = 0;
  // An ingress that gave no answer is skipped for a while (what HAProxy's health check does for Bitbucket).
  const downUntil = new Map<string, number>();
  const pick = () => {
    const all = o.urls();
    const up = all.filter((u) => (downUntil.get(u) ?? 0) < Date.now());
    const from = up.length > 0 ? up : all;
    return from[rr++ % from.length]!;
  };

  async function post(url: string, req: Signed) {
    const res = await request(`${url}/hooks/cloud`, {
      method: 'POST',
      headers: req.headers,
      body: req.body,
      dispatcher: agent,
      headersTimeout: 10_000,
      bodyTimeout: 10_000,
    });
    const text = await res.body.text();
    let json: Record<string, unknown> = {};
    try {
      json = JSON.parse(text);
    } catch {
      // not JSON
    }
    return { status: res.statusCode, headers: res.headers, json };
  }

  async function one(): Promise<void> {
    const repo = o.repos?.[stats.sent % o.repos.length];
    const { req } = uniquePush(repo ? { repo } : {});
    stats.sent += 1;
    for (let tryNo = 0; tryNo <= NETWORK_RETRIES; tryNo++) {
      const url = pick();
      let answer: Awaited<ReturnType<typeof post>>;
      try {
        answer = await post(url, req);
      } catch {
        stats.networkErrors += 1;
        downUntil.set(url, Date.now() + 2000);
        await sleep(100);
        continue;
      }
      stats.status[answer.status] = (stats.status[answer.status] ?? 0) + 1;
      if (answer.status >= 200 && answer.status < 300) {
        stats.acked.set(String(answer.json.id), url);
        if (tryNo > 0 && answer.json.duplicate === true) stats.duplicatesOnRetry += 1;
        return;
      }
      if (answer.status === 503 && answer.headers['retry-after'] !== undefined) stats.retryAfter503 += 1;
      // Not acknowledged: counted, not retried. A short pause keeps an outage from turning into a busy loop.
      await sleep(100);
      break;
    }
    stats.unacked += 1;
  }

  const loops = Array.from({ length: o.concurrency ?? 4 }, async () => {
    while (!stopping && (o.max === undefined || stats.sent < o.max)) {
      await one();
      if (o.pauseMs) await sleep(o.pauseMs);
    }
  });
  const done = Promise.all(loops);
  let stopped: Promise<DriverStats> | undefined;
  return {
    stats,
    ackedCount: () => stats.acked.size,
    finished: () => done.then(() => stats),
    stop() {
      stopping = true;
      stopped ??= done.then(async () => {
        await agent.close();
        return stats;
      });
      return stopped;
    },
  };
}
