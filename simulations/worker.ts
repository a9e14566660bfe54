/**
 * Simulated participants in one worker thread. The wasm backend is single-threaded, so
 * participants sharing a thread take turns; the simulation gives each worker its own event loop
 * and tfjs, and spreads participants over as many workers as asked (one each by default).
 *
 * A worker starts its backend as soon as it starts, before it has any work, then runs the jobs
 * its pool (simulations/pool.ts) sends, one after another: a job is one run's participants on
 * this worker.
 */
import * as tf from '@tensorflow/tfjs';
import { parentPort, workerData } from 'node:worker_threads';
import { selectBackend } from '../client/backend.js';
import type { LabeledDataset } from '../client/data/dataset.js';
import { createModel, type ModelName } from '../client/models.js';
import { runParticipant } from '../client/participant.js';
import { Student } from '../client/student.js';
import { attackHook, type AttackKind } from './attacks.js';

export interface SimulatedParticipant {
  index: number;
  token: string;
  seed: number;
  train: LabeledDataset;
  /** Sends adversarial uploads (the job's attack) instead of honest ones. */
  hostile: boolean;
}

/** What a worker is started with: the backend to force, automatic when omitted. */
export interface WorkerStart {
  backend?: string;
}

export interface WorkerJob {
  url: string;
  session: string;
  model: ModelName;
  learningRate: number;
  epochs: number;
  batchSize: number;
  /** What hostile participants do to their uploads. */
  attack?: { kind: AttackKind; scale?: number };
  /** Differential privacy on every honest participant's uploads, seeded with the participant's seed. */
  privacy?: { clip: number; noiseMultiplier: number; delta: number };
  participants: SimulatedParticipant[];
  reference: Float32Array;
  test: LabeledDataset;
}

export type WorkerOutput =
  /** Once, when the backend has started; numTensors is the count every job must leave behind. */
  | { type: 'ready'; backend: string; numTensors: number }
  | {
      type: 'round';
      index: number;
      round: number;
      receivedTarget: boolean;
      accuracy: number;
      testProbs: Float32Array;
      loss: number;
      trainMs: number;
      numTensors: number;
    }
  | { type: 'error'; index: number; message: string }
  /** After every participant of a job is done: the worker waits for the next job. */
  | { type: 'idle'; numTensors: number };

async function runOne(job: WorkerJob, p: SimulatedParticipant, post: (m: WorkerOutput, t?: ArrayBuffer[]) => void): Promise<void> {
  let student: Student | undefined;
  try {
    const { sampleShape, numClasses } = p.train;
    student = new Student(createModel({ name: job.model, inputShape: sampleShape, numClasses, seed: p.seed }), {
      sampleShape, numClasses, learningRate: job.learningRate, seed: p.seed,
    });
    await runParticipant({
      url: job.url,
      session: job.session,
      token: p.token,
      student,
      data: { train: p.train, reference: job.reference },
      evaluation: job.test,
      epochs: job.epochs,
      batchSize: job.batchSize,
      ...(p.hostile && job.attack !== undefined ? { uploadHook: attackHook(job.attack, p.seed) } : {}),
      ...(!p.hostile && job.privacy !== undefined ? { privacy: { ...job.privacy, seed: p.seed } } : {}),
      onRound: (r) => {
        const probs = r.evaluationProbs!;
        post({
          type: 'round', index: p.index, round: r.round, receivedTarget: r.receivedTarget, accuracy: r.accuracy!,
          testProbs: probs, loss: r.train.loss, trainMs: r.train.ms, numTensors: r.numTensors,
        }, [probs.buffer as ArrayBuffer]);
      },
    });
  } catch (error) {
    post({ type: 'error', index: p.index, message: error instanceof Error ? error.message : String(error) });
  } finally {
    // Also after a failure: the worker may outlive this job, and its tensors would stay behind.
    student?.dispose();
  }
}

async function runJob(job: WorkerJob, backend: Promise<string>, post: (m: WorkerOutput, t?: ArrayBuffer[]) => void): Promise<void> {
  try {
    await backend;
  } catch (error) {
    for (const p of job.participants) post({ type: 'error', index: p.index, message: (error as Error).message });
    return;
  }
  await Promise.all(job.participants.map((p) => runOne(job, p, post)));
  post({ type: 'idle', numTensors: tf.memory().numTensors });
}

if (parentPort !== null) {
  const port = parentPort;
  const post = (message: WorkerOutput, transfer: ArrayBuffer[] = []) => port.postMessage(message, transfer);
  // Started before any job arrives, so that importing tfjs and initialising the backend overlap
  // the main thread's work (loading the data). A backend that fails is reported by each job, per
  // participant.
  const backend = selectBackend((workerData as WorkerStart).backend);
  backend.then((name) => post({ type: 'ready', backend: name, numTensors: tf.memory().numTensors }), () => {});
  port.on('message', (job: WorkerJob) => void runJob(job, backend, post));
}
