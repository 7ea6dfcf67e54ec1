import type { Runtime } from '../runtime.js';

/** What the admin app needs: the shared runtime without its lifecycle (the process start owns that). */
export type AdminDeps = Pick<Runtime, 'config' | 'log' | 'keys' | 'redis' | 'queues' | 'store' | 'metrics'>;
