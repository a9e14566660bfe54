import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { nstLoss } from './features.js';
import { DistillError, type LossInputs, type LossMethod } from './types.js';
import { featurePair, featureOf, parseParams, type FeaturePair } from './params.js';

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
export class NeuronSelectivityTransferMethod implements LossMethod {
  readonly name = 'nst';
  readonly needsTeacher = true;
  readonly teacherFeatures: readonly string[];
  private readonly pairs: FeaturePair[];
  private readonly degree: number;
  private readonly c: number;

  constructor(params?: Record<string, unknown>) {
    const parsed = parseParams(this.name, schema, params);
    this.pairs = parsed.pairs;
    this.degree = parsed.degree;
    this.c = parsed.c;
    this.teacherFeatures = this.pairs.map((pair) => pair.teacher);
  }

  compute(inputs: LossInputs): tf.Scalar {
    const teacher = inputs.teacher;
    if (teacher === undefined) throw new DistillError('E_CONFIG', 'loss "nst" needs a teacher');
    return tf.tidy(() => {
      const terms = this.pairs.map((pair) =>
        nstLoss(
          featureOf(inputs.student.features, pair.student, 'student', this.name) as tf.Tensor,
          featureOf(teacher.features, pair.teacher, 'teacher', this.name) as tf.Tensor,
          this.degree,
          this.c,
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
