/**
 * `npm run bench`: every benchmark, each against a baseline measured in the same run (the machines are noisy,
 * so only ratios are comparable between runs). Not a test: nothing here fails the build.
 */

import { benchBurst, printBurst } from './burst.js';
import { benchDeadLetters, printDeadLetters } from './deadletters.js';
import { benchDurability, printDurability } from './durability.js';
import { benchE2E, printE2E } from './e2e.js';
import { benchEdge, formatEdgeBench } from './edge.js';
import { benchIngest, printIngest } from './ingest.js';
import { benchIngestStages, printIngestStages } from './ingest-stages.js';
import { benchTracing, printTracing } from './tracing.js';

const only = process.argv[2];
if (!only || only === 'ingest') printIngest(await benchIngest());
if (!only || only === 'stages') printIngestStages(await benchIngestStages());
if (!only || only === 'e2e') printE2E(await benchE2E());
if (!only || only === 'burst') printBurst(await benchBurst());
if (!only || only === 'edge') console.log(`\n== edge ==\n${formatEdgeBench(await benchEdge())}`);
if (!only || only === 'durability') printDurability(await benchDurability());
if (!only || only === 'tracing') printTracing(await benchTracing());
if (!only || only === 'deadletters') printDeadLetters(await benchDeadLetters());
