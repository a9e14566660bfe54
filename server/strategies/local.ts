/**
 * The local-only baseline: the same rounds and metrics, nothing exchanged. Each participant
 * trains on its private data alone; the distance to this baseline is what distillation adds.
 */
import type { Strategy } from './strategy.js';

export function local(): Strategy {
  return {
    name: 'local',
    knowledge: 'none',
    configureRound: () => ({ referenceIds: [] }),
    aggregate() {
      throw new Error('the local strategy exchanges nothing and has nothing to aggregate');
    },
  };
}
