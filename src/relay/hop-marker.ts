/**
 * Relay chains (A delivers to B, B back to A) are stopped with a hop list. Every delivery carries
 * `X-Hookrelay-Hop: <ids of relays passed>` and `Via: 1.1 hookrelay-<id>`; an ingress that finds its own id in
 * either refuses the request with 508.
 */
export const HOP_HEADER = 'x-hookrelay-hop';

export function viaToken(relayId: string): string {
  return `hookrelay-${relayId}`;
}

export function hopList(header: string | string[] | undefined): string[] {
  if (!header) return [];
  const joined = Array.isArray(header) ? header.join(',') : header;
  return joined
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

export function hasPassedThisRelay(
  relayId: string,
  headers: Record<string, string | string[] | undefined>,
): boolean {
  if (hopList(headers[HOP_HEADER]).includes(relayId)) return true;
  const via = headers.via;
  if (!via) return false;
  const token = viaToken(relayId);
  return hopList(via).some((entry) => entry.split(/\s+/)[1] === token);
}

/** The hop header a delivery carries: the hops the event arrived with, then this relay. */
export function nextHopHeader(relayId: string, incoming: string | undefined): string {
  return [...hopList(incoming), relayId].join(', ');
}
