import { attemptWrite, type StateUpdate, type TargetState, writtenState } from '../queue/delivery-state.js';
import type { StoredEvent } from '../queue/event-store.js';
import { LuaScript } from '../queue/lua-script.js';
import type { DeliveryContext } from './phases/attempt.js';

const RECORD_DELIVERED = LuaScript.fromFile('record-delivered');

/**
 * A successful delivery's three records in one script (src/lua/record-delivered.lua): its state and attempt on
 * the event (delivery-state.ts), the branch's delivered head (ref-order.ts) and what it built for the loop
 * guard's chain rule (loop-guard.ts). Each module still says what its record is; this only sends them together.
 * `sentAt`: when the request went out, the earliest a build it caused could have pushed.
 */
export async function recordDelivered(
  ctx: DeliveryContext,
  targetId: string,
  event: StoredEvent,
  update: StateUpdate,
  sentAt: number,
): Promise<TargetState> {
  const { next, args } = attemptWrite(targetId, update);
  const head = ctx.order.checkOf(targetId, event);
  const chain = ctx.guard.deliveredRecord(event, targetId);
  const written = await RECORD_DELIVERED.run(
    ctx.redis,
    [ctx.keys.event(event.id), ...(head?.keys ?? []), ...(chain?.keys ?? [])],
    [
      ...args,
      head ? '1' : '',
      ...(head?.args ?? ['', '', '']),
      event.id,
      chain?.actor ?? '',
      sentAt,
      chain?.ttl ?? '',
      chain?.receivedAt ?? '',
      chain?.heads ?? 0,
    ],
  );
  return writtenState(written, next);
}
