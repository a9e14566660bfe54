import type * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { crossEntropy } from './logits.js';
import type { LossInputs, LossMethod } from './types.js';
import { parseParams } from './params.js';

/** The task loss on hard labels, −(1/N) Σ_n log softmax(z_n)[y_n] (logits.ts). No params. */
export class CrossEntropyMethod implements LossMethod {
  readonly name = 'ce';
  readonly needsTeacher = false;
  readonly teacherFeatures: readonly string[] = [];

  constructor(params?: Record<string, unknown>) {
    parseParams(this.name, z.object({}).strict(), params);
  }

  compute(inputs: LossInputs): tf.Scalar {
    return crossEntropy(inputs.student.logits, inputs.labels);
  }

  variables(): tf.Variable[] {
    return [];
  }

  dispose(): void {}
}
