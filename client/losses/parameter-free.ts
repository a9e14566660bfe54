/**
 * The skeleton of a loss method that owns no trainable parameters — every method but FitNets,
 * whose regressor trains with the student: its params parsed once by its schema (unknown keys
 * refused, params.ts parseParams), no variables, nothing to dispose. A method adds what it reads
 * and computes.
 */
import type * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { parseParams } from './params.js';
import type { LossInputs, LossMethod } from './types.js';

/** The schema of a method that takes no params: any key is refused. */
export const NO_PARAMS = z.object({}).strict();

export abstract class ParameterFreeMethod<Schema extends z.ZodType = typeof NO_PARAMS> implements LossMethod {
  readonly teacherFeatures: readonly string[] = [];
  /** The method's params, parsed by its schema, defaults filled in. */
  protected readonly params: z.output<Schema>;

  constructor(
    readonly name: string,
    readonly needsTeacher: boolean,
    schema: Schema,
    params: Record<string, unknown> | undefined,
  ) {
    this.params = parseParams(name, schema, params);
  }

  abstract compute(inputs: LossInputs): tf.Scalar;

  variables(): tf.Variable[] {
    return [];
  }

  dispose(): void {}
}
