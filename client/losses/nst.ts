import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { nstLoss } from './features.js';
import { ParameterFreeMethod } from './parameter-free.js';
import { featurePair, featureOf } from './params.js';
import { DistillError, type LossInputs } from './types.js';

const schema = z
  .object({
    /** Student/teacher feature maps with the same number of positions H·W; terms summed. */
    pairs: z.array(featurePair).min(1),
    /** Polynomial kernel k(x, y) = (xᵀy + c)^d; the paper's choice is d = 2, c = 0. */
    degree: z.number().int().min(1).default(2),
    c: z.number().default(0),
  })
  .strict();

/**
 * Neuron selectivity transfer, Huang & Wang (2017): Σ_pairs MMD²(teacher's, student's
 * L2-normalised channel vectors) with a polynomial kernel (features.ts nstLoss, batch mean). The
 * paper trains on H(y, p_S) + λ/2 · MMD²: configure `ce` with weight 1 and `nst` with λ/2.
 */
export class NeuronSelectivityTransferMethod extends ParameterFreeMethod<typeof schema> {
  override readonly teacherFeatures = this.params.pairs.map((pair) => pair.teacher);

  constructor(params?: Record<string, unknown>) {
    super('nst', true, schema, params);
  }

  compute(inputs: LossInputs): tf.Scalar {
    const teacher = inputs.teacher;
    if (teacher === undefined) throw new DistillError('E_CONFIG', 'loss "nst" needs a teacher');
    const { pairs, degree, c } = this.params;
    return tf.tidy(() => {
      const terms = pairs.map((pair) =>
        nstLoss(
          featureOf(inputs.student.features, pair.student, 'student', this.name) as tf.Tensor,
          featureOf(teacher.features, pair.teacher, 'teacher', this.name) as tf.Tensor,
          degree,
          c,
        ),
      );
      return tf.addN(terms) as tf.Scalar;
    });
  }
}
