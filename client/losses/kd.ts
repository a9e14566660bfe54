import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { distillationLoss, temperedSoftmax } from './logits.js';
import { ParameterFreeMethod } from './parameter-free.js';
import { temperature } from './params.js';
import { DistillError, type LossInputs } from './types.js';

const schema = z
  .object({
    temperature: temperature.default(4),
    /** Weight of the hard-label cross-entropy; the soft term gets 1 − alpha. */
    alpha: z.number().min(0).max(1).default(0),
  })
  .strict();

/**
 * Offline knowledge distillation, Hinton, Vinyals & Dean (2015), "Distilling the Knowledge in a
 * Neural Network", §2: the transfer set is the training batch itself and the target is the
 * teacher's softmax(z_T / T):
 *   α · CE(y, z_S) + (1 − α) · T² · (1/N) Σ_n KL(softmax(z_T/T) ‖ softmax(z_S/T)),
 * computed by logits.ts's distillationLoss (KL direction teacher ‖ student, batch mean,
 * T², target a constant). α = 0 gives the soft term alone, the form of the born-again
 * objective in Furlanello et al. (2018), §3, which matches the teacher's output without labels.
 *
 * Conventions differ between libraries: here α weights the *hard* term (the README's
 * participant loss); torchdistill's KDLoss and many codes call the soft term's weight α.
 * Hinton et al. give the hard term "a considerably lower weight".
 */
export class KnowledgeDistillationMethod extends ParameterFreeMethod<typeof schema> {
  constructor(params?: Record<string, unknown>) {
    super('kd', true, schema, params);
  }

  compute(inputs: LossInputs): tf.Scalar {
    if (inputs.teacher === undefined) throw new DistillError('E_CONFIG', 'loss "kd" needs a teacher');
    const teacherLogits = inputs.teacher.logits;
    const { temperature: T, alpha } = this.params;
    return tf.tidy(() => {
      const target = temperedSoftmax(teacherLogits, T);
      const z = inputs.student.logits;
      return distillationLoss({ privateLogits: z, labels: inputs.labels, referenceLogits: z, target }, alpha, T);
    });
  }
}
