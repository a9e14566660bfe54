/**
 * DS-FL (Itahara et al. 2021, "Distillation-Based Semi-Supervised Federated Learning for
 * Communication-Efficient Collaborative Training with Non-IID Private Data", IEEE TMC):
 * participants predict on unlabeled open data; the server aggregates all of them — the
 * participant's own included — with entropy reduction aggregation (ERA: the mean, sharpened
 * with a temperature below 1), and every participant distills towards that one global label.
 */
import { ensembleForAll, type StrategyDescriptor } from './strategy.js';

export const dsfl: StrategyDescriptor = {
  name: 'dsfl',
  mode: 'sync',
  knowledge: 'reference-predictions',
  // DS-FL predicts at T = 1 and sharpens the mean with ERA at T = 0.1 (Itahara et al.).
  defaults: { temperature: 1, alpha: 0, aggregator: 'era', sharpenTemperature: 0.1 },
  summary: "DS-FL: one global soft label per reference sample, sharpened by entropy reduction (Itahara et al. 2021)",
  secureTargets: 'all',
  create: (settings) => ensembleForAll(settings, 'era'),
};
