/**
 * DS-FL (Itahara et al. 2021, "Distillation-Based Semi-Supervised Federated Learning for
 * Communication-Efficient Collaborative Training with Non-IID Private Data", IEEE TMC):
 * participants predict on unlabeled open data; the server aggregates all of them — the
 * participant's own included — with entropy reduction aggregation (ERA: the mean, sharpened
 * with a temperature below 1), and every participant distills towards that one global label.
 */
import { aggregatorFor } from '../aggregators/index.js';
import { sampleReferencePerRound } from './reference-ids.js';
import { aggregatorOptions, sameTargetForAll, type Aggregate, type Strategy, type StrategySettings } from './strategy.js';

export function dsfl(settings: StrategySettings): Strategy {
  const aggregator = aggregatorFor(settings.aggregator ?? 'era');
  return {
    name: 'dsfl',
    knowledge: 'reference-predictions',
    configureRound: sampleReferencePerRound(settings),
    aggregate(contributions, learners, rows): Aggregate {
      return sameTargetForAll(aggregator(contributions, aggregatorOptions(settings, rows)), [rows, settings.numClasses], learners);
    },
  };
}
