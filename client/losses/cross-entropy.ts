import type * as tf from '@tensorflow/tfjs';
import { crossEntropy } from './logits.js';
import { NO_PARAMS, ParameterFreeMethod } from './parameter-free.js';
import type { LossInputs } from './types.js';

/** The task loss on hard labels, −(1/N) Σ_n log softmax(z_n)[y_n] (logits.ts). No params. */
export class CrossEntropyMethod extends ParameterFreeMethod {
  constructor(params?: Record<string, unknown>) {
    super('ce', false, NO_PARAMS, params);
  }

  compute(inputs: LossInputs): tf.Scalar {
    return crossEntropy(inputs.student.logits, inputs.labels);
  }
}
