/**
 * FedProto (Tan et al. 2022, Algorithm 1), a participant's round in the paper's order: train on the
 * private data towards the global prototypes of the previous round, then upload this round's
 * prototypes — per class held, the mean representation (the penultimate layer's output, in
 * inference mode) over the private data, with the per-class counts. The objective is
 *   α · CE(y, z) + (1 − α) · (1/(N·D)) Σ_n ‖f(x_n) − p̄_{y_n}‖²
 * (client/losses/class-knowledge.ts, `prototypes`), the paper's CE + λ·regulariser with
 * λ = (1 − α)/α — α = 0.5 is the authors' λ = 1 — and the first round (no global prototypes yet)
 * CE alone, as in their code. Every participant starts from the same weights (sharedInitialisation).
 * The student classifies with its own head; the prototypes only shape
 * its representation (the paper's nearest-prototype inference is not what the rounds report).
 */
import * as tf from '@tensorflow/tfjs';
import type { LossTermConfig } from '../losses/index.js';
import type { Student, TrainResult } from '../student.js';
import { trainOptions, type RoundContext, type SyncProcedure, type Target } from './procedure.js';

export const fedproto = (): SyncProcedure => classKnowledgeProcedure(false);

/**
 * The shape of FedProto's and FedHKD's rounds, which differ only in what a class row holds
 * (`withSoftPredictions`: FedHKD's soft prediction after the representation) and in the terms
 * trained towards it.
 */
export function classKnowledgeProcedure(withSoftPredictions: boolean): SyncProcedure {
  let previous: Target | null = null;
  let lastTraining: TrainResult | undefined;
  let initialised = false;
  return {
    mode: 'sync',
    async share(context) {
      if (!initialised) sharedInitialisation(context.student, context.info.session);
      initialised = true;
      lastTraining = await train(context, previous, withSoftPredictions);
      return classRows(context, withSoftPredictions);
    },
    async learn(_context, target) {
      previous = target;
      const trained = lastTraining ?? { loss: Number.NaN, steps: 0, samples: 0, ms: 0 };
      lastTraining = undefined;
      return trained;
    },
  };
}

/**
 * Every participant's student starts from the same weights, drawn from a seed every site derives
 * from the session's id: kernels Glorot-uniform, biases zero (createModel's initialisers). Both
 * methods assume it — the authors' code gives every client a copy of one initial model
 * (FedProto's local_model_list, FedHKD's copy.deepcopy(global_model)) — because a prototype is a
 * point in one network's representation space: averaged over networks started apart, the spaces
 * are unrelated and the mean means nothing. It costs no bytes. (Participants with different
 * architectures keep different weights; their prototypes then meet only through the regulariser.)
 */
export function sharedInitialisation(student: Student, session: string): void {
  // FNV-1a of the session id: the same seed at every site.
  let seed = 0x811c9dc5;
  for (let i = 0; i < session.length; i++) seed = Math.imul(seed ^ session.charCodeAt(i), 0x01000193) >>> 0;
  const weights = student.model.getWeights().map((w) => (w.rank === 1 ? tf.zeros(w.shape) : tf.initializers.glorotUniform({ seed: seed++ }).apply(w.shape)));
  student.model.setWeights(weights);
  tf.dispose(weights);
}

/** One pass over the private data, towards the previous round's global class knowledge when there is one. */
function train(context: RoundContext, target: Target | null, withSoftPredictions: boolean): Promise<TrainResult> {
  const { student, info } = context;
  const labeled = context.data.train;
  if (target === null || target.counts === undefined) return student.train({ labeled }, trainOptions(context, 1));
  const C = info.numClasses;
  const D = student.representationWidth;
  const width = D + (withSoftPredictions ? C : 0);
  const representations = new Float32Array(C * D);
  const softPredictions = withSoftPredictions ? new Float32Array(C * C) : undefined;
  for (let c = 0; c < C; c++) {
    const row = target.values.subarray(c * width, (c + 1) * width);
    representations.set(row.subarray(0, D), c * D);
    softPredictions?.set(row.subarray(D), c * C);
  }
  const weight = 1 - info.alpha;
  // FedHKD: λ·hyper-knowledge + γ·prototypes with λ = γ, as the authors' defaults have them.
  const terms: LossTermConfig[] = withSoftPredictions
    ? [{ name: 'hyper-knowledge', weight }, { name: 'prototypes', weight }]
    : [{ name: 'prototypes', weight }];
  return student.train(
    { labeled, classKnowledge: { representations, counts: target.counts, softPredictions, temperature: info.temperature, terms, objectiveWeight: info.alpha } },
    trainOptions(context, 1),
  );
}

/** Per class held: the mean representation (then, for FedHKD, the mean softmax(z/T)); zeros and count 0 elsewhere. */
async function classRows(context: RoundContext, withSoftPredictions: boolean) {
  const { student, info } = context;
  const { x, y } = context.data.train;
  const C = info.numClasses;
  const T = info.temperature;
  const D = student.representationWidth;
  const width = D + (withSoftPredictions ? C : 0);
  const { representations, logits } = await student.representations(x);
  const sums = new Float64Array(C * width);
  const labelCounts = new Array<number>(C).fill(0);
  const soft = new Float64Array(C);
  for (let i = 0; i < y.length; i++) {
    const c = y[i]!;
    labelCounts[c]!++;
    const row = c * width;
    for (let j = 0; j < D; j++) sums[row + j]! += representations[i * D + j]!;
    if (!withSoftPredictions) continue;
    // softmax(z_i / T), max-subtracted.
    let max = -Infinity;
    for (let k = 0; k < C; k++) max = Math.max(max, logits[i * C + k]! / T);
    let total = 0;
    for (let k = 0; k < C; k++) total += soft[k] = Math.exp(logits[i * C + k]! / T - max);
    for (let k = 0; k < C; k++) sums[row + D + k]! += soft[k]! / total;
  }
  const values = new Float32Array(C * width);
  for (let c = 0; c < C; c++) {
    const n = labelCounts[c]!;
    if (n > 0) for (let j = 0; j < width; j++) values[c * width + j] = sums[c * width + j]! / n;
  }
  return { values, shape: [C, width], labelCounts, sampleCount: y.length };
}
