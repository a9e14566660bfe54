/**
 * Co-distillation (Anil et al. 2018, "Large scale distributed neural network training through
 * online distillation", §2): participants train continuously and asynchronously; every few
 * hundred steps each one loads the others' (stale) predictions and distills towards their
 * ensemble after a burn-in. Here the "checkpoint exchange" is a prediction exchange: the
 * coordinator keeps every participant's latest predictions per reference shard with their age
 * (server/async-exchange.ts) and serves the mean of the *others'* fresh ones on request.
 */
import { aggregatorFor } from '../aggregators/index.js';
import { aggregatorOptions, sameTargetForAll, type Aggregate, type Strategy, type StrategySettings } from './strategy.js';

export function codistillation(settings: StrategySettings): Strategy {
  const aggregator = aggregatorFor(settings.aggregator ?? 'mean');
  return {
    name: 'codistillation',
    knowledge: 'reference-predictions',
    mode: 'async',
    // One go signal with the whole reference set; shards are cut from it by number.
    configureRound: () => ({ referenceIds: Array.from({ length: settings.referenceSize }, (_, i) => i) }),
    aggregate(contributions, learners, rows): Aggregate {
      return sameTargetForAll(aggregator(contributions, aggregatorOptions(settings, rows)), [rows, settings.numClasses], learners);
    },
  };
}
