import { afterAll, afterEach, beforeAll } from 'vitest';
import type { TargetState } from '../../../src/queue/delivery-state.js';
import { accept } from '../../helpers/bitbucket.js';
import type { TestRelay } from '../../helpers/delivery.js';
import { useTestRedis } from '../../helpers/redis.js';
import {
  type Behaviour,
  type Received,
  startTargetServer,
  type TargetServer,
} from '../../helpers/target-server.js';
import { startSignedRelay, verifyRelayRequests } from '../harness.js';

/**
 * A CI receiver's contract as its own docs or source state it: what it checks in a request, how it answers one
 * it accepts, and how it refuses one it does not (with the status and body it uses for that problem).
 */
export interface ReceiverRules {
  /** Problems with the request; empty: accepted. Each problem carries the answer the receiver gives for it. */
  check(req: Received): { problem: string; answer: Behaviour }[];
  accepted(req: Received): Behaviour;
}

export interface ContractReceiver {
  server: TargetServer;
  url: string;
  /** Every request with the problems the receiver found in it (empty list: it accepted it). */
  seen: { req: Received; problems: string[] }[];
  /** Answers to give instead of the normal one for the next accepted requests (rate limits, outages). */
  interpose(...answers: Behaviour[]): void;
}

export async function startReceiver(rules: ReceiverRules): Promise<ContractReceiver> {
  const seen: ContractReceiver['seen'] = [];
  const interposed: Behaviour[] = [];
  const server = await startTargetServer((req) => {
    const problems = rules.check(req);
    seen.push({ req, problems: problems.map((p) => p.problem) });
    if (problems.length > 0) return problems[0]!.answer;
    return interposed.shift() ?? rules.accepted(req);
  });
  return { server, url: server.url, seen, interpose: (...a) => interposed.push(...a) };
}

/** Lower-cased single header value. */
export function header(req: Received, name: string): string | undefined {
  const v = req.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

export function json(status: number, value: unknown, headers: Record<string, string> = {}): Behaviour {
  return {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8', ...headers },
    body: JSON.stringify(value),
  };
}

export interface ContractRun {
  readonly relay: TestRelay;
  readonly receiver: ContractReceiver;
  /** Send a signed Bitbucket event to the relay's ingress; its event id. */
  deliver(eventKey: string, payload: unknown, source?: 'cloud' | 'dc'): Promise<string>;
  settled(eventId: string, states?: string[]): Promise<TargetState>;
  /** The requests the receiver got for an event (matched by the relay's event header). */
  requestsFor(eventId: string): { req: Received; problems: string[] }[];
  /**
   * Deliver an event whose first request gets `answer` (a rate limit, an outage) instead of the receiver's own:
   * the settled state, the statuses of its attempts, and the ms between its first two requests.
   */
  deliverPast(
    answer: Behaviour,
    eventKey: string,
    payload: unknown,
  ): Promise<{ state: TargetState; statuses: (number | undefined)[]; gapMs: number }>;
}

/**
 * One file's contract run: a real redis-server, the relay's real ingress and delivery workers, and the
 * receiver's fake on a real HTTP port, with one target of the type under test pointing at it. The target signs,
 * and after each test every request the receiver got from the relay is verified (as `contract()` does).
 */
export function useContract(
  rules: ReceiverRules,
  targetFor: (receiverUrl: string) => Record<string, unknown>,
): ContractRun {
  const db = useTestRedis();
  let relay: TestRelay | undefined;
  let receiver: ContractReceiver | undefined;
  let secret = '';
  const requestsFor = (eventId: string) =>
    receiver!.seen.filter((s) => header(s.req, 'x-hookrelay-event') === eventId);
  beforeAll(async () => {
    receiver = await startReceiver(rules);
    ({ relay, secret } = await startSignedRelay(
      db.url,
      { id: 'ci', url: '', ...targetFor(receiver.url) },
      // A merge's delivery goes out at once rather than waiting for the push of its merge commit.
      { loop: { collapseMergePush: false } },
    ));
  });
  afterEach(() => verifyRelayRequests(receiver!.server, secret));
  afterAll(async () => {
    await relay?.close();
    await receiver?.server.close();
  });
  return {
    get relay() {
      return relay!;
    },
    get receiver() {
      return receiver!;
    },
    async deliver(eventKey, payload, source = 'cloud') {
      return accept(relay!.ing.url, source, eventKey, payload);
    },
    settled: (eventId, states) => relay!.settled(eventId, 'ci', states),
    requestsFor,
    async deliverPast(answer, eventKey, payload) {
      receiver!.interpose(answer);
      const id = await this.deliver(eventKey, payload);
      const state = await relay!.settled(id, 'ci');
      const [first, second] = requestsFor(id);
      return {
        state,
        statuses: state.attempts.map((a) => a.status),
        gapMs: second && first ? second.req.at - first.req.at : Number.NaN,
      };
    },
  };
}
