/**
 * The training and evaluation loops of local distillation: a student (and optionally a frozen
 * teacher) on typed-array data, descending a WeightedSumLoss with Adam.
 *
 * The teacher runs outside the gradient tape (its outputs are constants; the losses also pass
 * them through stopGradient) and in inference mode. When no loss term reads teacher features,
 * the teacher's logits are computed once for the whole training set instead of every batch.
 */
import * as tf from '@tensorflow/tfjs';
import { datasetSize, sampleLength, type LabeledDataset } from '../data/dataset.js';
import { SeededRandom } from '../data/random.js';
import { Adam } from '../optimizer.js';
import { DistillError, type LossInputs, type ModelOutputs, type WeightedSumLoss } from '../losses/index.js';
import type { FeatureModel } from '../models.js';

export interface FitOptions {
  epochs: number;
  batchSize: number;
  learningRate: number;
  /** Seeds the order of the samples in each epoch. */
  seed: number;
  /** A frozen teacher, for the terms that need one. */
  teacher?: FeatureModel;
  /**
   * The variables to train; default: the student's and the loss's own (FitNets' regressor).
   * Variables that the loss does not reach get no gradient and are left as they are.
   */
  variables?: tf.Variable[];
  /** Held-out data evaluated after each epoch, for progress reports only (never for selection). */
  monitor?: LabeledDataset;
  onEpoch?: (report: EpochReport) => void;
}

export interface EpochReport {
  epoch: number;
  epochs: number;
  /** Mean total loss over the epoch's samples. */
  loss: number;
  /** Mean of each unweighted term, by label. */
  parts: Record<string, number>;
  /** On the monitor set, when one is given. */
  errors?: number;
  accuracy?: number;
  seconds: number;
}

export interface Evaluation {
  /** Misclassified samples and the share classified correctly. */
  errors: number;
  accuracy: number;
  /** softmax(logits) per sample, [n, C]. */
  probs: Float32Array;
  /** ONE models: each branch's evaluation. */
  branches?: Array<{ errors: number; accuracy: number; probs: Float32Array }>;
}

const EVAL_BATCH = 500;

const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Rows [start, start + count) of x as a tensor of the model's input shape. */
function rows(x: Float32Array, start: number, count: number, sampleShape: number[]): tf.Tensor {
  const d = sampleShape.reduce((a, b) => a * b, 1);
  return tf.tensor(x.subarray(start * d, (start + count) * d), [count, ...sampleShape]);
}

/** Logits of `model` on every row of `data`, [n, C], in inference mode. */
export async function predictLogits(model: FeatureModel, data: LabeledDataset): Promise<Float32Array> {
  const n = datasetSize(data);
  const c = model.spec.numClasses;
  const out = new Float32Array(n * c);
  for (let start = 0; start < n; start += EVAL_BATCH) {
    const count = Math.min(EVAL_BATCH, n - start);
    const values = tf.tidy(() => model.forward(rows(data.x, start, count, data.sampleShape), false).logits.dataSync() as Float32Array);
    out.set(values, start * c);
    await yieldToEventLoop();
  }
  return out;
}

/** Errors and accuracy of `model` on `data` (and of each branch, for ONE), in inference mode. */
export async function evaluateModel(model: FeatureModel, data: LabeledDataset): Promise<Evaluation> {
  const n = datasetSize(data);
  const c = model.spec.numClasses;
  const probs = new Float32Array(n * c);
  const branchCount = model.spec.architecture.kind === 'one' ? model.spec.architecture.branches : 0;
  const branchProbs = Array.from({ length: branchCount }, () => new Float32Array(n * c));
  for (let start = 0; start < n; start += EVAL_BATCH) {
    const count = Math.min(EVAL_BATCH, n - start);
    tf.tidy(() => {
      const out = model.forward(rows(data.x, start, count, data.sampleShape), false);
      probs.set(tf.softmax(out.logits).dataSync() as Float32Array, start * c);
      out.branches?.forEach((z, b) => branchProbs[b]!.set(tf.softmax(z).dataSync() as Float32Array, start * c));
    });
    await yieldToEventLoop();
  }
  const score = (p: Float32Array) => {
    const errors = countErrors(p, data.y, c);
    return { errors, accuracy: n > 0 ? 1 - errors / n : Number.NaN, probs: p };
  };
  const result: Evaluation = score(probs);
  if (branchCount > 0) result.branches = branchProbs.map(score);
  return result;
}

/** Rows whose argmax differs from the label (ties go to the lower class index). */
export function countErrors(probs: Float32Array, labels: Int32Array, numClasses: number): number {
  let errors = 0;
  for (let i = 0; i < labels.length; i++) {
    let best = 0;
    for (let k = 1; k < numClasses; k++) if (probs[i * numClasses + k]! > probs[i * numClasses + best]!) best = k;
    if (best !== labels[i]) errors++;
  }
  return errors;
}

/** Mean of probability rows over several models: the ensemble's prediction. */
export function averageProbs(all: readonly Float32Array[]): Float32Array {
  if (all.length === 0) throw new DistillError('E_CONFIG', 'an ensemble needs at least one member');
  const out = new Float32Array(all[0]!.length);
  for (const p of all) for (let i = 0; i < out.length; i++) out[i]! += p[i]! / all.length;
  return out;
}

/**
 * Trains `student` on `data` for `options.epochs` passes with Adam, descending `loss`.
 * Returns one report per epoch.
 */
export async function fit(student: FeatureModel, loss: WeightedSumLoss, data: LabeledDataset, options: FitOptions): Promise<EpochReport[]> {
  const n = datasetSize(data);
  const d = sampleLength(data);
  const inputLength = student.spec.inputShape.reduce((a, b) => a * b, 1);
  if (d !== inputLength) throw new DistillError('E_SHAPE', `training data has ${d} features per sample; the student expects ${inputLength}`);
  if (n === 0) throw new DistillError('E_CONFIG', 'no training data');
  const { teacher } = options;
  if (loss.needsTeacher && teacher === undefined) {
    throw new DistillError('E_CONFIG', `the loss (${loss.terms.map((t) => t.label).join(' + ')}) needs a teacher and none was given`);
  }
  const c = student.spec.numClasses;
  const b = Math.min(options.batchSize, n);
  const sampleShape = student.spec.inputShape;
  const usesTeacher = teacher !== undefined && loss.needsTeacher;
  const teacherPerBatch = usesTeacher && loss.teacherFeatures.length > 0;
  const cachedTeacherLogits = usesTeacher && !teacherPerBatch ? await predictLogits(teacher!, data) : undefined;

  const xBuffer = new Float32Array(b * d);
  const yBuffer = new Int32Array(b);
  const tBuffer = new Float32Array(b * c);
  const gather = (indices: ArrayLike<number>) => {
    for (let k = 0; k < indices.length; k++) {
      const i = indices[k]!;
      xBuffer.set(data.x.subarray(i * d, (i + 1) * d), k * d);
      yBuffer[k] = data.y[i]!;
      if (cachedTeacherLogits !== undefined) tBuffer.set(cachedTeacherLogits.subarray(i * c, (i + 1) * c), k * c);
    }
    const count = indices.length;
    const x = tf.tensor(xBuffer.subarray(0, count * d), [count, ...sampleShape]);
    const labels = tf.tensor1d(yBuffer.subarray(0, count), 'int32');
    let teacherOutputs: ModelOutputs | undefined;
    if (teacherPerBatch) teacherOutputs = teacher!.forward(x, false);
    else if (cachedTeacherLogits !== undefined) teacherOutputs = { logits: tf.tensor2d(tBuffer.subarray(0, count * c), [count, c]), features: {} };
    return { x, labels, teacherOutputs };
  };

  // A probe batch lets terms with parameters of their own build them at the right shapes.
  tf.tidy(() => {
    const probe = gather(Array.from({ length: b }, (_, i) => i));
    loss.prepare({ student: student.forward(probe.x, false), teacher: probe.teacherOutputs, labels: probe.labels });
  });

  const variables = options.variables ?? [...student.trainableVariables(), ...loss.variables()];
  const optimizer = new Adam(options.learningRate);
  const random = new SeededRandom(options.seed);
  const order = Array.from({ length: n }, (_, i) => i);
  const reports: EpochReport[] = [];
  try {
    for (let epoch = 1; epoch <= options.epochs; epoch++) {
      const started = performance.now();
      random.shuffle(order);
      let lossSum = 0;
      const partSums: Record<string, number> = {};
      for (let start = 0; start < n; start += b) {
        const batch = order.slice(start, Math.min(start + b, n));
        const stepParts: Record<string, number> = {};
        const value = tf.tidy(() => {
          const { x, labels, teacherOutputs } = gather(batch);
          const cost = optimizer.minimize(
            () => {
              const inputs: LossInputs = { student: student.forward(x, true), teacher: teacherOutputs, labels };
              const { total, parts } = loss.evaluate(inputs);
              for (const [label, part] of Object.entries(parts)) stepParts[label] = part.dataSync()[0]!;
              return total;
            },
            variables,
          );
          return cost.dataSync()[0]!;
        });
        if (!Number.isFinite(value)) throw new Error(`training diverged: loss is ${value} at epoch ${epoch}, samples ${start}–${start + batch.length}`);
        lossSum += value * batch.length;
        for (const [label, v] of Object.entries(stepParts)) partSums[label] = (partSums[label] ?? 0) + v * batch.length;
      }
      // A NaN gradient need not show in the loss: the wasm backend's fused dense/conv + ReLU
      // kernels output 0 for NaN weights, so the network just looks dead. Check the weights.
      const broken = variables.find((v) => tf.tidy(() => tf.any(tf.logicalNot(tf.isFinite(v))).dataSync()[0] === 1));
      if (broken !== undefined) throw new Error(`training diverged: variable ${broken.name} holds NaN or ±Infinity after epoch ${epoch}`);
      const report: EpochReport = {
        epoch,
        epochs: options.epochs,
        loss: lossSum / n,
        parts: Object.fromEntries(Object.entries(partSums).map(([k, v]) => [k, v / n])),
        seconds: 0,
      };
      if (options.monitor !== undefined) {
        const evaluation = await evaluateModel(student, options.monitor);
        report.errors = evaluation.errors;
        report.accuracy = evaluation.accuracy;
      }
      report.seconds = (performance.now() - started) / 1000;
      reports.push(report);
      options.onEpoch?.(report);
      await yieldToEventLoop();
    }
  } finally {
    optimizer.dispose();
  }
  return reports;
}
