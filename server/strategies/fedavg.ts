/**
 * FedAvg (McMahan et al. 2017, "Communication-Efficient Learning of Deep Networks from
 * Decentralized Data", Algorithm 1): the baseline that exchanges weights. The global model is
 * the average of the participants' parameters weighted by their sample counts, n_k / n. It is
 * here so that bytes and accuracy compare with the distillation algorithms on the same wire.
 */
import { aggregatorFor } from '../aggregators/index.js';
import { sameTargetForAll, type Aggregate, type StrategyDescriptor, type StrategyRounds } from './strategy.js';

export const fedavg: StrategyDescriptor = {
  name: 'fedavg',
  mode: 'sync',
  knowledge: 'weights',
  defaults: { temperature: 1, alpha: 1 },
  summary: "the FedAvg baseline: the sample-weighted average of model weights (McMahan et al. 2017)",
  create(): StrategyRounds {
    const weighted = aggregatorFor('sample-weighted');
    return {
      configureRound: () => ({ referenceIds: [] }),
      aggregate(contributions, learners): Aggregate {
        const parameters = contributions[0]!.values.length;
        return sameTargetForAll(weighted(contributions, { rows: 1, classes: parameters }), [parameters], learners);
      },
    };
  },
};
