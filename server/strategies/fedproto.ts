/**
 * FedProto (Tan et al. 2022, "FedProto: Federated Prototype Learning across Heterogeneous
 * Clients", AAAI, §3 and Algorithm 1): each participant uploads its prototypes — the mean
 * penultimate-layer representation of each class it holds, [classes, width] — with its per-class
 * counts; the coordinator sends every participant the global prototypes, the count-weighted mean
 * per class over all holders (server/aggregators/class-means.ts), the participant's own included.
 * A class nobody holds stays absent (count 0). No shared data and no weights: classes × width
 * floats each way per round. Where the paper's weighting and the authors' code differ: the code
 * (yuetan031/FedProto, lib/utils.py proto_aggregation) averages the holders' prototypes unweighted;
 * the paper (eq. 7) weighs them by |D_{k,c}|, which is what this does.
 */
import { classMeans } from '../aggregators/class-means.js';
import type { Aggregate, Contribution, StrategyRounds, StrategyDescriptor, StrategySettings } from './strategy.js';

export const fedproto: StrategyDescriptor = {
  name: 'fedproto',
  mode: 'sync',
  knowledge: 'class-representations',
  // The code's λ = 1 (args.ld): α·CE + (1 − α)·R with α = 0.5 is CE + R up to a factor Adam ignores.
  defaults: { temperature: 1, alpha: 0.5 },
  summary: 'FedProto: per-class mean representations (prototypes), no shared data (Tan et al. 2022)',
  create: classMeansForAll,
};

/** Rounds without reference rows whose every learner gets the per-class count-weighted means of all uploads. */
export function classMeansForAll(settings: StrategySettings): StrategyRounds {
  const C = settings.numClasses;
  return {
    configureRound: () => ({ referenceIds: [] }),
    aggregate(contributions: readonly Contribution[], learners: readonly string[]): Aggregate {
      const width = contributions[0]!.values.length / C;
      const { values, counts } = classMeans(contributions, C, width);
      const target = { values, shape: [C, width], counts };
      return { targets: new Map(learners.map((p) => [p, target])), ensemble: values };
    },
  };
}
