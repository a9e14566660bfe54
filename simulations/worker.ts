/**
 * Simulated participants in one worker thread. The wasm backend is single-threaded, so
 * participants sharing a thread take turns; the simulation gives each worker its own event loop
 * and tfjs, and spreads participants over as many workers as asked (one each by default).
 */
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
  /** Sends adversarial uploads (the input's attack) instead of honest ones. */
  hostile: boolean;
}

export interface WorkerInput {
  url: string;
  session: string;
  backend?: string;
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
  | { type: 'ready'; backend: string }
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
  | { type: 'done'; index: number; endReason: string }
  | { type: 'error'; index: number; message: string };

async function runOne(input: WorkerInput, p: SimulatedParticipant, post: (m: WorkerOutput, t?: ArrayBuffer[]) => void): Promise<void> {
  try {
    const { sampleShape, numClasses } = p.train;
    const student = new Student(createModel({ name: input.model, inputShape: sampleShape, numClasses, seed: p.seed }), {
      sampleShape, numClasses, learningRate: input.learningRate, seed: p.seed,
    });
    const summary = await runParticipant({
      url: input.url,
      session: input.session,
      token: p.token,
      student,
      data: { train: p.train, reference: input.reference },
      evaluation: input.test,
      epochs: input.epochs,
      batchSize: input.batchSize,
      ...(p.hostile && input.attack !== undefined ? { uploadHook: attackHook(input.attack, p.seed) } : {}),
      ...(!p.hostile && input.privacy !== undefined ? { privacy: { ...input.privacy, seed: p.seed } } : {}),
      onRound: (r) => {
        const probs = r.evaluationProbs!;
        post({
          type: 'round', index: p.index, round: r.round, receivedTarget: r.receivedTarget, accuracy: r.accuracy!,
          testProbs: probs, loss: r.train.loss, trainMs: r.train.ms, numTensors: r.numTensors,
        }, [probs.buffer as ArrayBuffer]);
      },
    });
    student.dispose();
    post({ type: 'done', index: p.index, endReason: summary.endReason });
  } catch (error) {
    post({ type: 'error', index: p.index, message: error instanceof Error ? error.message : String(error) });
  }
}

async function main(input: WorkerInput): Promise<void> {
  const post = (message: WorkerOutput, transfer: ArrayBuffer[] = []) => parentPort!.postMessage(message, transfer);
  let backend: string;
  try {
    backend = await selectBackend(input.backend);
  } catch (error) {
    for (const p of input.participants) post({ type: 'error', index: p.index, message: (error as Error).message });
    return;
  }
  post({ type: 'ready', backend });
  await Promise.all(input.participants.map((p) => runOne(input, p, post)));
}

if (parentPort !== null) void main(workerData as WorkerInput);
