import { randomUUID } from 'node:crypto';
import { expect } from 'vitest';
import { sign } from '../../src/bitbucket/signature.js';
import { SECRETS } from './config.js';

export interface Signed {
  body: Buffer;
  headers: Record<string, string>;
}

/** A Cloud webhook as Bitbucket Cloud sends it: pretty or compact JSON bytes, signed with the hook's secret. */
export function cloudRequest(
  eventKey: string,
  payload: unknown,
  o: { secret?: string | null; requestId?: string; pretty?: boolean; attempt?: number } = {},
): Signed {
  const body = Buffer.from(o.pretty === false ? JSON.stringify(payload) : JSON.stringify(payload, null, 2));
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'user-agent': 'Bitbucket-Webhooks/2.0',
    'x-event-key': eventKey,
    'x-hook-uuid': '{d3f1b2a4-5c6e-4f70-8192-a3b4c5d6e7f8}',
    'x-request-uuid': o.requestId ?? randomUUID(),
    'x-attempt-number': String(o.attempt ?? 1),
  };
  const secret = o.secret === undefined ? SECRETS.cloud : o.secret;
  if (secret !== null) headers['x-hub-signature'] = sign(secret, body);
  return { body, headers };
}

/** A Data Center webhook: its own headers (X-Request-Id, no attempt number, no hook uuid). */
export function dcRequest(
  eventKey: string,
  payload: unknown,
  o: { secret?: string | null; requestId?: string } = {},
): Signed {
  const body = Buffer.from(JSON.stringify(payload));
  const headers: Record<string, string> = {
    'content-type': 'application/json; charset=UTF-8',
    'user-agent': 'Atlassian HttpClient 4.0.0 / Bitbucket-9.4.2 (9004002) / Default',
    'x-event-key': eventKey,
    'x-request-id': o.requestId ?? randomUUID(),
  };
  const secret = o.secret === undefined ? SECRETS.dc : o.secret;
  if (secret !== null) headers['x-hub-signature'] = sign(secret, body);
  return { body, headers };
}

export interface Answer {
  status: number;
  headers: Headers;
  json: Record<string, unknown>;
}

export async function send(baseUrl: string, sourceId: string, req: Signed): Promise<Answer> {
  const res = await fetch(`${baseUrl}/hooks/${sourceId}`, {
    method: 'POST',
    headers: req.headers,
    body: req.body,
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, json: text ? JSON.parse(text) : {} };
}

/** Sends a signed webhook of either platform to the source of that name; the ingress must accept it (its id). */
export async function accept(
  baseUrl: string,
  source: 'cloud' | 'dc',
  eventKey: string,
  payload: unknown,
): Promise<string> {
  const req = source === 'cloud' ? cloudRequest(eventKey, payload) : dcRequest(eventKey, payload);
  const res = await send(baseUrl, source, req);
  expect(res.status).toBe(202);
  return String(res.json.id);
}
