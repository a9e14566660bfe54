/**
 * The worker threads of a simulation, started once and reused by each of its runs (the algorithm
 * under study, then the baseline). A worker imports tfjs and starts its backend as soon as it is
 * created (≈0.5 s each on wasm), so that start-up overlaps whatever the main thread does next
 * (loading and partitioning the data) and is paid once per simulation, not once per run.
 */
import { Worker } from 'node:worker_threads';
import type { EventLoopUtilization } from 'node:perf_hooks';
import type { WorkerJob, WorkerOutput, WorkerStart } from './worker.js';

export type RoundReport = Extract<WorkerOutput, { type: 'round' }>;

/** What a run on the pool reports besides its rounds. */
export interface PoolRun {
  backend: string;
  /**
   * Each worker's busy time over its job, in seconds: the time its event loop was not idle
   * (training, predicting, encoding — waiting for the coordinator excluded). The same work takes
   * longer when the workers slow each other down, which the simulation benchmark measures.
   */
  busySeconds: number[];
}

interface Run {
  onRound: (report: RoundReport) => void;
  resolve: (run: PoolRun) => void;
  reject: (error: Error) => void;
  /** Workers of this run that have not finished their job yet. */
  busy: number;
  /** Each worker's event-loop utilisation when its job was sent, and its busy seconds once done. */
  since: EventLoopUtilization[];
  busySeconds: number[];
}

export class WorkerPool {
  /** Each worker's thread id: the same for every run, since the threads start once. */
  readonly threadIds: number[];
  /**
   * Tensors alive in each worker once its backend had started, then after each job it ran. A job
   * that leaks (a student not disposed) shows as growth, which a reused worker would carry into
   * every later run.
   */
  readonly tensors: number[][];
  private readonly workers: Worker[];
  private readonly backends: string[] = [];
  private current: Run | undefined;
  /** Why the pool no longer runs jobs, once it does not. */
  private closedBecause: string | undefined;
  private closing: Promise<void> | undefined;

  /** `backend` forces one backend in every worker (client/backend.ts); automatic when omitted. */
  constructor(readonly size: number, readonly backend?: string) {
    this.tensors = Array.from({ length: size }, () => []);
    this.workers = Array.from({ length: size }, (_, w) => {
      const worker = new Worker(new URL('./worker.js', import.meta.url), { workerData: { backend } satisfies WorkerStart });
      worker.on('message', (message: WorkerOutput) => this.receive(w, message));
      worker.on('error', (error) => void this.stop(new Error(`worker ${w} crashed: ${error.message}`)));
      worker.on('exit', (code) => void this.stop(new Error(`worker ${w} exited (code ${code}) while the pool was open`)));
      return worker;
    });
    this.threadIds = this.workers.map((w) => w.threadId);
  }

  /**
   * Runs one job per worker, `jobs[w]` on worker w (fewer jobs than workers leave the rest idle),
   * passing every round report on as it arrives; resolves with the backend and each worker's
   * busy time once every job is done. The first participant error or worker crash rejects the run and closes the pool: the
   * other participants are then mid-job, and their workers can run nothing else.
   */
  run(jobs: readonly WorkerJob[], onRound: (report: RoundReport) => void): Promise<PoolRun> {
    if (this.closedBecause !== undefined) return Promise.reject(new Error(`the worker pool runs no more jobs: ${this.closedBecause}`));
    if (this.current !== undefined) return Promise.reject(new Error('the worker pool is already running jobs; runs on one pool go one after another'));
    if (jobs.length === 0 || jobs.length > this.size) {
      return Promise.reject(new Error(`a run needs 1 to ${this.size} jobs on this pool of ${this.size} workers (got ${jobs.length})`));
    }
    return new Promise((resolve, reject) => {
      const since = jobs.map((_, w) => this.workers[w]!.performance.eventLoopUtilization());
      this.current = { onRound, resolve, reject, busy: jobs.length, since, busySeconds: jobs.map(() => 0) };
      jobs.forEach((job, w) => this.workers[w]!.postMessage(job));
    });
  }

  /** Terminates the workers; a run still going rejects. */
  close(): Promise<void> {
    return this.stop(new Error('the worker pool was closed'));
  }

  private receive(w: number, message: WorkerOutput): void {
    switch (message.type) {
      case 'ready':
        this.backends[w] = message.backend;
        this.tensors[w]!.push(message.numTensors);
        break;
      case 'round':
        this.current?.onRound(message);
        break;
      case 'error':
        void this.stop(new Error(`participant p${message.index} failed: ${message.message}`));
        break;
      case 'idle': {
        this.tensors[w]!.push(message.numTensors);
        const run = this.current;
        if (run === undefined) break;
        run.busySeconds[w] = this.workers[w]!.performance.eventLoopUtilization(run.since[w]).active / 1000;
        if (--run.busy > 0) break;
        this.current = undefined;
        // Messages from one worker arrive in order: 'ready' came before any of its jobs ended.
        run.resolve({ backend: this.backends[w]!, busySeconds: run.busySeconds });
        break;
      }
    }
  }

  private stop(reason: Error): Promise<void> {
    if (this.closing !== undefined) return this.closing;
    this.closedBecause = reason.message;
    this.current?.reject(reason);
    this.current = undefined;
    this.closing = Promise.all(this.workers.map((w) => w.terminate())).then(() => undefined);
    return this.closing;
  }
}
