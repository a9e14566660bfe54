/**
 * Co-distillation (Anil et al. 2018, "Large scale distributed neural network training through
 * online distillation", §2): participants train continuously and asynchronously; every few
 * hundred steps each one loads the others' (stale) predictions and distills towards their
 * ensemble after a burn-in. Here the "checkpoint exchange" is a prediction exchange: the
 * coordinator keeps every participant's latest predictions per reference shard with their age
 * (server/async-exchange.ts) and serves the mean of the *others'* fresh ones on request.
 */
import { ensembleForAll, type StrategyDescriptor } from './strategy.js';

export const codistillation: StrategyDescriptor = {
  name: 'codistillation',
  mode: 'async',
  knowledge: 'reference-predictions',
  // Anil et al. distill towards the others' stale predictions after a burn-in.
  defaults: { temperature: 3, alpha: 0.5, aggregator: 'mean' },
  summary: "asynchronous co-distillation towards the others' stale predictions on reference shards (Anil et al. 2018)",
  // On language models: per-token predictions on shards of reference windows (Anil et al.'s setting).
  perToken: true,
  // One go signal with the whole reference set; shards are cut from it by number.
  create: (settings) => ensembleForAll(settings, 'mean', () => ({ referenceIds: Array.from({ length: settings.referenceSize }, (_, i) => i) })),
};
