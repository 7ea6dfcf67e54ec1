/**
 * The delivery worker process: `node dist/workers/delivery-worker.js [--config <file>]` runs what
 * `hookrelay worker` runs (one path for both: config, signals, exit codes). The worker logic lives in
 * src/delivery/workers.ts.
 */
import { main } from '../src/cli/main.js';

const [node = 'node', script = 'delivery-worker'] = process.argv;
await main([node, script, 'worker', ...process.argv.slice(2)]);
