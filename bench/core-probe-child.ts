/**
 * The parallel probe's participant rounds in one thread of this process, for bench/parallel-probe.ts
 * to run pinned to one core (taskset): prints the milliseconds `units` rounds took after warm-up.
 *
 *   node dist/bench/core-probe-child.js '{"samples":1750,"seed":11}' UNITS
 */
import { Worker } from 'node:worker_threads';
import type { ProbeMessage, ProbeStart } from './parallel-probe-worker.js';

const start = JSON.parse(process.argv[2] ?? '{}') as ProbeStart;
const units = Number(process.argv[3] ?? 1);
const worker = new Worker(new URL('./parallel-probe-worker.js', import.meta.url), { workerData: start });
worker.on('message', (m: ProbeMessage) => {
  if (m.type === 'ready') worker.postMessage(units);
  else if (m.type === 'done') {
    process.stdout.write(`${m.ms}\n`);
    void worker.terminate();
  } else {
    process.stderr.write(`${m.message}\n`);
    process.exitCode = 1;
    void worker.terminate();
  }
});
