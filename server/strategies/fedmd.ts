/**
 * FedMD (Li & Wang 2019, "FedMD: Heterogenous Federated Learning via Model Distillation"):
 * participants send class scores (logits) on the round's public samples; the consensus is their
 * mean over all participants (§2, "Aggregate"), which every participant then digests before it
 * revisits its private data.
 */
import { aggregatorFor } from '../aggregators/index.js';
import { sampleReferencePerRound } from './reference-ids.js';
import { aggregatorOptions, sameTargetForAll, type Aggregate, type Strategy, type StrategySettings } from './strategy.js';

export function fedmd(settings: StrategySettings): Strategy {
  const aggregator = aggregatorFor(settings.aggregator ?? 'mean-logits');
  return {
    name: 'fedmd',
    knowledge: 'reference-logits',
    configureRound: sampleReferencePerRound(settings),
    aggregate(contributions, learners, rows): Aggregate {
      return sameTargetForAll(aggregator(contributions, aggregatorOptions(settings, rows)), [rows, settings.numClasses], learners);
    },
  };
}
