import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** How the demo CI answers the next deliveries: as a healthy Jenkins, down for a while, or refusing. */
export type DemoTargetMode = { kind: 'ok' } | { kind: 'down'; times: number } | { kind: 'refuse' };

export interface DemoTarget {
  url: string;
  received: number;
  set(mode: DemoTargetMode): void;
  close(): Promise<void>;
}

/**
 * A stand-in for Jenkins with the Bitbucket Branch Source plugin behind it: it takes a POST to
 * /bitbucket-scmsource-hook/notify and answers 200 with an empty body, as the plugin's receiver does
 * (jenkinsci/bitbucket-branch-source-plugin, BitbucketSCMSourcePushHookReceiver.java: HttpResponses.ok()).
 * "down" answers 503 as a Jenkins behind a proxy does while it restarts; "refuse" answers 400, what the plugin
 * says to a request it cannot use.
 */
export async function startDemoTarget(): Promise<DemoTarget> {
  let mode: DemoTargetMode = { kind: 'ok' };
  let received = 0;
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      received += 1;
      if (mode.kind === 'down' && mode.times > 0) {
        mode = mode.times > 1 ? { kind: 'down', times: mode.times - 1 } : { kind: 'ok' };
        res.writeHead(503, { 'content-type': 'text/html' }).end('<h1>503 Service Unavailable</h1>');
      } else if (mode.kind === 'refuse') {
        res.writeHead(400, { 'content-type': 'text/plain' }).end('Unknown event');
      } else {
        res.writeHead(200).end();
      }
    });
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/bitbucket-scmsource-hook/notify`,
    get received() {
      return received;
    },
    set(next) {
      mode = next;
    },
    close: () => new Promise((done) => server.close(() => done())),
  };
}
