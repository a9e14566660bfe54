/**
 * FedMD (Li & Wang 2019, "FedMD: Heterogenous Federated Learning via Model Distillation"):
 * participants send class scores (logits) on the round's public samples; the consensus is their
 * mean over all participants (§2, "Aggregate"), which every participant then digests before it
 * revisits its private data. The paper's first step, transfer learning on the labelled public set
 * and then the private data (Algorithm 1), is the participants' (ParticipantOptions
 * .pretrainOnReference, on by default in fedmd simulations): the coordinator never trains.
 */
import { ensembleForAll, type StrategyDescriptor } from './strategy.js';

export const fedmd: StrategyDescriptor = {
  name: 'fedmd',
  mode: 'sync',
  knowledge: 'reference-logits',
  // FedMD digests raw logits (T unused) and revisits on labels alone (α unused).
  defaults: { temperature: 1, alpha: 1, aggregator: 'mean-logits' },
  summary: "FedMD: transfer learning on the labelled public set, then each round digest the consensus logits on public samples and revisit private data (Li & Wang 2019)",
  secureTargets: 'all',
  create: (settings) => ensembleForAll(settings, 'mean-logits'),
};
