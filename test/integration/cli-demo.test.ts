import { expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';

// The newcomer's first run: the real CLI, its own redis-server and stand-in Jenkins, nothing configured.
it('hookrelay demo shows a delivery, a retry, a dead letter and its replay, then the console URL', async () => {
  const result = await runCli(['demo', '--exit'], {}, 90_000);
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  const out = result.stdout;
  expect(out).toMatch(
    /1\. A push to main[^\n]*\n {2}Bitbucket → relay: 202[^\n]*\n {2}relay → Jenkins: 200 \(delivered\)/,
  );
  expect(out).toMatch(/relay → Jenkins: 503 → 503 → 200 \(delivered after 2 retries\)/);
  expect(out).toMatch(/relay → Jenkins: 400 \(dead: status 400\)/);
  expect(out).toMatch(/POST \/api\/dead-letters\/replay → 200\n {2}relay → Jenkins: 400 → 200 \(delivered\)/);
  expect(out).toMatch(/Console: http:\/\/127\.0\.0\.1:\d+\/ {2}\(log in with the token [0-9a-f]{48}\)/);
}, 120_000);
