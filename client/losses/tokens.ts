/**
 * Per-token terms for language models. A model's logits [batch, positions, vocab] come here
 * flattened to [tokens, vocab] (tokens = batch·positions) with a mask [tokens] that is 0 on
 * padding; every term is a mean over the real tokens, so a batch's padding changes nothing.
 *
 *  - `tokenCrossEntropy`: teacher forcing, −(1/M) Σ_n m_n log softmax(z_n)[y_n], M = Σ_n m_n.
 *    Divided by ln 2 it is the text's bits per byte under a byte tokenizer.
 *  - `tokenKdLoss`: word-level KD (Kim & Rush 2016, §3.1; Hinton et al. 2015 at every position):
 *    T² · (1/M) Σ_n m_n KL(q_n ‖ softmax(z_n / T)), q_n the teacher's softmax at T.
 *    KL direction teacher ‖ student; sum over the vocabulary; mean over real tokens (not over
 *    tokens × vocab, not over sequences); the target a constant.
 *    With a top-k target's support S_n (the entries sent; protocol/sparse.ts) the remaining mass
 *    r_n = 1 − Σ_{j∈S_n} q_nj is unknown rather than even: the target outside S_n is completed
 *    with the student's own tempered distribution p_n, detached: q̃_nj = r_n · p_nj / Σ_{i∉S_n} p_ni
 *    (j ∉ S_n), q̃_nj = q_nj (j ∈ S_n) — the tail then carries no pull towards uniform, only the
 *    mass r_n (the sparse-KD completion, e.g. Raman et al. 2023, "For distillation, tokens are
 *    not all you need"; sparseTail: student).
 */
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { stopGradient, temperedSoftmax } from './logits.js';
import { NO_PARAMS, ParameterFreeMethod } from './parameter-free.js';
import { temperature } from './params.js';
import { DistillError, type LossInputs } from './types.js';

function maskedMean(perToken: tf.Tensor1D, mask: tf.Tensor1D): tf.Scalar {
  return tf.div(tf.sum(tf.mul(perToken, mask)), tf.maximum(tf.sum(mask), 1)) as tf.Scalar;
}

export function tokenCrossEntropy(logits: tf.Tensor2D, targets: tf.Tensor1D, mask: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => {
    const oneHot = tf.oneHot(targets, logits.shape[1]);
    return maskedMean(tf.neg(tf.sum(tf.mul(oneHot, tf.logSoftmax(logits)), 1)) as tf.Tensor1D, mask);
  });
}

/**
 * T² · (1/M) Σ_n m_n KL(q_n ‖ softmax(z_n/T)); `target` q is already at temperature T. With
 * `support` (1 on each row's entries sent top-k, 0 elsewhere) the target's values outside it are
 * ignored and its remaining mass is spread as the student's own detached distribution (above).
 */
export function tokenKdLoss(studentLogits: tf.Tensor2D, target: tf.Tensor2D, mask: tf.Tensor1D, temperature: number, support?: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => {
    const logP = tf.logSoftmax(tf.div(studentLogits, temperature));
    const q = support === undefined ? stopGradient(target) : studentTail(stopGradient(target) as tf.Tensor2D, support, stopGradient(tf.exp(logP)) as tf.Tensor2D);
    const qLogQ = tf.mul(q, tf.log(tf.maximum(q, 1e-30)));
    const kl = tf.sum(tf.sub(qLogQ, tf.mul(q, logP)), 1) as tf.Tensor1D;
    return tf.mul(maskedMean(kl, mask), temperature * temperature) as tf.Scalar;
  });
}

/** q on the support, r · p / Σ_{∉S} p off it, r = max(0, 1 − Σ_S q); p the student's detached distribution. */
function studentTail(target: tf.Tensor2D, support: tf.Tensor2D, p: tf.Tensor2D): tf.Tensor2D {
  const sent = tf.mul(target, support);
  const rest = tf.relu(tf.sub(1, tf.sum(sent, 1, true)));
  const outside = tf.mul(p, tf.sub(1, support));
  return tf.add(sent, tf.mul(outside, tf.div(rest, tf.maximum(tf.sum(outside, 1, true), 1e-30)))) as tf.Tensor2D;
}

function maskOf(inputs: LossInputs, name: string): tf.Tensor1D {
  if (inputs.tokenMask === undefined) throw new DistillError('E_CONFIG', `loss "${name}" is a per-token term: it needs the batch's token mask (a language model's step gives it)`);
  return inputs.tokenMask;
}

/** `token-ce`: the language-modelling loss on private text (teacher forcing). No params. */
export class TokenCrossEntropyMethod extends ParameterFreeMethod {
  constructor(params?: Record<string, unknown>) {
    super('token-ce', false, NO_PARAMS, params);
  }

  compute(inputs: LossInputs): tf.Scalar {
    return tokenCrossEntropy(inputs.student.logits, inputs.labels, maskOf(inputs, this.name));
  }
}

const kdSchema = z
  .object({
    temperature: temperature.default(2),
    /** Weight of the next-token cross-entropy on the text; the soft term gets 1 − alpha. */
    alpha: z.number().min(0).max(1).default(0),
  })
  .strict();

/** `token-kd`: word-level KD from a teacher LM, α·token-CE + (1 − α)·T²·masked-mean KL (above). */
export class TokenDistillationMethod extends ParameterFreeMethod<typeof kdSchema> {
  constructor(params?: Record<string, unknown>) {
    super('token-kd', true, kdSchema, params);
  }

  compute(inputs: LossInputs): tf.Scalar {
    if (inputs.teacher === undefined) throw new DistillError('E_CONFIG', 'loss "token-kd" needs a teacher');
    const mask = maskOf(inputs, this.name);
    const teacherLogits = inputs.teacher.logits;
    const { temperature: T, alpha } = this.params;
    return tf.tidy(() => {
      const soft = tokenKdLoss(inputs.student.logits, temperedSoftmax(teacherLogits, T), mask, T);
      if (alpha === 0) return soft;
      const task = tokenCrossEntropy(inputs.student.logits, inputs.labels, mask);
      return tf.add(tf.mul(task, alpha), tf.mul(soft, 1 - alpha)) as tf.Scalar;
    });
  }
}
