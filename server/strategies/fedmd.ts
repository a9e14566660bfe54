/**
 * FedMD (Li & Wang 2019, "FedMD: Heterogenous Federated Learning via Model Distillation"):
 * participants send class scores (logits) on the round's public samples; the consensus is their
 * mean over all participants (§2, "Aggregate"), which every participant then digests before it
 * revisits its private data.
 */
import { ensembleForAll, type StrategyDescriptor } from './strategy.js';

export const fedmd: StrategyDescriptor = {
  name: 'fedmd',
  mode: 'sync',
  knowledge: 'reference-logits',
  // FedMD digests raw logits (T unused) and revisits on labels alone (α unused).
  defaults: { temperature: 1, alpha: 1, aggregator: 'mean-logits' },
  summary: "FedMD: digest the consensus logits on public samples, then revisit private data (Li & Wang 2019)",
  secureTargets: 'all',
  create: (settings) => ensembleForAll(settings, 'mean-logits'),
};
