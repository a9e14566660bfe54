/** Parameter validation shared by the loss methods: zod schemas, errors a person can act on. */
import { z } from 'zod';
import { DistillError } from './types.js';

/** Parses a method's `params` with its schema; unknown keys are refused, so a typo is not silently ignored. */
export function parseParams<S extends z.ZodType>(method: string, schema: S, raw: Record<string, unknown> | undefined): z.output<S> {
  const result = schema.safeParse(raw ?? {});
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => `${issue.path.length > 0 ? `params.${issue.path.join('.')}` : 'params'}: ${issue.message}`);
  throw new DistillError('E_CONFIG', `loss "${method}": ${problems.join('; ')}`);
}

/** A student feature and the teacher feature it is matched to, by output name. */
export const featurePair = z.object({ student: z.string().min(1), teacher: z.string().min(1) }).strict();
export type FeaturePair = z.output<typeof featurePair>;

/** A feature pair with a weight of its own (the AT paper scales β per layer). */
export const weightedFeaturePair = z
  .object({ student: z.string().min(1), teacher: z.string().min(1), weight: z.number().min(0).default(1) })
  .strict();
export type WeightedFeaturePair = z.output<typeof weightedFeaturePair>;

export const temperature = z.number().positive();

/** The named feature of a model's outputs, or a clear error listing the names it has. */
export function featureOf(features: Record<string, unknown>, name: string, side: 'student' | 'teacher', method: string) {
  const value = features[name];
  if (value === undefined) {
    throw new DistillError('E_CONFIG', `loss "${method}": the ${side} has no feature "${name}"; it has ${Object.keys(features).join(', ') || 'none'}`);
  }
  return value;
}
