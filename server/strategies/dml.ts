/**
 * Deep mutual learning across nodes (Zhang et al. 2018, "Deep Mutual Learning", eq. 10 for
 * K > 2 networks): every participant distills towards the aggregate of the *other*
 * participants' temperature-scaled probabilities on the round's reference samples. The
 * aggregate is the mean by default; any aggregator of server/aggregators can stand in (median
 * or trimmed mean against hostile peers, entropy-weighted for a gated ensemble, …).
 */
import { aggregatorFor, leaveOneOutAndEnsemble } from '../aggregators/index.js';
import { sampleReferencePerRound } from './reference-ids.js';
import { aggregatorOptions, type Aggregate, type StrategyDescriptor, type StrategyRounds } from './strategy.js';

export const dml: StrategyDescriptor = {
  name: 'dml',
  mode: 'sync',
  knowledge: 'reference-predictions',
  // Hinton et al.'s soft targets at T = 3, equal weight on labels and peers.
  defaults: { temperature: 3, alpha: 0.5, aggregator: 'mean' },
  summary: "deep mutual learning across nodes: each learns from the others' soft predictions on reference samples (Zhang et al. 2018)",
  secureTargets: 'others',
  create(settings): StrategyRounds {
    const name = settings.aggregator ?? 'mean';
    const aggregator = aggregatorFor(name);
    return {
      configureRound: sampleReferencePerRound(settings),
      aggregate(contributions, learners, rows): Aggregate {
        const options = aggregatorOptions(settings, rows);
        // The contributions are checked once and, for the mean, summed once: every target is
        // (S − own)/(n − 1) and the ensemble S/n from that one float64 sum.
        const { targets: others, ensemble } =
          contributions.length >= 2
            ? leaveOneOutAndEnsemble(name, contributions, options)
            : { targets: new Map<string, Float32Array>(), ensemble: aggregator(contributions, options) };
        const targets = new Map(
          learners.map((p) => {
            const values = others.get(p);
            return [p, values === undefined ? null : { values, shape: [rows, settings.numClasses] }];
          }),
        );
        return { targets, ensemble };
      },
    };
  },
};
