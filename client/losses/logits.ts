/**
 * The low-level logit terms, on tfjs tensors, which the named methods of this folder build on.
 *
 * Levels, as in torchdistill: `crossEntropy` and `kdLoss` are the terms; `distillationLoss` is
 * their weighted sum α·CE + (1 − α)·T²·KL, which `stackedDistillationLoss` computes in one pass
 * for a federated participant (the `peers` method, peers.ts). The details other libraries got wrong, pinned by
 * golden-value tests in test/client/losses.test.ts:
 *  - KL direction: KL(target ‖ student) = Σ_c q_c (log q_c − log p_c), with the target q first;
 *  - reduction: sum over classes, mean over the batch (not over N×C);
 *  - the T² factor, which keeps the soft term's gradient scale independent of T;
 *  - the target is a constant: no gradient flows into peers' predictions.
 */
import * as tf from '@tensorflow/tfjs';

/** Identity with a zero gradient, so a target built from tensors stays a constant. */
export const stopGradient = tf.customGrad((...inputs) => {
  const x = inputs[0] as tf.Tensor;
  return { value: x.clone(), gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy) };
}) as (x: tf.Tensor) => tf.Tensor;

/** softmax(z / T) row-wise: the "soft predictions" participants exchange. */
export function temperedSoftmax(logits: tf.Tensor2D, temperature: number): tf.Tensor2D {
  return tf.tidy(() => tf.softmax(tf.div(logits, temperature)) as tf.Tensor2D);
}

/** Cross-entropy with integer labels: −(1/N) Σ_n log softmax(z_n)[y_n]. */
export function crossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => {
    const oneHot = tf.oneHot(labels, logits.shape[1]);
    return tf.neg(tf.mean(tf.sum(tf.mul(oneHot, tf.logSoftmax(logits)), 1))) as tf.Scalar;
  });
}

/**
 * Knowledge-distillation loss of Hinton, Vinyals & Dean (2015), "Distilling the Knowledge in a
 * Neural Network", §2:  T² · (1/N) Σ_n KL(q_n ‖ softmax(z_n / T)),
 * where q is the target distribution (already at temperature T) and z the student's logits.
 * The entropy term Σ q log q does not depend on the student; it is kept so that the loss is the
 * true KL (zero when the student matches the target), with 0·log 0 taken as 0.
 */
export function kdLoss(studentLogits: tf.Tensor2D, target: tf.Tensor2D, temperature: number): tf.Scalar {
  return tf.tidy(() => {
    const q = stopGradient(target);
    const logP = tf.logSoftmax(tf.div(studentLogits, temperature));
    const qLogQ = tf.mul(q, tf.log(tf.maximum(q, 1e-30))); // q = 0 gives 0·log(1e-30) = 0
    const kl = tf.sum(tf.sub(qLogQ, tf.mul(q, logP)), 1);
    return tf.mul(tf.mean(kl), temperature * temperature) as tf.Scalar;
  });
}

/**
 * Logit matching by mean absolute error: (1/N) Σ_n (1/C) Σ_c |z_nc − t_nc|, FedMD's "digest"
 * step (Li & Wang 2019). The paper says only that each party trains "to approach the
 * consensus"; the authors' code compiles the model with Keras' mean_absolute_error on logits,
 * which is this. The target is a constant.
 */
export function logitMatchingLoss(studentLogits: tf.Tensor2D, targetLogits: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => tf.mean(tf.abs(tf.sub(studentLogits, stopGradient(targetLogits)))) as tf.Scalar);
}

export interface DistillationBatch {
  /** Student logits on a batch of private samples, and their labels. */
  privateLogits: tf.Tensor2D;
  labels: tf.Tensor1D;
  /** Student logits on a batch of reference samples, and the target for each; omitted without peers. */
  referenceLogits?: tf.Tensor2D;
  target?: tf.Tensor2D;
}

/**
 * The participant's loss: α·CE(y, student) + (1 − α)·T²·KL(target ‖ softmax(student/T)).
 * Without a target (no peers yet, or the local-only baseline) it is the task loss alone.
 */
export function distillationLoss(batch: DistillationBatch, alpha: number, temperature: number): tf.Scalar {
  return tf.tidy(() => {
    const task = crossEntropy(batch.privateLogits, batch.labels);
    if (batch.referenceLogits === undefined || batch.target === undefined) return task;
    const soft = kdLoss(batch.referenceLogits, batch.target, temperature);
    return tf.add(tf.mul(task, alpha), tf.mul(soft, 1 - alpha)) as tf.Scalar;
  });
}

/**
 * The participant's loss on one batch of rows, labeled and soft-target rows stacked, as one
 * weighted cross-entropy: with s_r = 1 on labeled rows and 1/T on soft ones,
 *   L = −Σ_r Σ_k W_rk · log softmax(s_r·z_r)_k + Σ_soft (1−α)T²/S · Σ_k q_rk log q_rk,
 * where W is α/P at each labeled row's label and (1−α)T²/S · q on soft rows (P labeled rows, S
 * soft). That is distillationLoss term for term (a soft batch alone is kdLoss, a labeled one
 * crossEntropy), computed from targets the step already holds in memory: one softmax instead of
 * two, and about half the kernels of the training step (test/client/losses.test.ts checks the
 * values and gradients against distillationLoss and kdLoss).
 */
export interface StackedTargets {
  /** [rows, 1]: 1 on labeled rows, 1/T on soft rows. */
  rowScale: Float32Array;
  /** [rows, classes]: the weights W above. */
  weights: Float32Array;
  /** Σ over soft rows of (1−α)T²/S · Σ_k q log q: the target's entropy term, which has no gradient. */
  constant: number;
}

/**
 * Fills the weights for P labeled rows (first) and S soft rows (after them), reusing `into`'s
 * buffers. With no soft rows the task loss has weight 1; with no labeled rows the KD term has.
 */
export function stackTargets(
  labels: ArrayLike<number>,
  probs: ArrayLike<number>,
  classes: number,
  alpha: number,
  temperature: number,
  into: StackedTargets,
): StackedTargets {
  const p = labels.length;
  const s = probs.length / classes;
  const taskWeight = s === 0 ? 1 : alpha;
  const softWeight = p === 0 ? 1 : 1 - alpha;
  const { rowScale, weights } = into;
  weights.fill(0, 0, (p + s) * classes);
  for (let r = 0; r < p; r++) {
    rowScale[r] = 1;
    weights[r * classes + labels[r]!] = taskWeight / p;
  }
  const w = (softWeight * temperature * temperature) / s;
  let constant = 0;
  for (let r = 0; r < s; r++) {
    rowScale[p + r] = 1 / temperature;
    for (let k = 0; k < classes; k++) {
      const q = probs[r * classes + k]!;
      weights[(p + r) * classes + k] = w * q;
      if (q > 0) constant += w * q * Math.log(q);
    }
  }
  into.constant = constant;
  return into;
}

/** L above, for logits [rows, classes] and targets from stackTargets. */
export function stackedDistillationLoss(logits: tf.Tensor2D, targets: { rowScale: tf.Tensor2D; weights: tf.Tensor2D; constant: number }): tf.Scalar {
  return tf.tidy(() => {
    const logP = tf.logSoftmax(tf.mul(logits, targets.rowScale));
    return tf.sub(targets.constant, tf.sum(tf.mul(targets.weights, logP))) as tf.Scalar;
  });
}
