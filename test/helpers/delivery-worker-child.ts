/**
 * A delivery worker in its own process, for crash tests: `node --import tsx delivery-worker-child.ts <config
 * JSON>`. Prints `ready` once its workers run; the test may SIGKILL it at any moment.
 */
import { buildConfig } from '../../src/config/load-config.js';
import { startDeliveryWorkers } from '../../src/delivery/workers.js';
import { createLogger } from '../../src/log.js';
import { createRuntime, waitForRedis } from '../../src/runtime.js';

const config = buildConfig(JSON.parse(process.argv[2] ?? '{}'), {});
const log = createLogger('warn');
const runtime = await createRuntime(config, log);
await waitForRedis(runtime.redis, 10_000);
const workers = startDeliveryWorkers(runtime);
process.stdout.write('ready\n');
process.once('SIGTERM', () => {
  void workers
    .close()
    .then(() => runtime.close())
    .then(() => process.exit(0));
});
