/**
 * The loss terms of per-class knowledge without shared data, and their named methods:
 *
 *  - `prototypes` (FedProto, Tan et al. 2022, eq. 8's regulariser; FedHKD's γ term):
 *      (1/(N·D)) Σ_n [y_n held by someone] · ‖f(x_n) − p̄_{y_n}‖²,
 *    f the student's representation (penultimate layer), p̄ the global prototypes, N the batch's
 *    private rows, D the representation width. This is the authors' code (yuetan031/FedProto,
 *    lib/update.py: nn.MSELoss over the batch's [N, D], the target of a row whose class has no
 *    global prototype being the row itself, so it adds 0 but counts in N). The reduction is the
 *    code's; λ = 1 there (args.ld).
 *  - `hyper-knowledge` (FedHKD, Chen et al. 2023, the λ term):
 *      (1/|H|) Σ_{c ∈ H} KL(Q̄_c ‖ softmax(head(H̄_c) / T)),
 *    H the classes some participant holds, H̄_c and Q̄_c the global mean representation and soft
 *    prediction of class c, head the student's logits layer. It teaches the head about every class
 *    held anywhere — the classes this participant never sees included — from two vectors per
 *    class. KL direction target ‖ student, summed over the classes k and averaged over the classes
 *    c; no T² factor, as in the authors' code (Client/ClientFedHKD.py), whose nn.KLDivLoss() with
 *    its default reduction also divides by C once more (a mean over the C × C elements): their
 *    λ = 0.05 is λ = 0.005 here. The global representations are constants: only the head learns
 *    from this term.
 */
import * as tf from '@tensorflow/tfjs';
import { stopGradient } from './logits.js';
import { NO_PARAMS, ParameterFreeMethod } from './parameter-free.js';
import { DistillError, type ClassKnowledgeTensors, type LossInputs } from './types.js';

/** FedProto's regulariser, above: features [N, D], labels [N], prototypes [C, D], present [C] (1 or 0). */
export function prototypeLoss(features: tf.Tensor2D, labels: tf.Tensor1D, prototypes: tf.Tensor2D, present: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => {
    // Each row's class picked by a one-hot product (the wasm backend has no gradient kernel for gather).
    const oneHot = tf.oneHot(labels, prototypes.shape[0]).toFloat();
    const target = stopGradient(tf.matMul(oneHot, prototypes));
    const held = tf.matMul(oneHot, tf.reshape(present, [-1, 1]));
    const squared = tf.mul(tf.square(tf.sub(features, target)), held);
    return tf.div(tf.sum(squared), features.shape[0] * features.shape[1]) as tf.Scalar;
  });
}

/** FedHKD's hyper-knowledge term, above: headLogits = head(H̄) [C, C], softPredictions Q̄ [C, C], present [C]. */
export function hyperKnowledgeLoss(headLogits: tf.Tensor2D, softPredictions: tf.Tensor2D, present: tf.Tensor1D, temperature: number): tf.Scalar {
  return tf.tidy(() => {
    const q = stopGradient(softPredictions);
    const logP = tf.logSoftmax(tf.div(headLogits, temperature));
    const qLogQ = tf.mul(q, tf.log(tf.maximum(q, 1e-30))); // 0·log 0 = 0
    const kl = tf.sum(tf.sub(qLogQ, tf.mul(q, logP)), 1);
    const held = tf.sum(present);
    return tf.div(tf.sum(tf.mul(kl, present)), tf.maximum(held, 1)) as tf.Scalar;
  });
}

function knowledgeOf(inputs: LossInputs, method: string): ClassKnowledgeTensors {
  if (inputs.classKnowledge === undefined) {
    throw new DistillError('E_CONFIG', `loss "${method}" reads the round's per-class knowledge: it belongs to a FedProto or FedHKD participant's objective (client/procedures), not to offline distillation`);
  }
  return inputs.classKnowledge;
}

export class PrototypeMethod extends ParameterFreeMethod {
  constructor(params?: Record<string, unknown>) {
    super('prototypes', false, NO_PARAMS, params);
  }

  compute(inputs: LossInputs): tf.Scalar {
    const knowledge = knowledgeOf(inputs, this.name);
    const features = inputs.student.features[knowledge.feature];
    if (features === undefined || features.rank !== 2) {
      throw new DistillError('E_SHAPE', `loss "prototypes": the student's representation "${knowledge.feature}" must be a [rows, width] feature`);
    }
    return prototypeLoss(features as tf.Tensor2D, inputs.labels, knowledge.representations, knowledge.present);
  }
}

export class HyperKnowledgeMethod extends ParameterFreeMethod {
  constructor(params?: Record<string, unknown>) {
    super('hyper-knowledge', false, NO_PARAMS, params);
  }

  compute(inputs: LossInputs): tf.Scalar {
    const knowledge = knowledgeOf(inputs, this.name);
    if (knowledge.softPredictions === undefined) {
      throw new DistillError('E_CONFIG', 'loss "hyper-knowledge" needs the global soft predictions per class (FedHKD\'s hyper-knowledge); this round has representations only');
    }
    return tf.tidy(() => hyperKnowledgeLoss(knowledge.head(stopGradient(knowledge.representations) as tf.Tensor2D), knowledge.softPredictions!, knowledge.present, knowledge.temperature));
  }
}
