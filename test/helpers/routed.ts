import type { EventState } from '../../src/queue/event-store.js';
import type { Runtime } from '../../src/runtime.js';
import { waitUntil } from './target-server.js';

/** What the fan-out decided about an event (see src/fanout/). */
export interface Routed {
  state: Exclude<EventState, 'received'>;
  targets: string[];
  repeatedRefs?: string[];
  quarantine?: string;
  duplicateOf?: string;
}

/**
 * Waits until the fan-out has decided about the event the ingress answered `id` for (202 `received`), and
 * returns its decision: the targets it was routed to, the refs whose change repeats, why it is quarantined,
 * or which event it duplicates.
 */
export async function routed(relay: { runtime: Runtime }, id: string, timeoutMs = 10_000): Promise<Routed> {
  let found: Routed | undefined;
  await waitUntil(
    async () => {
      const event = await relay.runtime.store.read(id);
      if (!event || event.state === 'received') return false;
      found = {
        state: event.state,
        targets: event.targets,
        ...(event.envelope.repeatedRefs ? { repeatedRefs: event.envelope.repeatedRefs } : {}),
        ...(event.quarantine ? { quarantine: event.quarantine } : {}),
        ...(event.duplicateOf ? { duplicateOf: event.duplicateOf } : {}),
      };
      return true;
    },
    timeoutMs,
    `event ${id} to be routed`,
  );
  return found!;
}
