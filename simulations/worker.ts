/**
 * One simulated participant in its own worker thread: the wasm backend is single-threaded, so
 * participants sharing a thread would take turns; here each gets its own event loop and tfjs.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { selectBackend } from '../client/backend.js';
import type { LabeledDataset } from '../client/data/dataset.js';
import { createModel, type ModelName } from '../client/models.js';
import { runParticipant } from '../client/participant.js';
import { Student } from '../client/student.js';

export interface WorkerInput {
  index: number;
  url: string;
  session: string;
  token: string;
  backend?: string;
  model: ModelName;
  seed: number;
  learningRate: number;
  epochs: number;
  batchSize: number;
  train: LabeledDataset;
  reference: Float32Array;
  test: LabeledDataset;
}

export type WorkerOutput =
  | { type: 'ready'; index: number; backend: string }
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

async function main(input: WorkerInput): Promise<void> {
  const post = (message: WorkerOutput, transfer: ArrayBuffer[] = []) => parentPort!.postMessage(message, transfer);
  try {
    const backend = await selectBackend(input.backend);
    post({ type: 'ready', index: input.index, backend });
    const { sampleShape, numClasses } = input.train;
    const student = new Student(createModel({ name: input.model, inputShape: sampleShape, numClasses, seed: input.seed }), {
      sampleShape, numClasses, learningRate: input.learningRate, seed: input.seed,
    });
    const summary = await runParticipant({
      url: input.url,
      session: input.session,
      token: input.token,
      student,
      data: { train: input.train, reference: input.reference },
      evaluation: input.test,
      epochs: input.epochs,
      batchSize: input.batchSize,
      onRound: (r) => {
        const probs = r.evaluationProbs!;
        post({
          type: 'round', index: input.index, round: r.round, receivedTarget: r.receivedTarget, accuracy: r.accuracy!,
          testProbs: probs, loss: r.train.loss, trainMs: r.train.ms, numTensors: r.numTensors,
        }, [probs.buffer as ArrayBuffer]);
      },
    });
    student.dispose();
    post({ type: 'done', index: input.index, endReason: summary.endReason });
  } catch (error) {
    post({ type: 'error', index: input.index, message: error instanceof Error ? error.message : String(error) });
  }
}

if (parentPort !== null) void main(workerData as WorkerInput);
