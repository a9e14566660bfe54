/**
 * The high-level loss: a weighted sum of named methods, configured by a list of
 * `{ name, weight, params }` (torchdistill's "weighted sum" criterion). Hinton's KD, for example:
 *   [{ name: 'kd', weight: 1, params: { temperature: 4, alpha: 0.1 } }]
 * and attention transfer on top of the task loss:
 *   [{ name: 'ce', weight: 1 }, { name: 'at', weight: 500, params: { pairs: [...] } }]
 */
import * as tf from '@tensorflow/tfjs';
import { createLossMethod } from './registry.js';
import { DistillError, type LossInputs, type LossMethod, type LossTermConfig } from './types.js';

export interface WeightedTerm {
  method: LossMethod;
  weight: number;
  /** `name`, or `name#k` when the same method appears more than once. */
  label: string;
}

export interface LossValue {
  total: tf.Scalar;
  /** Each term before weighting, by label, for logs. */
  parts: Record<string, tf.Scalar>;
}

export class WeightedSumLoss {
  readonly terms: readonly WeightedTerm[];

  constructor(config: readonly LossTermConfig[]) {
    if (config.length === 0) throw new DistillError('E_CONFIG', 'a loss needs at least one term');
    const seen = new Map<string, number>();
    this.terms = config.map((term, index) => {
      if (typeof term.weight !== 'number' || !Number.isFinite(term.weight)) {
        throw new DistillError('E_CONFIG', `loss term ${index} ("${term.name}"): weight must be a finite number; got ${String(term.weight)}`);
      }
      const count = (seen.get(term.name) ?? 0) + 1;
      seen.set(term.name, count);
      return { method: createLossMethod(term.name, term.params), weight: term.weight, label: count === 1 ? term.name : `${term.name}#${count}` };
    });
  }

  get needsTeacher(): boolean {
    return this.terms.some((t) => t.method.needsTeacher);
  }

  /** Teacher features any term reads; empty when the teacher's logits suffice. */
  get teacherFeatures(): string[] {
    return [...new Set(this.terms.flatMap((t) => t.method.teacherFeatures))];
  }

  /** Lets methods with parameters (FitNets' regressor) build them from a probe batch. Outside any tape. */
  prepare(inputs: LossInputs): void {
    for (const t of this.terms) t.method.prepare?.(inputs);
  }

  /** Parameters the loss itself trains, to be optimised with the student's. */
  variables(): tf.Variable[] {
    return this.terms.flatMap((t) => t.method.variables());
  }

  /** Σ_k weight_k · method_k(inputs). */
  compute(inputs: LossInputs): tf.Scalar {
    return tf.tidy(() => tf.addN(this.terms.map((t) => tf.mul(t.method.compute(inputs), t.weight))) as tf.Scalar);
  }

  /** The total and each unweighted part; the caller disposes them. */
  evaluate(inputs: LossInputs): LossValue {
    const parts: Record<string, tf.Scalar> = {};
    for (const t of this.terms) parts[t.label] = t.method.compute(inputs);
    const total = tf.tidy(() => tf.addN(this.terms.map((t) => tf.mul(parts[t.label]!, t.weight))) as tf.Scalar);
    return { total, parts };
  }

  dispose(): void {
    for (const t of this.terms) t.method.dispose();
  }
}
