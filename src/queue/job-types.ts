/** What a delivery job carries. The event (bytes, headers, envelope) is stored once beside the jobs. */
export interface DeliveryJobData {
  /** Event id. */
  e: string;
  /** Target id. */
  t: string;
  /** Idempotency-Key sent to the target: stable across retries, crashes and replays (unless a fresh replay). */
  k: string;
  /** How the job came to be: straight from Bitbucket, or an operator's replay/release. */
  trigger?: 'bitbucket' | 'replay' | 'release';
}

/** BullMQ job ids may not contain ':'; event ids are UUIDs and target ids are [A-Za-z0-9_-]. */
export function deliveryJobId(eventId: string, targetId: string): string {
  return `${eventId}.${targetId}`;
}

export function idempotencyKey(eventId: string, targetId: string): string {
  return `${eventId}.${targetId}`;
}
