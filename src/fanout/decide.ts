import { isUtf8 } from 'node:buffer';
import type { Envelope } from '../bitbucket/envelope.js';
import { eventFamily, isKnownEventKey } from '../bitbucket/event-keys.js';
import { MAX_JSON_DEPTH, nestsDeeperThan } from '../bitbucket/json-depth.js';
import { normalise } from '../bitbucket/normalise.js';
import { validatePayload } from '../bitbucket/payload-schemas.js';
import type { TypeProblems } from '../bitbucket/read-typed.js';
import { safeJsonParse } from '../bitbucket/safe-json.js';
import type { SourceConfig } from '../config/types.js';
import type { StoredEvent } from '../queue/event-store.js';
import type { JobGuard } from '../relay/job-types.js';
import { eventGuard, jobGuard, missingMessage, type StaticLoopRules } from '../relay/loop-rules.js';
import type { Router } from '../relay/routing.js';

/** What the fan-out makes of a received event before it writes anything. */
export interface Decision {
  envelope: Envelope;
  /** Empty when quarantined or when no route matches. */
  targets: string[];
  /** Why it is held back (a field path and the expected type, or why the body is not JSON; never a value). */
  quarantine?: string;
  /** The loop guard's inputs, put in each delivery job's data. */
  guard: JobGuard;
  /** The key is well formed (the ingress checked) but not one the relay knows: routed as family `other`. */
  unknownKey: boolean;
  /** A Data Center push without a commit message (skip markers cannot apply to it). */
  messageMissing: boolean;
}

export interface DecideRules {
  router: Router;
  loopRules: StaticLoopRules;
  /** The source as configured now; undefined when it has been removed since the event was received. */
  source: SourceConfig | undefined;
}

/**
 * Parse (nesting bounded first, prototype-pollution-safe), validate, normalise and route one received event:
 * what the ingress did before its 202 when it answered after routing. A body that is not UTF-8, not JSON, too
 * deep, of the wrong shape or with a field of an unexpected type is quarantined: it was signed, so it is kept.
 */
export function decide(event: StoredEvent, rules: DecideRules): Decision {
  const received = event.envelope;
  const platform = received.platform;
  const eventKey = received.eventKey;
  const problems: TypeProblems = {};
  let payload: unknown;
  if (!isUtf8(event.body)) problems.first = 'body is not valid UTF-8';
  else if (nestsDeeperThan(event.body)) problems.first = `body nests deeper than ${MAX_JSON_DEPTH} levels`;
  else {
    try {
      payload = safeJsonParse(event.body.toString('utf8'));
      problems.first = validatePayload(platform, eventFamily(platform, eventKey), payload) ?? undefined;
    } catch {
      problems.first = 'body is not valid JSON';
    }
  }
  const envelope =
    payload === undefined
      ? received
      : normalise(
          {
            platform,
            eventKey,
            deliveryId: received.deliveryId,
            payload,
            ...(received.hookId ? { hookId: received.hookId } : {}),
            ...(received.attempt ? { attempt: received.attempt } : {}),
          },
          problems,
        );
  const quarantine = problems.first;
  const targets = quarantine === undefined ? rules.router.match(event.sourceId, envelope).targets : [];
  const guard = rules.source
    ? eventGuard(rules.loopRules, envelope, rules.source, event.receivedAt)
    : jobGuard(rules.loopRules, envelope, event.sourceId, event.receivedAt);
  return {
    envelope,
    targets,
    ...(quarantine === undefined ? {} : { quarantine }),
    guard,
    unknownKey: !isKnownEventKey(platform, eventKey),
    messageMissing: quarantine === undefined && missingMessage(envelope) !== null,
  };
}
