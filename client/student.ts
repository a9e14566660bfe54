/**
 * A participant's student: a tfjs model, its optimizer, and the loops that train it on typed
 * arrays (private data plus soft targets on reference samples) and read its soft predictions.
 */
import * as tf from '@tensorflow/tfjs';
import { datasetSize, sampleLength, type LabeledDataset } from './data/dataset.js';
import { SeededRandom } from './data/random.js';
import { distillationLoss, temperedSoftmax } from './losses.js';

export interface TrainOptions {
  epochs: number;
  batchSize: number;
  /** Weight of the task loss; the distillation term gets 1 − alpha. */
  alpha: number;
  temperature: number;
}

/** Reference samples with the target distribution the student should match on each. */
export interface SoftTargets {
  /** Features, row-major [count, ...sampleShape]. */
  x: Float32Array;
  /** Target probabilities, row-major [count, numClasses]. */
  probs: Float32Array;
}

export interface TrainResult {
  /** Mean training loss over the last epoch. */
  loss: number;
  steps: number;
  samples: number;
  ms: number;
}

export interface Evaluation {
  accuracy: number;
  /** softmax(logits) on every evaluated sample, [n, numClasses]. */
  probs: Float32Array;
}

const PREDICT_BATCH = 512;

/** Lets socket.io's heartbeats and messages through between training steps. */
const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

export class Student {
  readonly model: tf.LayersModel;
  readonly sampleShape: number[];
  readonly numClasses: number;
  private readonly optimizer: tf.Optimizer;
  private readonly variables: tf.Variable[];
  private readonly random: SeededRandom;

  constructor(model: tf.LayersModel, options: { sampleShape: number[]; numClasses: number; learningRate: number; seed: number }) {
    this.model = model;
    this.sampleShape = options.sampleShape;
    this.numClasses = options.numClasses;
    this.optimizer = tf.train.adam(options.learningRate);
    // Explicit: without a list, minimize() would take every trainable variable in the process,
    // including other students' when several share one (as in the tests).
    this.variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
    this.random = new SeededRandom(options.seed);
  }

  private get sampleSize(): number {
    return this.sampleShape.reduce((a, b) => a * b, 1);
  }

  /**
   * Trains for `options.epochs` passes over the private data. Each step takes a private batch
   * and, when soft targets are given, an equally sized batch of reference samples cycling
   * through them, and descends distillationLoss on both.
   */
  async train(data: LabeledDataset, soft: SoftTargets | undefined, options: TrainOptions): Promise<TrainResult> {
    const started = performance.now();
    const n = datasetSize(data);
    const d = sampleLength(data);
    if (d !== this.sampleSize) throw new Error(`training data has ${d} features per sample; the model expects ${this.sampleSize}`);
    const c = this.numClasses;
    const softCount = soft === undefined ? 0 : soft.probs.length / c;
    if (soft !== undefined && soft.x.length !== softCount * d) {
      throw new Error(`soft targets: ${soft.x.length / d} reference samples but ${softCount} target rows`);
    }
    const b = options.batchSize;
    const order = Array.from({ length: n }, (_, i) => i);
    const softOrder = Array.from({ length: softCount }, (_, i) => i);
    let softCursor = softCount;
    const xBuffer = new Float32Array(2 * b * d);
    const yBuffer = new Int32Array(b);
    const qBuffer = new Float32Array(b * c);
    let steps = 0;
    let lossSum = 0;
    let lossCount = 0;
    for (let epoch = 0; epoch < options.epochs; epoch++) {
      this.random.shuffle(order);
      lossSum = 0;
      lossCount = 0;
      for (let start = 0; start < n; start += b) {
        const pb = Math.min(b, n - start);
        for (let k = 0; k < pb; k++) {
          const i = order[start + k]!;
          xBuffer.set(data.x.subarray(i * d, (i + 1) * d), k * d);
          yBuffer[k] = data.y[i]!;
        }
        const sb = soft === undefined ? 0 : Math.min(pb, softCount);
        for (let k = 0; k < sb; k++) {
          if (softCursor === softCount) {
            this.random.shuffle(softOrder);
            softCursor = 0;
          }
          const j = softOrder[softCursor++]!;
          xBuffer.set(soft!.x.subarray(j * d, (j + 1) * d), (pb + k) * d);
          qBuffer.set(soft!.probs.subarray(j * c, (j + 1) * c), k * c);
        }
        const loss = tf.tidy(() => {
          const x = tf.tensor(xBuffer.subarray(0, (pb + sb) * d), [pb + sb, ...this.sampleShape]);
          const labels = tf.tensor1d(yBuffer.subarray(0, pb), 'int32');
          const target = sb > 0 ? tf.tensor2d(qBuffer.subarray(0, sb * c), [sb, c]) : undefined;
          const cost = this.optimizer.minimize(
            () => {
              // One forward pass over private and reference rows together, split afterwards.
              const logits = this.model.apply(x, { training: true }) as tf.Tensor2D;
              return distillationLoss(
                {
                  privateLogits: logits.slice([0, 0], [pb, c]),
                  labels,
                  referenceLogits: target === undefined ? undefined : logits.slice([pb, 0], [sb, c]),
                  target,
                },
                options.alpha,
                options.temperature,
              );
            },
            true,
            this.variables,
          );
          return cost!.dataSync()[0]!;
        });
        if (!Number.isFinite(loss)) throw new Error(`training diverged: loss is ${loss} at epoch ${epoch + 1}, step ${steps + 1}`);
        lossSum += loss * pb;
        lossCount += pb;
        steps++;
        await yieldToEventLoop();
      }
    }
    return { loss: lossCount > 0 ? lossSum / lossCount : Number.NaN, steps, samples: n * options.epochs, ms: performance.now() - started };
  }

  /** softmax(logits / T) for every row of x (row-major [count, ...sampleShape]), as [count, numClasses]. */
  async predict(x: Float32Array, temperature: number): Promise<Float32Array> {
    const d = this.sampleSize;
    const count = x.length / d;
    const out = new Float32Array(count * this.numClasses);
    for (let start = 0; start < count; start += PREDICT_BATCH) {
      const rows = Math.min(PREDICT_BATCH, count - start);
      const probs = tf.tidy(() => {
        const batch = tf.tensor(x.subarray(start * d, (start + rows) * d), [rows, ...this.sampleShape]);
        return temperedSoftmax(this.model.predict(batch) as tf.Tensor2D, temperature).dataSync() as Float32Array;
      });
      out.set(probs, start * this.numClasses);
      await yieldToEventLoop();
    }
    return out;
  }

  /** Accuracy (argmax against labels) and the probabilities at temperature 1. */
  async evaluate(data: LabeledDataset): Promise<Evaluation> {
    const probs = await this.predict(data.x, 1);
    return { accuracy: accuracyOf(probs, data.y, this.numClasses), probs };
  }

  dispose(): void {
    this.optimizer.dispose();
    this.model.dispose();
  }
}

/** Share of rows whose argmax equals the label. */
export function accuracyOf(probs: Float32Array, labels: Int32Array, numClasses: number): number {
  let correct = 0;
  for (let i = 0; i < labels.length; i++) {
    let best = 0;
    for (let k = 1; k < numClasses; k++) if (probs[i * numClasses + k]! > probs[i * numClasses + best]!) best = k;
    if (best === labels[i]) correct++;
  }
  return labels.length > 0 ? correct / labels.length : Number.NaN;
}
