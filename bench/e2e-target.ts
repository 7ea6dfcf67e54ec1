/**
 * The CI target of the end-to-end bench, in its own process: answers 200 at once and reports to the parent, in
 * batches, when each event arrived (keyed by the original X-Request-UUID, which both relays forward).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

let pending: [string, number][] = [];
const server = createServer((req, res) => {
  req.on('data', () => {});
  req.on('end', () => {
    const id = req.headers['x-request-uuid'];
    if (typeof id === 'string') pending.push([id, Date.now()]);
    res.writeHead(200, { 'content-length': '2' });
    res.end('ok');
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  process.send?.({ url: `http://127.0.0.1:${port}` });
});
setInterval(() => {
  if (pending.length === 0) return;
  process.send?.({ receipts: pending });
  pending = [];
}, 10).unref();
process.on('disconnect', () => process.exit(0));
