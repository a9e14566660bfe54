/**
 * DS-FL (Itahara et al. 2021, "Distillation-Based Semi-Supervised Federated Learning for
 * Communication-Efficient Collaborative Training with Non-IID Private Data", IEEE TMC):
 * participants predict on unlabeled open data; the server aggregates all of them — the
 * participant's own included — with entropy reduction aggregation (ERA: the mean, sharpened
 * with a temperature below 1), and every participant distills towards that one global label.
 */
import { aggregatorFor } from '../aggregators/index.js';
import { sampleReferencePerRound } from './reference-ids.js';
import { aggregatorOptions, sameTargetForAll, type Aggregate, type StrategyDescriptor, type StrategyRounds } from './strategy.js';

export const dsfl: StrategyDescriptor = {
  name: 'dsfl',
  mode: 'sync',
  knowledge: 'reference-predictions',
  // DS-FL predicts at T = 1 and sharpens the mean with ERA at T = 0.1 (Itahara et al.).
  defaults: { temperature: 1, alpha: 0, aggregator: 'era', sharpenTemperature: 0.1 },
  summary: "DS-FL: one global soft label per reference sample, sharpened by entropy reduction (Itahara et al. 2021)",
  create(settings): StrategyRounds {
    const aggregator = aggregatorFor(settings.aggregator ?? 'era');
    return {
      configureRound: sampleReferencePerRound(settings),
      aggregate(contributions, learners, rows): Aggregate {
        return sameTargetForAll(aggregator(contributions, aggregatorOptions(settings, rows)), [rows, settings.numClasses], learners);
      },
    };
  },
};
