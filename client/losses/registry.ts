/**
 * The client's one loss registry: the mid-level methods by name, for offline distillation
 * (client/distill) and a federated participant's objective (client/student.ts) alike. A new
 * method is one class (one file in this folder) plus one registration line here; configurations
 * name it in `{ name, weight, params }` and weighted-sum.ts adds them up.
 */
import { AttentionTransferMethod } from './attention-transfer.js';
import { HyperKnowledgeMethod, PrototypeMethod } from './class-knowledge.js';
import { CrossEntropyMethod } from './cross-entropy.js';
import { FitNetsMethod } from './fitnets.js';
import { KnowledgeDistillationMethod } from './kd.js';
import { NeuronSelectivityTransferMethod } from './nst.js';
import { OneMethod } from './one.js';
import { PeerDistillationMethod } from './peers.js';
import { TokenCrossEntropyMethod, TokenDistillationMethod } from './tokens.js';
import { DistillError, type LossMethod } from './types.js';

export type LossMethodFactory = (params: Record<string, unknown> | undefined) => LossMethod;

export const LOSS_METHODS: Readonly<Record<string, LossMethodFactory>> = {
  ce: (params) => new CrossEntropyMethod(params),
  peers: (params) => new PeerDistillationMethod(params),
  kd: (params) => new KnowledgeDistillationMethod(params),
  fitnets: (params) => new FitNetsMethod(params),
  at: (params) => new AttentionTransferMethod(params),
  nst: (params) => new NeuronSelectivityTransferMethod(params),
  one: (params) => new OneMethod(params),
  prototypes: (params) => new PrototypeMethod(params),
  'hyper-knowledge': (params) => new HyperKnowledgeMethod(params),
  'token-ce': (params) => new TokenCrossEntropyMethod(params),
  'token-kd': (params) => new TokenDistillationMethod(params),
};

export function createLossMethod(name: string, params?: Record<string, unknown>): LossMethod {
  const factory = Object.hasOwn(LOSS_METHODS, name) ? LOSS_METHODS[name] : undefined;
  if (factory === undefined) {
    throw new DistillError('E_CONFIG', `unknown loss "${name}"; registered: ${Object.keys(LOSS_METHODS).join(', ')}`);
  }
  return factory(params);
}
