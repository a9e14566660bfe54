/**
 * Training and evaluating language models: teacher forcing on token sequences with the
 * client's loss registry (`token-ce`, `token-kd`: client/losses/tokens.ts), and bits per byte.
 */
import * as tf from '@tensorflow/tfjs';
import type { TokenSequences } from '../data/text-sequences.js';
import { SeededRandom } from '../data/random.js';
import { WeightedSumLoss, type LossTermConfig, type LossInputs } from '../losses/index.js';
import { Adam } from '../optimizer.js';
import type { LanguageModel } from './model.js';

export interface LmTrainOptions {
  steps: number;
  batchSize: number;
  learningRate: number;
  seed: number;
  /** Weighted sum of loss terms, e.g. [{ name: 'token-ce', weight: 1 }] or [{ name: 'token-kd', weight: 1, params: { temperature: 2 } }]. */
  loss: readonly LossTermConfig[];
  /** Needed by terms that read a teacher (token-kd); its logits are constants. */
  teacher?: LanguageModel;
  /** Called every `progressEvery` steps (and at the last) with the mean loss since the previous call. */
  onProgress?: (step: number, meanLoss: number) => void;
  progressEvery?: number;
}

function batchTensors(data: TokenSequences, rows: number[]) {
  const c = data.context;
  const n = rows.length;
  const inputs = new Int32Array(n * c);
  const targets = new Int32Array(n * c);
  const mask = new Float32Array(n * c);
  rows.forEach((r, i) => {
    inputs.set(data.inputs.subarray(r * c, (r + 1) * c), i * c);
    targets.set(data.targets.subarray(r * c, (r + 1) * c), i * c);
    mask.set(data.mask.subarray(r * c, (r + 1) * c), i * c);
  });
  return {
    inputs: tf.tensor2d(inputs, [n, c], 'int32'),
    targets: tf.tensor1d(targets, 'int32'),
    mask: tf.tensor1d(mask, 'float32'),
  };
}

const flat = (logits: tf.Tensor3D) => tf.reshape(logits, [-1, logits.shape[2]]) as tf.Tensor2D;

/** Trains `model` in place for `steps` Adam steps on random batches of `data`; returns each step's loss. */
export function trainLanguageModel(model: LanguageModel, data: TokenSequences, options: LmTrainOptions): number[] {
  const steps = trainingSteps(model, data, options);
  let next = steps.next();
  while (next.done !== true) next = steps.next();
  return next.value;
}

/**
 * The same training, giving the event loop a turn between steps: a site that trains in a process
 * it shares with the coordinator and the other sites (simulations) must still answer heartbeats.
 */
export async function trainLanguageModelYielding(model: LanguageModel, data: TokenSequences, options: LmTrainOptions): Promise<number[]> {
  const steps = trainingSteps(model, data, options);
  let next = steps.next();
  while (next.done !== true) {
    await new Promise((resolve) => setTimeout(resolve, 0));
    next = steps.next();
  }
  return next.value;
}

/** Only `model.variables` train (for a LoRA model: its adapters). Yields after each step. */
function* trainingSteps(model: LanguageModel, data: TokenSequences, options: LmTrainOptions): Generator<void, number[]> {
  if (data.count === 0) throw new Error('E_DATA: no training sequences');
  const loss = new WeightedSumLoss(options.loss);
  if (loss.needsTeacher && options.teacher === undefined) throw new Error(`E_CONFIG: the loss ${options.loss.map((t) => t.name).join(' + ')} needs a teacher model`);
  if (options.teacher !== undefined && options.teacher.spec.vocab !== model.spec.vocab) {
    throw new Error(`E_TOKENIZER: the teacher's vocabulary (${options.teacher.spec.vocab}) is not the student's (${model.spec.vocab})`);
  }
  const optimizer = new Adam(options.learningRate);
  const random = new SeededRandom(options.seed);
  const losses: number[] = [];
  const every = options.progressEvery ?? 50;
  let sinceReport = 0;
  for (let step = 1; step <= options.steps; step++) {
    const rows = Array.from({ length: options.batchSize }, () => random.int(data.count));
    const batch = batchTensors(data, rows);
    const teacherLogits = options.teacher === undefined || !loss.needsTeacher ? undefined : tf.tidy(() => flat(options.teacher!.logits(batch.inputs)));
    const value = optimizer.minimize(() => {
      const inputs: LossInputs = {
        student: { logits: flat(model.logits(batch.inputs)), features: {} },
        labels: batch.targets,
        tokenMask: batch.mask,
        ...(teacherLogits === undefined ? {} : { teacher: { logits: teacherLogits, features: {} } }),
      };
      return loss.compute(inputs);
    }, model.variables);
    const v = value.dataSync()[0]!;
    tf.dispose([value, batch.inputs, batch.targets, batch.mask, ...(teacherLogits === undefined ? [] : [teacherLogits])]);
    if (!Number.isFinite(v)) throw new Error(`E_DIVERGED: the loss is ${v} at step ${step}; lower the learning rate`);
    losses.push(v);
    sinceReport++;
    if (options.onProgress !== undefined && (step % every === 0 || step === options.steps)) {
      options.onProgress(step, losses.slice(-sinceReport).reduce((a, b) => a + b, 0) / sinceReport);
      sinceReport = 0;
    }
    if (step < options.steps) yield;
  }
  optimizer.dispose();
  loss.dispose();
  return losses;
}

/**
 * Bits per byte of the text in `data`: Σ over real tokens of −log₂ p(next byte), divided by the
 * bytes (every byte is a target once: data/text.ts toSequences).
 */
export function bitsPerByte(model: LanguageModel, data: TokenSequences, batchSize = 64): number {
  let nats = 0;
  for (let start = 0; start < data.count; start += batchSize) {
    const rows = Array.from({ length: Math.min(batchSize, data.count - start) }, (_, i) => start + i);
    const batch = batchTensors(data, rows);
    const sum = tf.tidy(() => {
      const logits = flat(model.logits(batch.inputs));
      const picked = tf.sum(tf.mul(tf.oneHot(batch.targets, logits.shape[1]), tf.logSoftmax(logits)), 1);
      return tf.neg(tf.sum(tf.mul(picked, batch.mask)));
    });
    nats += sum.dataSync()[0]!;
    tf.dispose([sum, batch.inputs, batch.targets, batch.mask]);
  }
  return nats / Math.LN2 / data.bytes;
}
