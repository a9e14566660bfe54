/**
 * The parallel probe's participant rounds in one thread of this process, for bench/parallel-probe.ts
 * to run pinned to one core (taskset): prints the milliseconds `units` rounds took after warm-up.
 *
 *   node dist/bench/core-probe-child.js '{"samples":1750,"seed":11}' UNITS
 */
import { startThread } from './parallel-probe.js';
import type { ProbeStart } from './parallel-probe-worker.js';

const start = JSON.parse(process.argv[2] ?? '{}') as ProbeStart;
const thread = await startThread(start);
try {
  process.stdout.write(`${await thread.run(Number(process.argv[3] ?? 1))}\n`);
} finally {
  await thread.worker.terminate();
}
