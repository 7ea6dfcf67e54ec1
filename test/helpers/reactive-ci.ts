import { randomBytes } from 'node:crypto';
import { cloudRequest, dcRequest, send } from './bitbucket.js';
import { startTargetServer, type TargetServer, waitUntil } from './target-server.js';

/** One build the CI was asked for, read from the delivery as a CI reads Bitbucket's payload. */
export interface Build {
  /** 1-based, in the order the CI received them. */
  n: number;
  eventKey: string;
  /** The relay's event id (X-Hookrelay-Event). */
  relayEvent: string;
  ref: string;
  kind: 'branch' | 'tag';
  /** The commit built: a push's new head, a merged PR's merge commit. */
  commit: string;
}

/** A webhook the CI makes Bitbucket send (a push or merge it does), signed for the relay's source. */
export interface Webhook {
  source: 'cloud' | 'dc';
  eventKey: string;
  payload: unknown;
}

export interface ReactiveCi {
  url: string;
  builds: Build[];
  /** Event ids of the webhooks the CI's reactions caused, in order (the relay's 202 answers). */
  caused: string[];
  /** Points the CI at the relay it pushes back through (known once the relay listens). */
  connect(ingressUrl: string): void;
  /** Resolves once no reaction is waiting or in flight. */
  idle(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
  target: TargetServer;
}

export const newHash = () => randomBytes(20).toString('hex');

/** What a CI reads from a delivery: Cloud and Data Center pushes and merged pull requests. */
export function readBuild(n: number, eventKey: string, relayEvent: string, body: Buffer): Build | null {
  // biome-ignore lint/suspicious/noExplicitAny: a Bitbucket payload the relay forwarded byte for byte
  const p: any = JSON.parse(body.toString('utf8'));
  if (eventKey === 'repo:push') {
    const change = p.push.changes[0];
    if (!change?.new) return null;
    const kind = change.new.type === 'tag' ? 'tag' : 'branch';
    return { n, eventKey, relayEvent, ref: change.new.name, kind, commit: change.new.target.hash };
  }
  if (eventKey === 'repo:refs_changed') {
    const change = p.changes[0];
    if (change.type === 'DELETE') return null;
    const kind = change.ref.type === 'TAG' ? 'tag' : 'branch';
    return { n, eventKey, relayEvent, ref: change.ref.displayId, kind, commit: change.toHash };
  }
  if (eventKey === 'pullrequest:fulfilled') {
    const pr = p.pullrequest;
    return {
      n,
      eventKey,
      relayEvent,
      ref: pr.destination.branch.name,
      kind: 'branch',
      commit: pr.merge_commit.hash,
    };
  }
  if (eventKey === 'pr:merged') {
    const pr = p.pullRequest;
    return {
      n,
      eventKey,
      relayEvent,
      ref: pr.toRef.displayId,
      kind: 'branch',
      commit: pr.properties.mergeCommit.id,
    };
  }
  return null;
}

/**
 * A CI system that reacts to its builds: for each build it receives it may push or merge back, which makes
 * Bitbucket send webhooks to the relay again (signed, of the real shapes: test/fixtures/payloads.ts). A real
 * HTTP server on port 0; it answers like the Jenkins Bitbucket Branch Source receiver
 * (jenkinsci/bitbucket-branch-source-plugin@19256848, src/main/java/com/cloudbees/jenkins/plugins/bitbucket/
 * hooks/BitbucketSCMSourcePushHookReceiver.java, `doNotify`): 400 without `X-Event-Key`, else 200 at once,
 * the build running afterwards. The reaction comes `turnDelayMs` after the build was received (the pipeline's
 * time), and at most `maxReactions` times, so every test ends even if the relay let the loop run.
 */
export async function startReactiveCi(opts: {
  react: (build: Build) => Webhook[];
  turnDelayMs?: number;
  maxReactions?: number;
}): Promise<ReactiveCi> {
  const builds: Build[] = [];
  const caused: string[] = [];
  let ingressUrl: string | undefined;
  let reactions = 0;
  let busy = 0;
  const maxReactions = opts.maxReactions ?? 12;
  const errors: Error[] = [];

  const react = async (build: Build) => {
    if (reactions >= maxReactions) return;
    reactions += 1;
    const hooks = opts.react(build);
    if (hooks.length === 0) return;
    busy += 1;
    try {
      await new Promise((r) => setTimeout(r, opts.turnDelayMs ?? 0));
      for (const hook of hooks) {
        const signed =
          hook.source === 'cloud'
            ? cloudRequest(hook.eventKey, hook.payload)
            : dcRequest(hook.eventKey, hook.payload);
        const answer = await send(ingressUrl!, hook.source, signed);
        if (answer.status !== 202) throw new Error(`relay answered ${answer.status} to the CI's webhook`);
        caused.push(String(answer.json.id));
      }
    } catch (err) {
      errors.push(err as Error);
    } finally {
      busy -= 1;
    }
  };

  const target = await startTargetServer((req) => {
    const eventKey = req.headers['x-event-key'];
    if (typeof eventKey !== 'string') return { status: 400, body: 'X-Event-Key HTTP header not found' };
    const build = readBuild(builds.length + 1, eventKey, String(req.headers['x-hookrelay-event']), req.body);
    if (build) {
      builds.push(build);
      void react(build);
    }
    return { status: 200 };
  });

  return {
    url: target.url,
    builds,
    caused,
    target,
    connect(url) {
      ingressUrl = url;
    },
    async idle(timeoutMs = 30_000) {
      await waitUntil(() => busy === 0, timeoutMs, 'the CI to finish reacting');
      if (errors.length > 0) throw errors[0];
    },
    close: () => target.close(),
  };
}
