/**
 * The mid-level loss methods by name. A new method is one class (one file in methods/) plus one
 * registration line here; configurations name it in `{ name, weight, params }`.
 */
import { AttentionTransferMethod } from './methods/attention-transfer.js';
import { CrossEntropyMethod } from './methods/cross-entropy.js';
import { FitNetsMethod } from './methods/fitnets.js';
import { KnowledgeDistillationMethod } from './methods/kd.js';
import { NeuronSelectivityTransferMethod } from './methods/nst.js';
import { OneMethod } from './methods/one.js';
import { DistillError, type LossMethod } from './types.js';

export type LossMethodFactory = (params: Record<string, unknown> | undefined) => LossMethod;

export const LOSS_METHODS: Readonly<Record<string, LossMethodFactory>> = {
  ce: (params) => new CrossEntropyMethod(params),
  kd: (params) => new KnowledgeDistillationMethod(params),
  fitnets: (params) => new FitNetsMethod(params),
  at: (params) => new AttentionTransferMethod(params),
  nst: (params) => new NeuronSelectivityTransferMethod(params),
  one: (params) => new OneMethod(params),
};

export function createLossMethod(name: string, params?: Record<string, unknown>): LossMethod {
  const factory = Object.hasOwn(LOSS_METHODS, name) ? LOSS_METHODS[name] : undefined;
  if (factory === undefined) {
    throw new DistillError('E_CONFIG', `unknown loss "${name}"; registered: ${Object.keys(LOSS_METHODS).join(', ')}`);
  }
  return factory(params);
}
