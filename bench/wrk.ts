import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { LoadResult } from './harness.js';
import type { BenchRequest } from './payloads.js';

const run = promisify(execFile);

/**
 * wrk's script: the pre-signed requests are read once from a file (raw HTTP, lengths in a second file) and sent
 * in order, so every request is a distinct, correctly signed webhook. `done` prints one JSON line.
 */
const SCRIPT = `
local data = assert(io.open(os.getenv("WRK_REQUESTS"), "rb")):read("*a")
local requests, position = {}, 1
for length in io.lines(os.getenv("WRK_LENGTHS")) do
  local n = tonumber(length)
  requests[#requests + 1] = data:sub(position, position + n - 1)
  position = position + n
end
local next_index = 0
request = function()
  next_index = next_index % #requests + 1
  return requests[next_index]
end
done = function(summary, latency)
  io.write(string.format('WRK_RESULT {"requests":%d,"durationUs":%d,"non2xx":%d,"errors":%d,"p50Us":%d,"p99Us":%d,"available":%d}\\n',
    summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), #requests))
end
`;

export interface WrkResult extends LoadResult {
  /** Requests sent; more than `available` means some were sent twice (duplicates, a cheaper path). */
  sent: number;
  available: number;
}

/**
 * Loads a server with wrk (C, one thread): a load generator written in Node would take one of the machine's two
 * cores from the server it measures. Same contract as harness load(): distinct pre-signed requests.
 */
export async function wrkLoad(
  url: string,
  path: string,
  reqs: BenchRequest[],
  seconds: number,
  connections = 16,
): Promise<WrkResult> {
  const dir = mkdtempSync(join(tmpdir(), 'hookrelay-wrk-'));
  try {
    const host = new URL(url).host;
    const raw = reqs.map((r) => {
      const head = [
        `POST ${path} HTTP/1.1`,
        `Host: ${host}`,
        ...Object.entries(r.headers).map(([name, value]) => `${name}: ${value}`),
        `Content-Length: ${r.body.length}`,
        '',
        '',
      ].join('\r\n');
      return Buffer.concat([Buffer.from(head), r.body]);
    });
    writeFileSync(join(dir, 'requests.bin'), Buffer.concat(raw));
    writeFileSync(join(dir, 'lengths.txt'), `${raw.map((b) => b.length).join('\n')}\n`);
    writeFileSync(join(dir, 'script.lua'), SCRIPT);
    const { stdout } = await run(
      'wrk',
      ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency', '-s', join(dir, 'script.lua'), url],
      {
        env: {
          ...process.env,
          WRK_REQUESTS: join(dir, 'requests.bin'),
          WRK_LENGTHS: join(dir, 'lengths.txt'),
        },
        maxBuffer: 16 * 1024 * 1024,
      },
    );
    const line = stdout.split('\n').find((l) => l.startsWith('WRK_RESULT '));
    if (!line) throw new Error(`wrk printed no result:\n${stdout}`);
    const r = JSON.parse(line.slice('WRK_RESULT '.length)) as Record<string, number>;
    return {
      rps: r.requests! / (r.durationUs! / 1e6),
      p50: r.p50Us! / 1000,
      p99: r.p99Us! / 1000,
      non2xx: r.non2xx!,
      errors: r.errors!,
      sent: r.requests!,
      available: r.available!,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
