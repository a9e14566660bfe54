import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { attentionTransferLoss } from './features.js';
import { DistillError, type LossInputs, type LossMethod } from './types.js';
import { featureOf, parseParams, weightedFeaturePair, type WeightedFeaturePair } from './params.js';

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
export class AttentionTransferMethod implements LossMethod {
  readonly name = 'at';
  readonly needsTeacher = true;
  readonly teacherFeatures: readonly string[];
  private readonly pairs: WeightedFeaturePair[];
  private readonly p: number;
  private readonly distance: 'paper' | 'code';

  constructor(params?: Record<string, unknown>) {
    const parsed = parseParams(this.name, schema, params);
    this.pairs = parsed.pairs;
    this.p = parsed.p;
    this.distance = parsed.distance;
    this.teacherFeatures = this.pairs.map((pair) => pair.teacher);
  }

  compute(inputs: LossInputs): tf.Scalar {
    const teacher = inputs.teacher;
    if (teacher === undefined) throw new DistillError('E_CONFIG', 'loss "at" needs a teacher');
    return tf.tidy(() => {
      const terms = this.pairs.map((pair) =>
        tf.mul(
          attentionTransferLoss(
            featureOf(inputs.student.features, pair.student, 'student', this.name) as tf.Tensor,
            featureOf(teacher.features, pair.teacher, 'teacher', this.name) as tf.Tensor,
            this.p,
            this.distance,
          ),
          pair.weight,
        ),
      );
      return tf.addN(terms) as tf.Scalar;
    });
  }

  variables(): tf.Variable[] {
    return [];
  }

  dispose(): void {}
}
