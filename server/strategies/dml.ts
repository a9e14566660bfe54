/**
 * Deep mutual learning across nodes (Zhang et al. 2018, "Deep Mutual Learning", eq. 10 for
 * K > 2 networks): every participant distills towards the aggregate of the *other*
 * participants' temperature-scaled probabilities on the round's reference samples. The
 * aggregate is the mean by default; any aggregator of server/aggregators can stand in (median
 * or trimmed mean against hostile peers, entropy-weighted for a gated ensemble, …).
 */
import { aggregatorFor, leaveOneOutAggregates } from '../aggregators/index.js';
import { sampleReferencePerRound } from './reference-ids.js';
import { aggregatorOptions, type Aggregate, type Strategy, type StrategySettings } from './strategy.js';

export function dml(settings: StrategySettings): Strategy {
  const name = settings.aggregator ?? 'mean';
  const aggregator = aggregatorFor(name);
  return {
    name: 'dml',
    knowledge: 'reference-predictions',
    configureRound: sampleReferencePerRound(settings),
    aggregate(contributions, learners, rows): Aggregate {
      const options = aggregatorOptions(settings, rows);
      // One pass for all targets (for the mean: one float64 sum, each target (S − own)/(n − 1)).
      const others = contributions.length >= 2 ? leaveOneOutAggregates(name, contributions, options) : new Map<string, Float32Array>();
      const targets = new Map(
        learners.map((p) => {
          const values = others.get(p);
          return [p, values === undefined ? null : { values, shape: [rows, settings.numClasses] }];
        }),
      );
      return { targets, ensemble: aggregator(contributions, options) };
    },
  };
}
