/**
 * The simulation's worker pool: threads started once, before the data, and reused by every run
 * of a simulation; the same numbers as fresh threads; no tensors left behind between jobs; a
 * crash that rejects the run and closes the pool. Worker threads load compiled files, so this
 * imports the compiled simulation (`npm test` builds first).
 */
import { describe, expect, it, vi } from 'vitest';
import { WorkerPool } from '../../dist/simulations/pool.js';
import { DEFAULT_OPTIONS, prepareData, runAlgorithm, simulate, type RunResult, type SimulationOptions } from '../../dist/simulations/simulate.js';
import type { WorkerJob } from '../../dist/simulations/worker.js';

// Every worker thread the simulation starts, and which of them are still running.
const threads = vi.hoisted(() => ({ started: 0, live: new Set<number>() }));
vi.mock('node:worker_threads', async (original) => {
  const real = await original<typeof import('node:worker_threads')>();
  class CountedWorker extends real.Worker {
    constructor(...args: ConstructorParameters<typeof real.Worker>) {
      super(...args);
      threads.started++;
      const id = this.threadId;
      threads.live.add(id);
      this.on('exit', () => threads.live.delete(id));
    }
  }
  return { ...real, Worker: CountedWorker };
});

const SMALL: SimulationOptions = {
  ...DEFAULT_OPTIONS, participants: 2, rounds: 2, testSize: 200, referenceSize: 100, referencePerRound: 100, privateSize: 600, workers: 2, seed: 3,
};
const quiet = { line: () => {} };
/** A run's numbers: everything but timings (wall seconds, the workers' busy time). */
const numbers = ({ seconds: _, workerBusySeconds: __, rows, ...run }: RunResult) => ({ ...run, rows: rows.map(({ seconds: ___, ...row }) => row) });

describe('the simulation worker pool', () => {
  it('starts the workers once, before the data is ready, and runs the algorithm and the baseline on them', async () => {
    threads.started = 0;
    let startedBeforeData = -1;
    // Centralized needs one worker and the baseline two: the pool is sized for the larger run.
    const result = await simulate({ ...SMALL, algorithm: 'centralized', baseline: true }, {
      line: (text) => {
        if (text.startsWith('data:')) startedBeforeData = threads.started;
      },
    });
    expect(startedBeforeData).toBe(2);
    expect(threads.started).toBe(2);
    expect(result.runs.map((r) => [r.algorithm, r.participants, r.rows.length])).toEqual([['centralized', 1, 2], ['local', 2, 2]]);
    expect(threads.live.size).toBe(0);
  });

  it('gives every run the numbers fresh workers give, and leaves no tensors behind between jobs', async () => {
    const data = prepareData(SMALL, quiet);
    const algorithms = ['dml', 'centralized', 'local'];
    const fresh: RunResult[] = [];
    for (const algorithm of algorithms) fresh.push(await runAlgorithm({ ...SMALL, algorithm }, data, quiet));

    threads.started = 0;
    const pool = new WorkerPool(2);
    const reused: RunResult[] = [];
    try {
      for (const algorithm of algorithms) reused.push(await runAlgorithm({ ...SMALL, algorithm }, data, quiet, pool));
    } finally {
      await pool.close();
    }
    expect(threads.started).toBe(2);
    expect(reused.map((r) => r.rows.length)).toEqual([2, 2, 2]);
    expect(reused.map(numbers)).toEqual(fresh.map(numbers));
    // Each worker a run used reports its busy time: some, and no more than the run's wall time.
    expect(reused.map((r) => r.workerBusySeconds.length)).toEqual([2, 1, 2]);
    for (const r of reused) for (const busy of r.workerBusySeconds) expect(busy > 0 && busy <= r.seconds, `${r.algorithm}: busy ${busy} s of ${r.seconds} s`).toBe(true);
    // Worker 0 ran all three jobs, worker 1 the two with two participants; each count is the one
    // its worker started with.
    expect(pool.tensors.map((counts) => counts.length)).toEqual([4, 3]);
    expect(pool.tensors).toEqual(pool.tensors.map((counts) => counts.map(() => counts[0])));
  });

  it('refuses a run that needs more workers than the pool has', async () => {
    const pool = new WorkerPool(1);
    try {
      await expect(runAlgorithm(SMALL, prepareData(SMALL, quiet), quiet, pool)).rejects.toThrow(/this run needs 2 worker threads .*; the pool has 1/);
    } finally {
      await pool.close();
    }
  });

  it('rejects the run when a worker crashes, naming the worker, and closes the pool', async () => {
    const pool = new WorkerPool(2);
    const data = prepareData(SMALL, quiet);
    const nobody: WorkerJob = {
      url: 'http://127.0.0.1:9', session: 'none', model: 'mlp', learningRate: 1e-3, epochs: 1, batchSize: 32,
      participants: [], reference: data.reference.x, test: data.test,
    };
    // A job without a participant list throws in the worker, outside any participant's handler.
    const broken = { ...nobody, participants: null } as unknown as WorkerJob;
    await expect(pool.run([nobody, broken], () => {})).rejects.toThrow(/^worker 1 crashed: .*null/);
    await vi.waitFor(() => expect(pool.threadIds.filter((id) => threads.live.has(id))).toEqual([]));
    await expect(pool.run([nobody], () => {})).rejects.toThrow(/the worker pool runs no more jobs: worker 1 crashed/);
  });

  it('a session config the coordinator refuses leaves no coordinator listening and starts no worker', async () => {
    const options = { ...SMALL, participants: 4 };
    const data = prepareData(options, quiet);
    const servers = () => process.getActiveResourcesInfo().filter((r) => r === 'TCPServerWrap').length;
    const before = servers();
    threads.started = 0;
    // With 4 participants each target has 3 other values: β = 0.1 trims ⌊0.3⌋ = 0 of them.
    await expect(runAlgorithm({ ...options, aggregator: 'trimmed-mean', trimFraction: 0.1 }, data, quiet)).rejects.toThrow(/trimFraction 0.1 trims/);
    // A closed server's handle goes on the next turns of the loop; an open one stays.
    await vi.waitFor(() => expect(servers()).toBe(before), { timeout: 2000 });
    expect(threads.started).toBe(0);
  });
});
