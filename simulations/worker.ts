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
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { selectBackend } from '../client/backend.js';
import type { LabeledDataset } from '../client/data/dataset.js';
import { createModel, type ModelName } from '../client/models.js';
import { runParticipant } from '../client/participant.js';
import { Student } from '../client/student.js';
import { preprocessingOf, saveStudent } from '../client/student-io/index.js';
import { attackHook, type AttackKind } from './attacks.js';

export interface SimulatedParticipant {
  index: number;
  token: string;
  seed: number;
  train: LabeledDataset;
  /** Sends adversarial uploads (the job's attack) instead of honest ones. */
  hostile: boolean;
  /**
   * A distiller (client/procedures/distiller.ts): `train` is empty, it uploads nothing and learns
   * from the ensemble on the reference set. A teacher trains on `train` for `pretrainEpochs`
   * before round 1, reports its held-out accuracy once (as round 0), then only contributes. A
   * participant when omitted.
   */
  role?: 'distiller' | 'teacher';
  /** A teacher's passes over its shard before round 1 (simulations/groups.ts, teacherEpochs). */
  pretrainEpochs?: number;
  /** Its own model; the job's when omitted. */
  model?: ModelName;
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
  /** FedMD's transfer learning before round 1 (participants, not the distiller): epochs, and the reference labels it needs. */
  pretrain?: { epochs: number; referenceLabels: Int32Array };
  participants: SimulatedParticipant[];
  reference: Float32Array;
  test: LabeledDataset;
  /** Save each participant's student at the end, as `<students>/<participant id>/` (client/student-io). */
  save?: StudentSaving;
}

/** What a worker needs to save and describe its participants' students. */
export interface StudentSaving {
  /** The folder that gets one student folder per participant. */
  students: string;
  algorithm: string;
  rounds: number;
  seed: number;
  /** The data source in words, with the partition's hash. */
  source: string;
  /** What the loader divided u8 values by (255 for MNIST and IDX, 1 for CSV). */
  u8Divisor: number;
  /** Class names (a CSV with string labels), in class-id order, for the card. */
  classNames?: string[];
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
    student = new Student(createModel({ name: p.model ?? job.model, inputShape: sampleShape, numClasses, seed: p.seed }), {
      sampleShape, numClasses, learningRate: job.learningRate, seed: p.seed,
    });
    let heldOut: { accuracy: number; samples: number } | undefined;
    if (p.role === 'teacher') {
      // Its task loss only (α = 1): a teacher's knowledge is its own shard's, learnt before the exchange starts.
      await student.train({ labeled: p.train }, { epochs: p.pretrainEpochs ?? job.epochs, batchSize: job.batchSize, alpha: 1, temperature: 1 });
      const evaluated = await student.evaluate(job.test);
      heldOut = { accuracy: evaluated.accuracy, samples: job.test.y.length };
      post({
        type: 'round', index: p.index, round: 0, receivedTarget: false, accuracy: evaluated.accuracy,
        testProbs: evaluated.probs, loss: Number.NaN, trainMs: 0, numTensors: tf.memory().numTensors,
      }, [evaluated.probs.buffer as ArrayBuffer]);
    }
    const summary = await runParticipant({
      url: job.url,
      session: job.session,
      token: p.token,
      student,
      ...(p.role === undefined ? {} : { role: p.role }),
      data: { train: p.train, reference: job.reference, ...(job.pretrain === undefined || p.role !== undefined ? {} : { referenceLabels: job.pretrain.referenceLabels }) },
      ...(job.pretrain === undefined || p.role !== undefined ? {} : { pretrainOnReference: job.pretrain.epochs }),
      evaluation: job.test,
      epochs: job.epochs,
      batchSize: job.batchSize,
      ...(p.hostile && job.attack !== undefined ? { uploadHook: attackHook(job.attack, p.seed) } : {}),
      // A distiller uploads nothing: there is nothing for privacy to protect, and no ε to report.
      ...(!p.hostile && p.role !== 'distiller' && job.privacy !== undefined ? { privacy: { ...job.privacy, seed: p.seed } } : {}),
      onRound: (r) => {
        const probs = r.evaluationProbs!;
        heldOut = { accuracy: r.accuracy!, samples: job.test.y.length };
        post({
          type: 'round', index: p.index, round: r.round, receivedTarget: r.receivedTarget, accuracy: r.accuracy!,
          testProbs: probs, loss: r.train.loss, trainMs: r.train.ms, numTensors: r.numTensors,
        }, [probs.buffer as ArrayBuffer]);
      },
    });
    if (job.save !== undefined) saveParticipantStudent(job, job.save, p, student, summary.participant, heldOut);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    post({ type: 'error', index: p.index, message: p.role === 'distiller' ? `(the distiller) ${message}` : message });
  } finally {
    // Also after a failure: the worker may outlive this job, and its tensors would stay behind.
    student?.dispose();
  }
}

/** The participant's student and its card, in `<students>/<participant>/`; the caller still disposes it. */
function saveParticipantStudent(
  job: WorkerJob,
  save: StudentSaving,
  p: SimulatedParticipant,
  student: Student,
  participant: string,
  heldOut: { accuracy: number; samples: number } | undefined,
): void {
  const { x, y } = p.train;
  const distiller = p.role === 'distiller';
  // A distiller's student has seen the reference set only (towards the ensemble's predictions): that is its data.
  const seen = distiller ? job.reference : x;
  const hashed = createHash('sha256').update(new Uint8Array(seen.buffer, seen.byteOffset, seen.byteLength));
  const hash = (distiller ? hashed : hashed.update(new Uint8Array(y.buffer, y.byteOffset, y.byteLength))).digest('hex').slice(0, 16);
  saveStudent(join(save.students, participant), student.model, {
    task: 'classification',
    classes: { count: student.numClasses, ...(save.classNames === undefined ? {} : { names: save.classNames }) },
    input: { shape: student.sampleShape, dtype: 'float32', preprocessing: preprocessingOf(seen, save.u8Divisor, save.source) },
    architecture: p.model ?? job.model,
    training: {
      session: job.session, participant, algorithm: save.algorithm,
      role: distiller ? 'distiller (one global student, learnt from the ensemble only)' : p.role === 'teacher' ? `teacher (trained ${p.pretrainEpochs ?? job.epochs} epochs on its shard before round 1, never after)` : p.hostile ? 'hostile (simulated attack)' : 'participant', rounds: save.rounds,
      epochs: job.epochs, batchSize: job.batchSize, learningRate: job.learningRate, trainSamples: y.length,
      data: distiller
        ? { source: `the participants' ensemble on the reference set; ${save.source}`, hash: `sha256:${hash} (the reference set's features)` }
        : { source: save.source, hash: `sha256:${hash} (this participant's private samples)` },
      seed: p.seed,
    },
    metrics: heldOut === undefined ? {} : { heldOut },
    backend: tf.getBackend(),
  });
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
