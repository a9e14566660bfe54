import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { attentionTransferLoss } from './features.js';
import { ParameterFreeMethod } from './parameter-free.js';
import { featureOf, weightedFeaturePair } from './params.js';
import { DistillError, type LossInputs } from './types.js';

const schema = z
  .object({
    /** Student/teacher feature maps with equal H×W, one term each, weighted and summed (the paper's Σ_j). */
    pairs: z.array(weightedFeaturePair).min(1),
    /** Exponent of F_sum^p; the paper's experiments use 2. */
    p: z.number().positive().default(2),
    /** 'paper': ‖·‖₂ per sample, batch mean; 'code': the authors' (·)².mean() — see features.ts. */
    distance: z.enum(['paper', 'code']).default('paper'),
  })
  .strict();

/**
 * Activation-based attention transfer, Zagoruyko & Komodakis (2017), eq. (2):
 *   Σ_j w_j · (1/N) Σ_n ‖ Q_S^j/‖Q_S^j‖₂ − Q_T^j/‖Q_T^j‖₂ ‖₂,   Q = vec(Σ_c |A_c|^p),
 * over the configured pairs j with their weights w_j (default 1); the paper's β/2 goes in the
 * term's weight or, since the paper scales β per layer, in the w_j. Usually combined with
 * cross-entropy (and optionally KD) in the weighted sum. See features.ts attentionTransferLoss for
 * where the authors' code differs (squared distance, mean over N·H·W, β = 10³).
 */
export class AttentionTransferMethod extends ParameterFreeMethod<typeof schema> {
  override readonly teacherFeatures = this.params.pairs.map((pair) => pair.teacher);

  constructor(params?: Record<string, unknown>) {
    super('at', true, schema, params);
  }

  compute(inputs: LossInputs): tf.Scalar {
    const teacher = inputs.teacher;
    if (teacher === undefined) throw new DistillError('E_CONFIG', 'loss "at" needs a teacher');
    const { pairs, p, distance } = this.params;
    return tf.tidy(() => {
      const terms = pairs.map((pair) =>
        tf.mul(
          attentionTransferLoss(
            featureOf(inputs.student.features, pair.student, 'student', this.name) as tf.Tensor,
            featureOf(teacher.features, pair.teacher, 'teacher', this.name) as tf.Tensor,
            p,
            distance,
          ),
          pair.weight,
        ),
      );
      return tf.addN(terms) as tf.Scalar;
    });
  }
}
