/**
 * Deep mutual learning across nodes (Zhang et al. 2018, "Deep Mutual Learning"): every
 * participant distills towards the mean of the *other* participants' temperature-scaled
 * probabilities on the round's reference samples.
 */
import { leaveOneOutMeans, meanOf } from '../aggregate.js';
import { referenceIdsForRound } from './reference-ids.js';
import type { Aggregate, Strategy, StrategySettings } from './strategy.js';

export function dml(settings: StrategySettings): Strategy {
  return {
    name: 'dml',
    knowledge: 'reference-predictions',
    configureRound: (round) => ({
      referenceIds: referenceIdsForRound(settings.referenceSize, settings.referencePerRound, settings.seed, round),
    }),
    aggregate(uploads): Aggregate {
      const ids = [...uploads.keys()];
      const vectors = [...uploads.values()];
      const ensemble = meanOf(vectors);
      const targets = new Map<string, Float32Array | null>();
      if (vectors.length < 2) {
        for (const id of ids) targets.set(id, null);
      } else {
        leaveOneOutMeans(vectors).forEach((target, i) => targets.set(ids[i]!, target));
      }
      return { targets, ensemble };
    },
  };
}
