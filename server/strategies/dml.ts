/**
 * Deep mutual learning across nodes (Zhang et al. 2018, "Deep Mutual Learning", eq. 10 for
 * K > 2 networks): every participant distills towards the aggregate of the *other*
 * participants' temperature-scaled probabilities on the round's reference samples. The
 * aggregate is the mean by default; any aggregator of server/aggregators can stand in (median
 * or trimmed mean against hostile peers, entropy-weighted for a gated ensemble, …).
 *
 * On language models (the session's tokenizer and positions set) the same at every position:
 * the knowledge is softmax(z/T) per token on the round's reference windows, [rows, positions,
 * vocab], aggregated as rows·positions distributions over the vocabulary (Anil et al. 2018
 * co-distilled language models this way, per token).
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
  perToken: true,
  create(settings): StrategyRounds {
    const positions = settings.positions;
    const name = settings.aggregator ?? 'mean';
    const aggregator = aggregatorFor(name);
    return {
      configureRound: sampleReferencePerRound(settings),
      aggregate(contributions, learners, rows): Aggregate {
        // Per token: every position of every window is one distribution over the vocabulary.
        const options = aggregatorOptions(settings, positions === undefined ? rows : rows * positions);
        // The contributions are checked once and, for the mean, summed once: every target is
        // (S − own)/(n − 1) and the ensemble S/n from that one float64 sum.
        const { targets: others, ensemble } =
          contributions.length >= 2
            ? leaveOneOutAndEnsemble(name, contributions, options)
            : { targets: new Map<string, Float32Array>(), ensemble: aggregator(contributions, options) };
        const targets = new Map(
          learners.map((p) => {
            const values = others.get(p);
            return [p, values === undefined ? null : { values, shape: positions === undefined ? [rows, settings.numClasses] : [rows, positions, settings.numClasses] }];
          }),
        );
        return { targets, ensemble };
      },
    };
  },
};
