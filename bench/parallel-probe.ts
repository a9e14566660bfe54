/**
 * The machine's own ceiling for the simulation's speed-up: the same participant rounds (training,
 * reference and test predictions; bench/parallel-probe-worker.ts) run by one thread twice over,
 * then by two threads at once, one share each. Nothing else runs — no coordinator, no barrier,
 * no uneven split — so the ratio is what two cores give this work here: wasm threads share the
 * caches and the memory bus, and each runs slower beside the other.
 */
import { execFile } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Worker } from 'node:worker_threads';
import { median } from './harness.js';
import type { ProbeMessage, ProbeStart } from './parallel-probe-worker.js';

interface ProbeThread {
  worker: Worker;
  /** Runs `units` rounds; resolves with their milliseconds. */
  run(units: number): Promise<number>;
}

/** Starts one probe thread and waits until it has warmed up. */
export function startThread(start: ProbeStart): Promise<ProbeThread> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./parallel-probe-worker.js', import.meta.url), { workerData: start });
    let pending: ((ms: number) => void) | undefined;
    worker.on('error', reject);
    worker.on('message', (m: ProbeMessage) => {
      if (m.type === 'error') reject(new Error(`parallel probe thread: ${m.message}`));
      else if (m.type === 'ready') resolve({ worker, run: (units) => new Promise((done) => { pending = done; worker.postMessage(units); }) });
      else pending?.(m.ms);
    });
  });
}

export interface ParallelCeiling {
  /** One thread doing 2·units rounds, per repetition (ms). */
  oneThread: number[];
  /** Two threads doing `units` rounds each at once, the slower one's time per repetition (ms). */
  twoThreads: number[];
  /** Each thread's own time in the two-thread runs (ms), per repetition. */
  perThread: number[][];
  ratio: number;
}

/** Alternates one-thread and two-thread runs `reps` times; the ratio of the medians is the ceiling. */
export async function parallelCeiling(options: { backend?: string; samples: number; units: number; reps: number; log: (line: string) => void }): Promise<ParallelCeiling> {
  const threads = await Promise.all([0, 1].map((i) => startThread({ backend: options.backend, samples: options.samples, seed: 11 + i })));
  const oneThread: number[] = [];
  const twoThreads: number[] = [];
  const perThread: number[][] = [];
  try {
    for (let r = 0; r < options.reps; r++) {
      oneThread.push(await threads[0]!.run(2 * options.units));
      const both = await Promise.all(threads.map((t) => t.run(options.units)));
      perThread.push(both);
      twoThreads.push(Math.max(...both));
      options.log(`    parallel probe ${r + 1}/${options.reps}: 1 thread ${(oneThread[r]! / 1000).toFixed(2)} s, 2 threads ${(twoThreads[r]! / 1000).toFixed(2)} s`);
    }
  } finally {
    await Promise.all(threads.map((t) => t.worker.terminate()));
  }
  return { oneThread, twoThreads, perThread, ratio: median(oneThread) / median(twoThreads) };
}

/**
 * The same rounds by one thread alone, pinned to each core in turn (taskset, in a fresh process):
 * a virtual machine's cores need not be equally fast. Medians of `reps` per core, in ms; undefined
 * where taskset is missing.
 */
export async function perCoreTimes(options: { backend?: string; samples: number; units: number; reps: number; log: (line: string) => void }): Promise<number[] | undefined> {
  const child = fileURLToPath(new URL('./core-probe-child.js', import.meta.url));
  const run = promisify(execFile);
  const start: ProbeStart = { backend: options.backend, samples: options.samples, seed: 11 };
  const cores = availableParallelism();
  const times: number[][] = Array.from({ length: cores }, () => []);
  try {
    for (let r = 0; r < options.reps; r++) {
      for (let core = 0; core < cores; core++) {
        const { stdout } = await run('taskset', ['-c', String(core), process.execPath, child, JSON.stringify(start), String(options.units)]);
        times[core]!.push(Number(stdout.trim()));
      }
      options.log(`    one thread pinned to each core ${r + 1}/${options.reps}: ${times.map((t, c) => `core ${c} ${(t[r]! / 1000).toFixed(2)} s`).join(', ')}`);
    }
  } catch (error) {
    if ((error as { code?: string }).code === 'ENOENT') return undefined;
    throw error;
  }
  return times.map((t) => median(t));
}
