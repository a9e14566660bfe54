import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { crossEntropy, kdLoss, temperedSoftmax } from './logits.js';
import { ParameterFreeMethod } from './parameter-free.js';
import { temperature } from './params.js';
import { DistillError, type LossInputs } from './types.js';

const schema = z.object({ temperature: temperature.default(3) }).strict();

/**
 * On-the-fly Native Ensemble, Lan, Zhu & Gong (2018), "Knowledge Distillation by On-the-fly
 * Native Ensemble", eq. (6): for m branches with logits z_i and the gated ensemble
 * z_e = Σ_i g_i z_i (the student's `logits`, see client/models.ts),
 *   L = Σ_i CE(y, z_i) + CE(y, z_e) + T² · Σ_i (1/N) Σ_n KL(softmax(z_e/T) ‖ softmax(z_i/T)),
 * with the ensemble detached in the KL terms (logits.ts kdLoss treats its target as a
 * constant): the gate and the branches learn the ensemble only through CE(y, z_e).
 *
 * Paper vs the authors' code (Lan1991Xu/ONE_NeurIPS2018): the code uses T = 3 (fixed in
 * KLLoss), adds 1e-7 to the target probabilities before the log, and multiplies the KL sum by a
 * sigmoid ramp-up weight over the first 80 of 300 epochs ("consistency_rampup"), none of which
 * the paper states; none is done here. The code reports the first branch's best test accuracy
 * over epochs; client/distill/recipes.ts reports every branch and the ensemble after the last epoch.
 */
export class OneMethod extends ParameterFreeMethod<typeof schema> {
  constructor(params?: Record<string, unknown>) {
    super('one', false, schema, params);
  }

  compute(inputs: LossInputs): tf.Scalar {
    const { branches, logits: ensemble } = inputs.student;
    if (branches === undefined || branches.length === 0) {
      throw new DistillError('E_CONFIG', 'loss "one" needs a multi-branch student (architecture kind "one")');
    }
    const T = this.params.temperature;
    return tf.tidy(() => {
      const target = temperedSoftmax(ensemble, T);
      const terms = [crossEntropy(ensemble, inputs.labels)];
      for (const z of branches) {
        terms.push(crossEntropy(z, inputs.labels), kdLoss(z, target, T));
      }
      return tf.addN(terms) as tf.Scalar;
    });
  }
}
