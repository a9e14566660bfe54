/**
 * Low-level terms of the feature-based methods, on tfjs tensors. The logit-level terms
 * (cross-entropy, Hinton's KD) live in logits.ts and are reused from there, not copied.
 *
 * Conventions shared by every term here, pinned by test/client/distill-losses.test.ts:
 *  - feature maps are NHWC, [N, H, W, C], as tfjs layers produce them;
 *  - the teacher's side is a constant: it passes through stopGradient, so no gradient reaches it
 *    even when a caller builds it from tensors on the tape;
 *  - reduction is a mean over the batch N of a per-sample quantity, unless a term says otherwise.
 */
import * as tf from '@tensorflow/tfjs';
import { stopGradient } from './logits.js';
import { DistillError } from './types.js';

/** ε of torch.nn.functional.normalize, which the AT and NST reference code use. */
const NORMALIZE_EPSILON = 1e-12;

/**
 * ‖x‖₂ along the last axis, floored at ε, with a finite gradient everywhere: √max(Σx², ε²).
 * max(√Σx², ε) has the same value, but √ has an infinite derivative at 0, and ∞ · 0 = NaN
 * reaches the weights whenever a vector is exactly zero — a dead ReLU channel, or a student
 * that matches its teacher exactly.
 */
function flooredNorm(x: tf.Tensor, epsilon: number, keepDims: boolean): tf.Tensor {
  return tf.sqrt(tf.maximum(tf.sum(tf.square(x), -1, keepDims), epsilon * epsilon));
}

/** x / max(‖x‖₂, ε) along the last axis (an all-zero x stays zero, with a finite gradient). */
export function l2Normalize(x: tf.Tensor, epsilon = NORMALIZE_EPSILON): tf.Tensor {
  return tf.tidy(() => tf.div(x, flooredNorm(x, epsilon, true)));
}

function expectRank4(what: string, t: tf.Tensor): asserts t is tf.Tensor4D {
  if (t.rank !== 4) {
    throw new DistillError('E_SHAPE', `${what} must be a feature map [N, H, W, C]; got shape [${t.shape.join(', ')}]`);
  }
}

/**
 * FitNets hint loss, Romero et al. (2015), "FitNets: Hints for Thin Deep Nets", eq. (3):
 *   L_HT = ½ ‖u_h(x) − r(v_g(x))‖²,
 * per sample, averaged over the batch: ½ · (1/N) Σ_n Σ_k (u_nk − r_nk)², where u_h is the
 * teacher's hint layer and r(v_g) the regressor applied to the student's guided layer
 * (`regressed`). Any shape [N, …].
 *
 * Paper vs code: RepDistiller's HintLoss (and torchdistill's FitNets configs) use
 * nn.MSELoss(), the mean over all N·D elements, i.e. (2/D)·L_HT for D values per sample; a
 * weight absorbs the difference, but weights are not portable between the two conventions.
 */
export function hintLoss(regressed: tf.Tensor, hint: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    if (!tf.util.arraysEqual(regressed.shape, hint.shape)) {
      throw new DistillError('E_SHAPE', `hint: regressed student features [${regressed.shape.join(', ')}] do not match the teacher's hint [${hint.shape.join(', ')}]`);
    }
    const n = regressed.shape[0]!;
    const diff = tf.sub(regressed, stopGradient(hint));
    return tf.mul(tf.sum(tf.square(diff)), 0.5 / n) as tf.Scalar;
  });
}

/**
 * Activation-based spatial attention map, Zagoruyko & Komodakis (2017), "Paying More Attention
 * to Attention", §3.1: F_sum^p(A) = Σ_c |A_c|^p over the C channels of an activation
 * A ∈ R^{C×H×W}, flattened to [N, H·W]. Not normalised (attentionTransferLoss normalises).
 */
export function attentionMap(features: tf.Tensor, p = 2): tf.Tensor2D {
  expectRank4('attention map input', features);
  return tf.tidy(() => {
    const [n, h, w] = features.shape;
    // p = 2 is the paper's choice and the code's x.pow(2); |·| only matters for other p.
    const powered = p === 2 ? tf.square(features) : tf.pow(tf.abs(features), p);
    return tf.reshape(tf.sum(powered, 3), [n, h * w]) as tf.Tensor2D;
  });
}

/** How attentionTransferLoss measures the distance between normalised attention maps. */
export type AttentionDistance = 'paper' | 'code';

/**
 * Attention transfer, Zagoruyko & Komodakis (2017), eq. (2), for one student/teacher pair:
 *   (1/N) Σ_n ‖ Q_S/‖Q_S‖₂ − Q_T/‖Q_T‖₂ ‖₂,   Q = vec(F_sum^p(A)),
 * the L2 distance (not squared) between L2-normalised attention maps, averaged over the batch.
 * The paper writes β/2 · Σ_j over pairs j; the weight of the term carries β/2.
 *
 * Paper vs the authors' code (szagoruyko/attention-transfer, utils.py):
 *   at(x) = F.normalize(x.pow(2).mean(1).view(N, −1));  at_loss = (at(x) − at(y)).pow(2).mean()
 *  1. mean over channels instead of the sum: the same after normalisation;
 *  2. the *squared* distance, where the paper has the norm itself;
 *  3. .mean() over N·H·W elements, so the value is divided by H·W as well as N — the paper's
 *     remark that β = 10³ is "divided by the number of elements in the attention map and the
 *     batch size" describes this scaling; their training script then uses β/2 · Σ_j with β = 10³.
 * `distance: 'code'` computes the code's value, (1/(N·H·W)) Σ_n ‖q̂_S − q̂_T‖², for comparisons.
 */
export function attentionTransferLoss(student: tf.Tensor, teacher: tf.Tensor, p = 2, distance: AttentionDistance = 'paper'): tf.Scalar {
  expectRank4('AT student features', student);
  expectRank4('AT teacher features', teacher);
  return tf.tidy(() => {
    const [n, h, w] = student.shape;
    const [tn, th, tw] = teacher.shape;
    if (n !== tn || h !== th || w !== tw) {
      throw new DistillError('E_SHAPE', `AT needs attention maps of one size: student [${student.shape.join(', ')}], teacher [${teacher.shape.join(', ')}] (channels may differ, N, H and W may not)`);
    }
    const qs = l2Normalize(attentionMap(student, p));
    const qt = l2Normalize(attentionMap(stopGradient(teacher), p));
    const diff = tf.sub(qs, qt);
    if (distance === 'code') return tf.mean(tf.square(diff)) as tf.Scalar;
    return tf.mean(flooredNorm(diff, NORMALIZE_EPSILON, false)) as tf.Scalar;
  });
}

/**
 * The per-channel "neuron selectivity" vectors of Huang & Wang (2017), "Like What You Like:
 * Knowledge Distill via Neuron Selectivity Transfer", §3: F ∈ R^{C×HW}, each row f^k (one
 * channel's activations over all positions) divided by its L2 norm. [N, H, W, C] → [N, C, H·W].
 */
export function selectivityVectors(features: tf.Tensor): tf.Tensor3D {
  expectRank4('NST input', features);
  return tf.tidy(() => {
    const [n, h, w, c] = features.shape;
    const rows = tf.transpose(tf.reshape(features, [n, h * w, c]), [0, 2, 1]);
    return l2Normalize(rows) as tf.Tensor3D;
  });
}

/** Polynomial kernel k(x, y) = (xᵀy + c)^d between the rows of a [N, A, D] and b [N, B, D]: [N, A, B]. */
export function polynomialKernel(a: tf.Tensor3D, b: tf.Tensor3D, degree = 2, c = 0): tf.Tensor3D {
  return tf.tidy(() => {
    const dot = tf.add(tf.matMul(a, tf.transpose(b, [0, 2, 1])), c);
    return (degree === 2 ? tf.square(dot) : tf.pow(dot, degree)) as tf.Tensor3D;
  });
}

/**
 * Neuron selectivity transfer, Huang & Wang (2017), eq. (5)-(7), for one student/teacher pair:
 * the squared MMD between the sets of the teacher's and the student's normalised channel
 * vectors {f_T^i}, {f_S^j}, with the polynomial kernel (d = 2, c = 0 in the paper's main results):
 *   MMD² = (1/C_T²) Σ_i Σ_i' k(f_T^i, f_T^i') + (1/C_S²) Σ_j Σ_j' k(f_S^j, f_S^j')
 *          − (2/(C_T C_S)) Σ_i Σ_j k(f_S^j, f_T^i),
 * averaged over the batch. C_S and C_T may differ; H·W may not. The paper's loss is
 * H(y, p_S) + λ/2 · MMD²; the term's weight carries λ/2.
 *
 * Paper vs the authors' code (TuSimple/neuron-selectivity-transfer, symbol/transfer.py, MXNet):
 *  1. the teacher–teacher term is dropped (it is constant), so their value is MMD² minus a
 *     constant and can be negative; the gradient is the same. It is kept here so the value is
 *     the MMD itself, zero when the student's selectivity matches the teacher's;
 *  2. MakeLoss with its default normalisation does not divide the gradient by the batch size:
 *     their per-sample means are effectively summed over the batch, where this is the batch mean
 *     (as in RepDistiller's NSTLoss); a weight absorbs the factor N.
 */
export function nstLoss(student: tf.Tensor, teacher: tf.Tensor, degree = 2, c = 0): tf.Scalar {
  expectRank4('NST student features', student);
  expectRank4('NST teacher features', teacher);
  return tf.tidy(() => {
    const [n, h, w] = student.shape;
    const [tn, th, tw] = teacher.shape;
    if (n !== tn || h * w !== th * tw) {
      throw new DistillError('E_SHAPE', `NST needs the same batch and number of positions H·W: student [${student.shape.join(', ')}], teacher [${teacher.shape.join(', ')}]`);
    }
    const fs = selectivityVectors(student);
    const ft = selectivityVectors(stopGradient(teacher));
    // Means over the kernel matrices' last two axes are the (1/C²) Σ Σ of the formula.
    const tt = tf.mean(polynomialKernel(ft, ft, degree, c), [1, 2]);
    const ss = tf.mean(polynomialKernel(fs, fs, degree, c), [1, 2]);
    const st = tf.mean(polynomialKernel(fs, ft, degree, c), [1, 2]);
    return tf.mean(tf.sub(tf.add(tt, ss), tf.mul(st, 2))) as tf.Scalar;
  });
}

/**
 * ONE's on-the-fly teacher, Lan, Zhu & Gong (2018), eq. (2): z_e = Σ_i g_i · z_i, the branch
 * logits weighted per sample by the gate's softmax output g ([N, m], rows summing to 1).
 */
export function gatedEnsemble(branches: tf.Tensor2D[], gate: tf.Tensor2D): tf.Tensor2D {
  if (branches.length !== gate.shape[1]) {
    throw new DistillError('E_SHAPE', `gated ensemble: ${branches.length} branches but the gate has ${gate.shape[1]} outputs`);
  }
  return tf.tidy(() => {
    const weighted = branches.map((z, i) => tf.mul(z, tf.slice(gate, [0, i], [-1, 1])));
    return tf.addN(weighted) as tf.Tensor2D;
  });
}
