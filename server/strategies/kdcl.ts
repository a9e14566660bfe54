/**
 * Collaborative learning across nodes, after KDCL (Guo et al. 2020, "Online Knowledge
 * Distillation via Collaborative Learning", CVPR, §3.2): every student learns from one soft
 * target, the ensemble of *all* students — its own prediction included — rather than DML's
 * ensemble of the others. KDCL-Naive averages logits; across nodes the participants share
 * softmax(z/T), so the ensemble here is the mean of the probabilities (any aggregator can stand in).
 */
import { ensembleForAll, type StrategyDescriptor } from './strategy.js';

export const kdcl: StrategyDescriptor = {
  name: 'kdcl',
  mode: 'sync',
  knowledge: 'reference-predictions',
  // DML's settings: soft targets at T = 3, equal weight on labels and the ensemble.
  defaults: { temperature: 3, alpha: 0.5, aggregator: 'mean' },
  summary: 'KDCL across nodes: each learns from the ensemble of all participants, itself included (Guo et al. 2020)',
  secureTargets: 'all',
  create: (settings) => ensembleForAll(settings, 'mean'),
};
