/**
 * A participant's student: a tfjs model, its optimizer, its objective (a weighted sum of terms
 * from client/losses, PEER_OBJECTIVE by default), and the loops that train it on typed
 * arrays (private data, soft targets, consensus logits) and read its predictions and weights.
 */
import * as tf from '@tensorflow/tfjs';
import { datasetSize, sampleLength, type LabeledDataset } from './data/dataset.js';
import { SeededRandom } from './data/random.js';
import {
  DistillError,
  logitMatchingLoss,
  stackedDistillationLoss,
  stackTargets,
  temperedSoftmax,
  WeightedSumLoss,
  type ClassKnowledgeTensors,
  type LossTermConfig,
  type StackedTargets,
  type StackedTargetTensors,
} from './losses/index.js';
import { featureView, type FeatureModel } from './models.js';
import { Adam } from './optimizer.js';

/**
 * A participant's default objective: the `peers` term alone — α·CE on its private labels plus
 * (1 − α)·T²·KL towards the peers' target (client/losses/peers.ts).
 */
export const PEER_OBJECTIVE: readonly LossTermConfig[] = [{ name: 'peers', weight: 1 }];

export interface StudentOptions {
  sampleShape: number[];
  numClasses: number;
  learningRate: number;
  seed: number;
  /**
   * The local objective, a weighted sum of terms from client/losses's registry: `peers` once,
   * plus any terms on top — `kd` from a local teacher, `fitnets`, `at`, `nst` between the
   * student's features (conv1, pool1, dense1, … as client/models.ts names them) and the
   * teacher's, `ce`. Default PEER_OBJECTIVE.
   */
  objective?: readonly LossTermConfig[];
  /** A frozen local teacher, for the terms that read one. The caller owns (and disposes) it. */
  teacher?: FeatureModel;
}

export interface TrainOptions {
  epochs: number;
  batchSize: number;
  /** Weight of the task loss; the distillation term gets 1 − alpha. */
  alpha: number;
  temperature: number;
}

/** Samples with the target distribution the student should match on each. */
export interface SoftTargets {
  /** Features, row-major [count, ...sampleShape]. */
  x: Float32Array;
  /** Target probabilities, row-major [count, numClasses]. */
  probs: Float32Array;
}

/**
 * The round's global per-class knowledge (FedProto's prototypes, FedHKD's hyper-knowledge) and
 * the loss terms that read it: for this pass the objective becomes
 *   objectiveWeight · (the student's objective) + Σ terms,
 * each term on the labeled rows (client/losses/class-knowledge.ts).
 */
export interface ClassKnowledgeSource {
  /** [C, D]: each class's global mean representation, D = representationWidth. */
  representations: Float32Array;
  /** [C]: the samples behind each class's row; 0 marks a class no participant holds. */
  counts: readonly number[];
  /** [C, C]: each class's global mean soft prediction at `temperature` (FedHKD). */
  softPredictions?: Float32Array;
  temperature: number;
  terms: readonly LossTermConfig[];
  objectiveWeight: number;
}

/** What a training pass learns from: private labeled data, soft targets, or both; and per-class knowledge. */
export interface TrainingSources {
  labeled?: LabeledDataset;
  soft?: SoftTargets;
  classKnowledge?: ClassKnowledgeSource;
}

/** A pass's per-class knowledge as tensors, with the weighted sum of the terms that read it. */
interface ClassKnowledgePass {
  loss: WeightedSumLoss;
  tensors: ClassKnowledgeTensors;
  objectiveWeight: number;
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

/**
 * Lets socket.io's heartbeats and messages through between training steps: a macrotask, so that
 * I/O runs. Browsers have no setImmediate and clamp nested setTimeout(0) to 4 ms per step; a
 * MessageChannel message is a macrotask without the clamp.
 */
const yieldToEventLoop: () => Promise<void> =
  typeof setImmediate === 'function'
    ? () => new Promise<void>((resolve) => setImmediate(resolve))
    : (() => {
        const channel = new MessageChannel();
        const waiting: Array<() => void> = [];
        // This branch runs in browsers only; Node's typings describe its own MessagePort.
        (channel.port1 as unknown as { onmessage: () => void }).onmessage = () => waiting.shift()?.();
        return () => new Promise<void>((resolve) => {
          waiting.push(resolve);
          channel.port2.postMessage(null);
        });
      })();

export class Student {
  readonly model: tf.LayersModel;
  readonly sampleShape: number[];
  readonly numClasses: number;
  private readonly optimizer: Adam;
  private readonly variables: tf.Variable[];
  private readonly random: SeededRandom;
  /**
   * The objective's terms beyond `peers`, with the student's features and the teacher they read;
   * undefined for PEER_OBJECTIVE, whose step is the plain forward pass and the fused one-pass loss.
   */
  private readonly extra: { loss: WeightedSumLoss; features: FeatureModel; teacher?: FeatureModel; peersWeight: number; prepared: boolean } | undefined;
  /** The student's features for passes with per-class knowledge when the objective has none of its own (built on first use). */
  private knowledgeFeatures: FeatureModel | undefined;

  constructor(model: tf.LayersModel, options: StudentOptions) {
    this.model = model;
    this.sampleShape = options.sampleShape;
    this.numClasses = options.numClasses;
    this.optimizer = new Adam(options.learningRate);
    // Explicit: without a list, minimize() would take every trainable variable in the process,
    // including other students' when several share one (as in the tests).
    this.variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
    this.random = new SeededRandom(options.seed);
    this.extra = extraTerms(model, options);
  }

  /** Whether training runs codistill's fused Adam kernel (wasm) rather than tfjs's; known after the first step. */
  get fusedOptimizer(): boolean {
    return this.optimizer.fused;
  }

  get sampleSize(): number {
    return this.sampleShape.reduce((a, b) => a * b, 1);
  }

  /**
   * Trains for `options.epochs` passes over the labeled data (or over the soft targets when
   * there is no labeled data). With both, each step takes a labeled batch and an equally sized
   * batch of soft-target samples cycling through them, and descends the objective: its `peers`
   * term α·CE + (1 − α)·T²·KL(target ‖ softmax(z/T)) (with soft targets alone, the KD term
   * alone; client/losses/logits.ts, stackedDistillationLoss: distillationLoss in one pass), plus
   * the objective's other terms on the labeled rows.
   */
  async train(sources: TrainingSources, options: TrainOptions): Promise<TrainResult> {
    const { labeled, soft } = sources;
    const pass = sources.classKnowledge === undefined ? undefined : this.classKnowledgePass(sources.classKnowledge);
    try {
      return await this.trainPass(labeled, soft, pass, options);
    } finally {
      if (pass !== undefined) {
        pass.loss.dispose();
        tf.dispose([pass.tensors.representations, pass.tensors.present, ...(pass.tensors.softPredictions === undefined ? [] : [pass.tensors.softPredictions])]);
      }
    }
  }

  private async trainPass(labeled: LabeledDataset | undefined, soft: SoftTargets | undefined, pass: ClassKnowledgePass | undefined, options: TrainOptions): Promise<TrainResult> {
    const d = this.sampleSize;
    const c = this.numClasses;
    if (labeled !== undefined && sampleLength(labeled) !== d) {
      throw new Error(`training data has ${sampleLength(labeled)} features per sample; the model expects ${d}`);
    }
    const softCount = soft === undefined ? 0 : soft.probs.length / c;
    if (soft !== undefined && soft.x.length !== softCount * d) {
      throw new Error(`soft targets: ${soft.x.length / d} samples but ${softCount} target rows`);
    }
    const n = labeled === undefined ? softCount : datasetSize(labeled);
    const b = options.batchSize;
    const xBuffer = new Float32Array(2 * b * d);
    const yBuffer = new Int32Array(b);
    const qBuffer = new Float32Array(b * c);
    const stacked: StackedTargets = { rowScale: new Float32Array(2 * b), weights: new Float32Array(2 * b * c), constant: 0 };
    // Soft-target rows for each step, from their own shuffled cycle when labeled data drives the epoch.
    const softOrder = Array.from({ length: softCount }, (_, i) => i);
    let softCursor = softCount;
    const nextSoft = (): number => {
      if (softCursor === softCount) {
        this.random.shuffle(softOrder);
        softCursor = 0;
      }
      return softOrder[softCursor++]!;
    };

    return this.descend(n, options.epochs, b, (batch) => {
      let pb = 0;
      let softRows: number[];
      if (labeled === undefined) {
        softRows = batch;
      } else {
        pb = batch.length;
        batch.forEach((i, k) => {
          xBuffer.set(labeled.x.subarray(i * d, (i + 1) * d), k * d);
          yBuffer[k] = labeled.y[i]!;
        });
        softRows = Array.from({ length: Math.min(pb, softCount) }, nextSoft);
      }
      softRows.forEach((j, k) => {
        xBuffer.set(soft!.x.subarray(j * d, (j + 1) * d), (pb + k) * d);
        qBuffer.set(soft!.probs.subarray(j * c, (j + 1) * c), k * c);
      });
      const rows = pb + softRows.length;
      // Labeled and soft rows go through the model together, and the loss takes them in one pass.
      stackTargets(yBuffer.subarray(0, pb), qBuffer.subarray(0, softRows.length * c), c, options.alpha, options.temperature, stacked);
      const x = tf.tensor(xBuffer.subarray(0, rows * d), [rows, ...this.sampleShape]);
      const targets: StackedTargetTensors = {
        rowScale: tf.tensor2d(stacked.rowScale.subarray(0, rows), [rows, 1]),
        weights: tf.tensor2d(stacked.weights.subarray(0, rows * c), [rows, c]),
        constant: stacked.constant,
      };
      if (this.extra === undefined && pass === undefined) {
        // PEER_OBJECTIVE: the peers term is the whole loss (client/losses/peers.ts computes exactly this).
        return () => stackedDistillationLoss(this.model.apply(x, { training: true }) as tf.Tensor2D, targets);
      }
      return this.extraStep(x, yBuffer.subarray(0, pb), targets, pass);
    });
  }

  /**
   * A step of an objective with terms beyond `peers`: one forward pass of the stacked rows that
   * also returns the student's features; the peers term reads every row, the other terms the
   * labeled (private) rows, next to the teacher's outputs on them, computed here, off the tape.
   * A step without labeled rows (DS-FL's distillation on open data) has nothing for them: it
   * descends the peers term alone.
   */
  private extraStep(x: tf.Tensor, privateLabels: Int32Array, target: StackedTargetTensors, pass?: ClassKnowledgePass): () => tf.Scalar {
    const extra = this.extra;
    const features = this.featureModel();
    const teacher = extra?.teacher;
    const labeledRows = privateLabels.length;
    const labels = tf.tensor1d(privateLabels, 'int32');
    const privateX = labeledRows === 0 ? undefined : tf.slice(x, 0, labeledRows);
    const teacherOutputs = privateX === undefined || teacher === undefined ? undefined : teacher.forward(privateX, false);
    const onPrivateRows = (t: tf.Tensor) => (t.shape[0] === labeledRows ? t : tf.slice(t, 0, labeledRows));
    if (extra !== undefined && privateX !== undefined && !extra.prepared) {
      // Terms with parameters of their own (FitNets' regressor) build them from a first batch.
      extra.loss.prepare({ student: features.forward(privateX, false), teacher: teacherOutputs, labels });
      extra.prepared = true;
    }
    return () => {
      const outputs = features.forward(x, true);
      if (privateX === undefined) return tf.mul(stackedDistillationLoss(outputs.logits, target), extra?.peersWeight ?? 1) as tf.Scalar;
      const student = {
        logits: onPrivateRows(outputs.logits) as tf.Tensor2D,
        features: Object.fromEntries(Object.entries(outputs.features).map(([name, f]) => [name, onPrivateRows(f)])),
      };
      const inputs = { student, teacher: teacherOutputs, labels, peers: { logits: outputs.logits, target }, classKnowledge: pass?.tensors };
      const objective = extra === undefined ? stackedDistillationLoss(outputs.logits, target) : extra.loss.compute(inputs);
      if (pass === undefined) return objective;
      return tf.add(tf.mul(objective, pass.objectiveWeight), pass.loss.compute(inputs)) as tf.Scalar;
    };
  }

  /** The student's features (a featureView sharing its weights): the objective's, else one built once for class knowledge. */
  private featureModel(): FeatureModel {
    if (this.extra !== undefined) return this.extra.features;
    this.knowledgeFeatures ??= featureView(this.model, this.numClasses);
    return this.knowledgeFeatures;
  }

  /** The name of the feature that is the student's representation: the logits layer's input, the last of featureView's features. */
  private representationFeature(): string {
    const view = this.featureModel();
    const name = view.outputNames.at(-1)!;
    const shape = view.outputShapes[name]!;
    if (name === 'logits' || shape.length !== 1 || shape[0] !== this.representationWidth) {
      throw new Error(`this student has no flat penultimate layer to take as its representation (its last feature is ${name}, shape [${shape.join(',')}])`);
    }
    return name;
  }

  /** Values in the student's representation: the width of the input to its logits layer (128 for mlp, 64 for cnn). */
  get representationWidth(): number {
    const input = this.model.layers.at(-1)!.input as tf.SymbolicTensor;
    return input.shape.at(-1)!;
  }

  /** Each row's representation (the penultimate layer's output) and logits, in inference mode. */
  async representations(x: Float32Array): Promise<{ representations: Float32Array; logits: Float32Array }> {
    const view = this.featureModel();
    const name = this.representationFeature();
    const d = this.sampleSize;
    const D = this.representationWidth;
    const count = x.length / d;
    const representations = new Float32Array(count * D);
    const logits = new Float32Array(count * this.numClasses);
    for (let start = 0; start < count; start += PREDICT_BATCH) {
      const rows = Math.min(PREDICT_BATCH, count - start);
      const [f, z] = tf.tidy(() => {
        const outputs = view.forward(tf.tensor(x.subarray(start * d, (start + rows) * d), [rows, ...this.sampleShape]), false);
        return [outputs.features[name]!, outputs.logits];
      });
      representations.set(f.dataSync() as Float32Array, start * D);
      logits.set(z.dataSync() as Float32Array, start * this.numClasses);
      tf.dispose([f, z]);
      await yieldToEventLoop();
    }
    return { representations, logits };
  }

  /** The tensors of a pass with per-class knowledge, checked against the student, and its terms' weighted sum. */
  private classKnowledgePass(source: ClassKnowledgeSource): ClassKnowledgePass {
    const C = this.numClasses;
    const D = this.representationWidth;
    if (source.representations.length !== C * D || source.counts.length !== C) {
      throw new Error(`class knowledge: ${source.representations.length} representation values and ${source.counts.length} counts; this student needs [${C}, ${D}] and ${C}`);
    }
    if (source.softPredictions !== undefined && source.softPredictions.length !== C * C) {
      throw new Error(`class knowledge: ${source.softPredictions.length} soft-prediction values; this student needs [${C}, ${C}]`);
    }
    const feature = this.representationFeature();
    const loss = new WeightedSumLoss(source.terms);
    const head = this.model.layers.at(-1)!;
    return {
      loss,
      objectiveWeight: source.objectiveWeight,
      tensors: {
        representations: tf.tensor2d(source.representations, [C, D]),
        present: tf.tensor1d(source.counts.map((n) => (n > 0 ? 1 : 0))),
        softPredictions: source.softPredictions === undefined ? undefined : tf.tensor2d(source.softPredictions, [C, C]),
        temperature: source.temperature,
        feature,
        head: (representations) => head.apply(representations) as tf.Tensor2D,
      },
    };
  }

  /** Trains the logits on x towards target logits by mean absolute error (FedMD's digest). */
  async matchLogits(x: Float32Array, targetLogits: Float32Array, options: { epochs: number; batchSize: number }): Promise<TrainResult> {
    const d = this.sampleSize;
    const c = this.numClasses;
    const n = x.length / d;
    if (targetLogits.length !== n * c) throw new Error(`logit targets: ${n} samples but ${targetLogits.length / c} target rows`);
    const xBuffer = new Float32Array(options.batchSize * d);
    const tBuffer = new Float32Array(options.batchSize * c);
    return this.descend(n, options.epochs, options.batchSize, (batch) => {
      batch.forEach((i, k) => {
        xBuffer.set(x.subarray(i * d, (i + 1) * d), k * d);
        tBuffer.set(targetLogits.subarray(i * c, (i + 1) * c), k * c);
      });
      const xs = tf.tensor(xBuffer.subarray(0, batch.length * d), [batch.length, ...this.sampleShape]);
      const target = tf.tensor2d(tBuffer.subarray(0, batch.length * c), [batch.length, c]);
      return () => logitMatchingLoss(this.model.apply(xs, { training: true }) as tf.Tensor2D, target);
    });
  }

  /**
   * The shared loop: `epochs` shuffled passes over n rows in batches; `prepare` fills a batch's
   * input tensors (inside a tidy) and returns the loss function to descend.
   */
  private async descend(n: number, epochs: number, batchSize: number, prepare: (batch: number[]) => () => tf.Scalar): Promise<TrainResult> {
    const started = performance.now();
    const order = Array.from({ length: n }, (_, i) => i);
    let steps = 0;
    let lossSum = 0;
    let lossCount = 0;
    for (let epoch = 0; epoch < epochs; epoch++) {
      this.random.shuffle(order);
      lossSum = 0;
      lossCount = 0;
      for (let start = 0; start < n; start += batchSize) {
        const batch = order.slice(start, start + batchSize);
        const loss = tf.tidy(() => {
          const f = prepare(batch);
          // The objective's own parameters (FitNets' regressor) exist once `prepare` has run.
          const variables = this.extra === undefined ? this.variables : [...this.variables, ...this.extra.loss.variables()];
          return this.optimizer.minimize(f, variables).dataSync()[0]!;
        });
        if (!Number.isFinite(loss)) throw new Error(`training diverged: loss is ${loss} at epoch ${epoch + 1}, step ${steps + 1}`);
        lossSum += loss * batch.length;
        lossCount += batch.length;
        steps++;
        await yieldToEventLoop();
      }
    }
    return { loss: lossCount > 0 ? lossSum / lossCount : Number.NaN, steps, samples: n * epochs, ms: performance.now() - started };
  }

  /** The model's logits for every row of x (row-major [count, ...sampleShape]), as [count, numClasses]. */
  async logits(x: Float32Array): Promise<Float32Array> {
    return this.forward(x, (z) => z);
  }

  /** softmax(logits / T) for every row of x, as [count, numClasses]. */
  async predict(x: Float32Array, temperature: number): Promise<Float32Array> {
    return this.forward(x, (z) => temperedSoftmax(z, temperature));
  }

  private async forward(x: Float32Array, head: (logits: tf.Tensor2D) => tf.Tensor2D): Promise<Float32Array> {
    const d = this.sampleSize;
    const count = x.length / d;
    const out = new Float32Array(count * this.numClasses);
    for (let start = 0; start < count; start += PREDICT_BATCH) {
      const rows = Math.min(PREDICT_BATCH, count - start);
      const result = tf.tidy(() => {
        const batch = tf.tensor(x.subarray(start * d, (start + rows) * d), [rows, ...this.sampleShape]);
        // One batch of `rows`: predict() would otherwise cut it into its default batches of 32,
        // which halves the CNN's speed on wasm (bench/RESULTS.md, prediction).
        return head(this.model.predict(batch, { batchSize: rows }) as tf.Tensor2D);
      });
      // Read outside the tidy: tf.tidy walks a returned typed array element by element looking
      // for tensors, which costs more than the forward pass of a small model.
      out.set(result.dataSync() as Float32Array, start * this.numClasses);
      result.dispose();
      await yieldToEventLoop();
    }
    return out;
  }

  /** Accuracy (argmax against labels) and the probabilities at temperature 1. */
  async evaluate(data: LabeledDataset): Promise<Evaluation> {
    const probs = await this.predict(data.x, 1);
    return { accuracy: accuracyOf(probs, data.y, this.numClasses), probs };
  }

  /** Every weight of the model, flattened in layer order. */
  getWeights(): Float32Array {
    const weights = this.model.getWeights();
    const flat = new Float32Array(weights.reduce((a, w) => a + w.size, 0));
    let offset = 0;
    for (const w of weights) {
      flat.set(w.dataSync() as Float32Array, offset);
      offset += w.size;
    }
    return flat;
  }

  /** Replaces every weight from a flat vector in getWeights() order. */
  setWeights(flat: Float32Array): void {
    const current = this.model.getWeights();
    const total = current.reduce((a, w) => a + w.size, 0);
    if (flat.length !== total) throw new Error(`weights: got ${flat.length} parameters; the model has ${total}`);
    let offset = 0;
    const next = current.map((w) => {
      const t = tf.tensor(flat.subarray(offset, offset + w.size), w.shape);
      offset += w.size;
      return t;
    });
    this.model.setWeights(next);
    tf.dispose(next);
  }

  dispose(): void {
    this.optimizer.dispose();
    this.extra?.loss.dispose();
    this.extra?.features.dispose();
    this.knowledgeFeatures?.dispose();
    this.model.dispose();
  }
}

/** The objective's terms beyond PEER_OBJECTIVE, checked; undefined for PEER_OBJECTIVE itself. */
function extraTerms(model: tf.LayersModel, options: StudentOptions): Student['extra'] {
  const objective = options.objective ?? PEER_OBJECTIVE;
  const peers = objective.filter((term) => term.name === 'peers');
  if (peers.length !== 1) {
    const names = objective.map((term) => term.name).join(' + ') || 'no terms';
    throw new DistillError('E_CONFIG', `a participant's objective needs the "peers" term (its task loss and the distillation towards its peers) exactly once; got ${names}`);
  }
  if (objective.length === 1 && peers[0]!.weight === 1 && peers[0]!.params === undefined) return undefined;
  const loss = new WeightedSumLoss(objective);
  if (loss.needsTeacher && options.teacher === undefined) {
    loss.dispose();
    throw new DistillError('E_CONFIG', `the objective (${loss.terms.map((t) => t.label).join(' + ')}) needs a local teacher and none was given`);
  }
  return { loss, features: featureView(model, options.numClasses), teacher: options.teacher, peersWeight: peers[0]!.weight, prepared: false };
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
