/**
 * `npm run bench`: every benchmark, each against a baseline measured in the same run (the machines are noisy,
 * so only ratios are comparable between runs). Not a test: nothing here fails the build.
 */
import { benchIngest, printIngest } from './ingest.js';

const only = process.argv[2];
if (!only || only === 'ingest') printIngest(await benchIngest());
