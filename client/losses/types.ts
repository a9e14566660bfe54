/**
 * The vocabulary of the client's losses: what a model hands to them (logits plus named
 * intermediate activations), what a loss method is, and how a loss is configured.
 */
import type * as tf from '@tensorflow/tfjs';
import { CodedError } from '../../protocol/errors.js';

/** One forward pass of a feature model. */
export interface ModelOutputs {
  /** The model's prediction, [N, C] logits; for ONE, the gated ensemble of the branches. */
  logits: tf.Tensor2D;
  /** Intermediate activations by name (`conv1`, `dense2`, …), after their non-linearity. */
  features: Record<string, tf.Tensor>;
  /** ONE only: each branch's logits, [N, C] each. */
  branches?: tf.Tensor2D[];
  /** ONE only: the gate's weights over the branches, [N, branches], rows summing to 1. */
  gate?: tf.Tensor2D;
}

/** The fused participant loss's targets as tensors (logits.ts stackTargets fills them). */
export interface StackedTargetTensors {
  /** [rows, 1]: 1 on labeled rows, 1/T on soft rows. */
  rowScale: tf.Tensor2D;
  /** [rows, classes]. */
  weights: tf.Tensor2D;
  /** The target's entropy term, which has no gradient. */
  constant: number;
}

/** Everything a loss term may read for one batch. */
export interface LossInputs {
  /** The student on the batch's labeled (private) rows. */
  student: ModelOutputs;
  /** Present for teacher → student methods; its tensors are constants (computed outside the tape). */
  teacher?: ModelOutputs;
  /** Integer class labels, [N]. */
  labels: tf.Tensor1D;
  /**
   * A federated participant's step (client/student.ts): the student's logits on the labeled rows
   * and then the reference rows its peers' target covers, stacked, with that target. The `peers`
   * term reads it; offline distillation has no peers.
   */
  peers?: { logits: tf.Tensor2D; target: StackedTargetTensors };
  /**
   * A federated participant's step in a session that exchanges per-class knowledge (FedProto,
   * FedHKD): the round's global per-class means, constants of the pass. The `prototypes` and
   * `hyper-knowledge` terms read it.
   */
  classKnowledge?: ClassKnowledgeTensors;
  /**
   * Language models (tokens.ts): logits and labels are per token, [batch·positions, vocab] and
   * [batch·positions], and this mask [batch·positions] is 0 on padding.
   */
  tokenMask?: tf.Tensor1D;
}

/** The global per-class knowledge of a round as tensors (client/student.ts builds them from the target). */
export interface ClassKnowledgeTensors {
  /** [C, D]: each class's global mean representation; a row of zeros where no participant holds the class. */
  representations: tf.Tensor2D;
  /** [C]: 1 where some participant holds the class, 0 where none does (the target's counts). */
  present: tf.Tensor1D;
  /** [C, C]: each class's global mean soft prediction softmax(z/T) (FedHKD); rows of absent classes are zeros. */
  softPredictions?: tf.Tensor2D;
  /** The T of softPredictions. */
  temperature: number;
  /** The student's feature that is its representation: the penultimate layer's output, the logits layer's input. */
  feature: string;
  /** The student's logits layer, representation → logits: FedHKD asks it what it makes of the global representations. */
  head: (representations: tf.Tensor2D) => tf.Tensor2D;
}

/** One entry of a weighted-sum loss configuration, as in torchdistill: `{ name, weight, params }`. */
export interface LossTermConfig {
  /** A registered method name: see LOSS_METHODS in client/losses/registry.ts. */
  name: string;
  weight: number;
  params?: Record<string, unknown>;
}

/**
 * A mid-level, named distillation method (KD, FitNets, AT, …). A method reads what it needs
 * from the batch's LossInputs and returns a scalar; the weighted sum multiplies it by its weight.
 */
export interface LossMethod {
  /** The name it is registered under. */
  readonly name: string;
  /** Teacher feature names this method reads (so the trainer knows whether it must run the teacher per batch). */
  readonly teacherFeatures: readonly string[];
  /** Whether the method needs a teacher at all. */
  readonly needsTeacher: boolean;
  /**
   * Called once with a probe batch before training, outside any gradient tape: a method with
   * its own parameters (FitNets' regressor) creates them here, sized from the feature shapes.
   */
  prepare?(inputs: LossInputs): void;
  /** Trainable parameters the method owns; trained with the student. */
  variables(): tf.Variable[];
  compute(inputs: LossInputs): tf.Scalar;
  dispose(): void;
}

/** `E_CONFIG: …` for a bad configuration, `E_SHAPE: …` for features that do not fit a method. */
export class DistillError extends CodedError<'E_CONFIG' | 'E_SHAPE'> {
  override readonly name = 'DistillError';
}
