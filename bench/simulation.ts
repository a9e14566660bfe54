/**
 * 6. Simulation scaling: wall time of the default simulation shape with 1 worker thread vs one
 *    per core (2 here), same options otherwise, and memory per simulated participant.
 */
import { fork } from 'node:child_process';
import os from 'node:os';
import { balanceWorkers, DEFAULT_OPTIONS, type SimulationOptions, type SimulationResult } from '../simulations/simulate.js';
import { bytesText, figure, fmt, median, type Benchmark, type Table } from './harness.js';
import { parallelCeiling, perCoreTimes } from './parallel-probe.js';
import type { SimulationChildEvent } from './simulation-child.js';

type ChildRun = Extract<SimulationChildEvent, { type: 'done' }>;

/** One simulate() run in a fresh process (bench/simulation-child.ts), bounded by `timeoutMs`. */
export function simulateInChild(options: SimulationOptions, log: (line: string) => void, timeoutMs: number): Promise<ChildRun> {
  return new Promise((resolve, reject) => {
    const child = fork(new URL('./simulation-child.js', import.meta.url), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced' });
    let settled = false;
    const finish = (error?: Error, run?: ChildRun) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (child.exitCode === null) child.kill();
      if (error) reject(error);
      else resolve(run!);
    };
    const timer = setTimeout(() => finish(new Error(`the simulation took longer than ${timeoutMs / 1000} s`)), timeoutMs);
    child.on('message', (event: SimulationChildEvent) => {
      if (event.type === 'ready') child.send(options);
      else if (event.type === 'line') log(`    ${event.text.replace(/\n/g, '\n    ')}`);
      else if (event.type === 'done') finish(undefined, event);
      else finish(new Error(event.message));
    });
    child.on('exit', (code) => finish(new Error(`the simulation process exited with code ${code} before it finished`)));
  });
}

/** Σ load / max per-worker load when participant i runs on worker i mod W: the best speed-up that assignment allows. */
export function roundRobinBound(loads: number[], workers: number): number {
  const per = new Array<number>(workers).fill(0);
  loads.forEach((load, i) => (per[i % workers]! += load));
  return loads.reduce((a, b) => a + b, 0) / Math.max(...per);
}

/** The same bound for a longest-processing-time-first assignment (the greedy balanced one). */
export function balancedBound(loads: number[], workers: number): number {
  const per = new Array<number>(workers).fill(0);
  for (const load of [...loads].sort((a, b) => b - a)) {
    const w = per.indexOf(Math.min(...per));
    per[w]! += load;
  }
  return loads.reduce((a, b) => a + b, 0) / Math.max(...per);
}

export const simulationBenchmark: Benchmark = {
  id: 'simulation',
  title: '6. Simulation scaling',
  async run({ quick, backend, log }) {
    // The default simulation as the README runs it (10 rounds and the baseline): fewer rounds would
    // weigh its fixed costs (process, data, worker start-up, first-round warm-up) more than it does.
    const rounds = quick ? 2 : DEFAULT_OPTIONS.rounds;
    const cores = os.availableParallelism?.() ?? os.cpus().length;
    const perCore = Math.max(2, Math.min(cores, DEFAULT_OPTIONS.participants));
    const base: SimulationOptions = { ...DEFAULT_OPTIONS, rounds, backend, out: '' };
    const runs: Array<{ workers: number; seconds: number; peakRss: number; baseRss: number; coresUsed: number; load: number; result: SimulationResult }> = [];
    for (const workers of [1, perCore]) {
      log(`  default simulation shape, ${rounds} rounds, ${workers} worker thread(s), in a fresh process`);
      const run = await simulateInChild({ ...base, workers }, log, 20 * 60_000);
      runs.push({ workers, seconds: run.seconds, peakRss: run.peakRss, baseRss: run.baseRss, coresUsed: run.coresUsed, load: os.loadavg()[0]!, result: run.result });
      log(`    ${fmt(run.seconds)} s, ${fmt(run.coresUsed)} cores used on average, load average ${fmt(os.loadavg()[0]!)}`);
    }
    const [one, many] = runs as [typeof runs[0], typeof runs[0]];
    const sizes = one.result.data.labelMatrix.map((row) => row.reduce((a, b) => a + b, 0));
    // The machine's ceiling for this work: the same kind of rounds, one thread vs two, nothing else running.
    log('  parallel ceiling: participant rounds (train, predict reference and test) in 1 thread vs 2 at once');
    const probeSamples = Math.round(sizes.reduce((a, b) => a + b, 0) / sizes.length);
    const ceiling = await parallelCeiling({ backend, samples: probeSamples, units: quick ? 1 : 2, reps: quick ? 2 : 3, log });
    const coreTimes = await perCoreTimes({ backend, samples: probeSamples, units: quick ? 2 : 4, reps: quick ? 1 : 2, log });
    // Cores of unequal speed: all of them together do at most Σ_c t_fastest / t_c times the work of the fastest alone.
    const coreBound = coreTimes === undefined ? undefined : coreTimes.reduce((a, t) => a + Math.min(...coreTimes) / t, 0);
    // The same work, measured by the workers themselves: their busy time summed over the runs.
    const busy = (r: { result: SimulationResult }) => r.result.runs.reduce((a, run) => a + run.workerBusySeconds.reduce((x, y) => x + y, 0), 0);
    const busiest = (r: { result: SimulationResult }) => r.result.runs.reduce((a, run) => a + Math.max(...run.workerBusySeconds), 0);
    const n = DEFAULT_OPTIONS.participants;
    const memoryRows: Table['rows'] = runs.map((r) => [
      r.workers, `${fmt(r.seconds)} s`, fmt(r.coresUsed), fmt(r.load), bytesText(r.peakRss - r.baseRss), bytesText((r.peakRss - r.baseRss) / n),
      r.result.runs.map((x) => `${x.algorithm} ${fmt(x.seconds)} s, mean acc ${fmt(100 * x.final.meanAccuracy)}%`).join('; '),
    ]);
    const rrBound = roundRobinBound(sizes, many.workers);
    const lptBound = balancedBound(sizes, many.workers);
    const assignment = balanceWorkers(sizes, many.workers);
    // Rounds after the first of each run: no warm-up, and nothing left of the workers' start-up.
    const steady = (r: { result: SimulationResult }) => r.result.runs.reduce((total, run) => total + run.rows.slice(1).reduce((a, row) => a + row.seconds, 0), 0);
    const firsts = (r: { result: SimulationResult }) => r.result.runs.reduce((total, run) => total + (run.rows[0]?.seconds ?? 0), 0);
    return {
      method: [
        `simulate() with the defaults (${n} participants, ${DEFAULT_OPTIONS.model}, Dirichlet α=0.3, ${DEFAULT_OPTIONS.algorithm} then the local-only baseline, ${rounds} rounds), the same for both runs; one run per worker count, one after the other.`,
        'Each run in a fresh Node process (bench/simulation-child.ts). Memory per simulated participant: that process\'s peak RSS during simulate() (worker threads, coordinator and data included) minus its RSS just before, over the participants.',
      ],
      tables: [
        {
          caption: `Wall time and memory, ${rounds} rounds`,
          columns: ['worker threads', 'wall time', 'cores used (CPU s / wall s)', 'load average after', 'peak RSS added', 'per participant', 'runs'],
          rows: memoryRows,
        },
        ...(coreTimes === undefined ? [] : [{
          caption: `The same participant rounds (${quick ? 2 : 4} of ${probeSamples} private samples) by one thread alone, pinned to each core in turn with taskset, in a fresh process; medians`,
          columns: ['core', 'seconds', 'speed relative to the fastest core'],
          rows: coreTimes.map((t, c) => [c, fmt(t / 1000), fmt(Math.min(...coreTimes) / t)]),
        }]),
        {
          caption: 'How evenly the work can split: private training samples per participant and the worker simulate() puts it on (largest first, onto the least-loaded worker)',
          columns: ['participant', 'private samples', `worker of ${many.workers}`],
          rows: sizes.map((s, i) => [`p${i}`, s, assignment[i]!]),
        },
      ],
      figures: [
        figure({
          id: 'simulation.speedup',
          label: `Simulation wall time, ${many.workers} workers vs 1 (default shape, ${rounds} rounds)`,
          value: 1 / many.seconds, unit: 'runs/s',
          baseline: { label: '1 worker', value: 1 / one.seconds, unit: 'runs/s' },
          target: { on: 'ratio', op: '>=', goal: 1.7 },
          note: `${fmt(one.seconds)} s → ${fmt(many.seconds)} s`,
        }),
        figure({
          id: 'simulation.parallel-ceiling',
          label: `Parallel ceiling: the same participant rounds in 2 threads at once vs 1 thread (no coordinator, an even split; ${probeSamples} private samples a round)`,
          value: 1 / median(ceiling.twoThreads), unit: 'runs/s',
          baseline: { label: '1 thread', value: 1 / median(ceiling.oneThread), unit: 'runs/s' },
          note: `${fmt(median(ceiling.oneThread) / 1000)} s → ${fmt(median(ceiling.twoThreads) / 1000)} s, medians of ${ceiling.oneThread.length}`,
        }),
        figure({
          id: 'simulation.worker-busy',
          label: `Worker busy time for the same simulation, ${many.workers} workers vs 1 (summed over workers and runs; above 1, the same work took longer side by side)`,
          value: busy(many), unit: 's',
          baseline: { label: '1 worker', value: busy(one), unit: 's' },
        }),
        figure({
          id: 'simulation.memory-per-participant',
          label: `Memory per simulated participant (${many.workers} workers)`,
          value: (many.peakRss - many.baseRss) / n / 2 ** 20, unit: 'MiB',
        }),
        figure({
          id: 'simulation.memory-per-participant-1',
          label: 'Memory per simulated participant (1 worker)',
          value: (one.peakRss - one.baseRss) / n / 2 ** 20, unit: 'MiB',
        }),
      ],
      notes: [
        `Why the speed-up stops short of ${many.workers}×, measured: (1) the machine's ceiling — the same participant rounds run by ${many.workers} threads at once went ${fmt(ceiling.ratio)}× faster than by one (per repetition, 1 thread ${ceiling.oneThread.map((ms) => fmt(ms / 1000)).join(', ')} s; ${many.workers} threads ${ceiling.perThread.map((t) => t.map((ms) => fmt(ms / 1000)).join(' & ')).join(', ')} s): beside each other, the wasm threads each run slower, sharing the caches and the memory bus;${coreTimes === undefined ? '' : ` and the cores are not equally fast — one thread alone, pinned to each core in turn, took ${coreTimes.map((t, c) => `${fmt(t / 1000)} s on core ${c}`).join(', ')}, so even work that did not interfere could go at most ${fmt(coreBound!)}× faster on them (perfectly balanced to each core's speed);`} (2) the same work inside the simulation — the workers were busy ${fmt(busy(one))} s in all with 1 worker and ${fmt(busy(many))} s with ${many.workers} (${fmt(busy(many) / busy(one))}×); (3) the uneven split — each synchronous round waits for the busier worker: the busiest worker's time summed over the runs was ${fmt(busiest(many))} s of the ${fmt(busy(many))} s, so even with those slowed workers the rounds could go at most ${fmt(busy(many) / busiest(many))}× faster than one worker doing all of it, and against the 1-worker run's own busy time ${fmt(busy(one) / busiest(many))}×.`,
        `Where the time goes: rounds 2 and later took ${fmt(steady(one))} s with 1 worker and ${fmt(steady(many))} s with ${many.workers} (${fmt(steady(one) / steady(many))}×); the first round of each run, which warms tfjs up (and in the first run waits for whatever of the workers' start-up loading the data did not hide: the workers start once, before the data, and serve both runs), took ${fmt(firsts(one))} s and ${fmt(firsts(many))} s (${fmt(firsts(one) / firsts(many))}×); the rest of the wall time (process start, loading and partitioning the data while the workers start, writing results) ${fmt(one.seconds - steady(one) - firsts(one))} s and ${fmt(many.seconds - steady(many) - firsts(many))} s.`,
        `simulate() assigns participants largest first onto the least-loaded worker; with these partition sizes (${sizes.join(', ')}) the training load allows at most ${fmt(lptBound)}× on ${many.workers} workers (round-robin would allow ${fmt(rrBound)}×), and each participant also predicts on the reference and test sets every round whatever its size, which the busier worker does for more participants. Rounds are synchronous, so every round waits for the busier worker.`,
        `The coordinator and the test-set bookkeeping run on the main thread, which shares the ${cores} cores with the workers. "Cores used" is this process's CPU time over wall time: with ${many.workers} workers it can approach ${many.workers} only when no other process wants the cores; it was ${fmt(many.coresUsed)} here (1 worker: ${fmt(one.coresUsed)}), so the speed-up this run could show is at most about ${fmt(many.coresUsed / one.coresUsed)}× from the cores it got.`,
      ],
    };
  },
};
