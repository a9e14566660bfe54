/**
 * The local-only baseline: the same rounds and metrics, nothing exchanged. Each participant
 * trains on its private data alone; the distance to this baseline is what distillation adds.
 */
import type { StrategyDescriptor, StrategyRounds } from './strategy.js';

export const local: StrategyDescriptor = {
  name: 'local',
  mode: 'sync',
  knowledge: 'none',
  defaults: { temperature: 1, alpha: 1 },
  summary: "the local-only baseline: the same rounds and metrics, nothing exchanged",
  create(): StrategyRounds {
    return {
      configureRound: () => ({ referenceIds: [] }),
      aggregate() {
        throw new Error('the local strategy exchanges nothing and has nothing to aggregate');
      },
    };
  },
};
