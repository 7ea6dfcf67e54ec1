import { randomBytes, randomUUID } from 'node:crypto';
import { request as httpsRequest } from 'node:https';
import { cloudPush } from '../../fixtures/payloads.js';
import { cloudRequest, type Signed } from '../../helpers/bitbucket.js';

/** A signed Cloud push that no other request in the run shares: own delivery id, own ref and commit hash. */
export function uniquePush(
  o: { pretty?: boolean; commits?: number; headers?: Record<string, string>; repo?: string } = {},
): {
  id: string;
  req: Signed;
} {
  const id = randomUUID();
  const req = cloudRequest(
    'repo:push',
    cloudPush({
      ...(o.repo ? { repo: o.repo } : {}),
      ref: `edge/${id.slice(0, 8)}`,
      newHash: randomBytes(20).toString('hex'),
      commits: o.commits ?? 1,
    }),
    { requestId: id, pretty: o.pretty ?? false },
  );
  Object.assign(req.headers, o.headers ?? {});
  return { id, req };
}

/**
 * POST with `Expect: 100-continue` (what curl does for large bodies): the body is sent only once the server
 * says so, so an edge that refuses from the request head alone answers cleanly instead of resetting a
 * connection that is still uploading.
 */
export function postExpectContinue(
  url: string,
  headers: Record<string, string>,
  body: Buffer,
  ca: Buffer,
): Promise<{ status: number; text: string; sentBody: boolean }> {
  return new Promise((resolve, reject) => {
    let sentBody = false;
    let settled = false;
    const req = httpsRequest(url, {
      method: 'POST',
      ca,
      servername: 'localhost',
      agent: false,
      headers: { ...headers, 'content-length': String(body.length), expect: '100-continue' },
      timeout: 15_000,
    });
    req.on('continue', () => {
      sentBody = true;
      req.end(body);
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        settled = true;
        resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8'), sentBody });
        req.destroy();
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err) => {
      if (!settled) reject(err);
    });
    req.flushHeaders();
  });
}
