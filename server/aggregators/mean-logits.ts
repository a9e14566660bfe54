/**
 * Mean of logits: z̄ = (1/n) Σ_k z_k. Values are logits here, and so is the result.
 *
 * FedDF (Lin et al. 2020, "Ensemble Distillation for Robust Model Fusion in Federated Learning",
 * Algorithm 1) distills from the average of the clients' logits, and FD (Jeong et al. 2018)
 * averages per-class mean logits. Averaging logits is a geometric mean of the probabilities,
 * softmax(z̄) ∝ Π_k softmax(z_k)^{1/n}: sharper than the mean of probabilities and not the same
 * target, which is why it is a separate aggregator. Logits are unbounded, so nothing is
 * renormalised.
 */
import { meanFromSum, meanOf } from './sums.js';
import { checkedSum, type Aggregator, type AggregatorCore, type AggregatorDescriptor } from './aggregator.js';

export const meanLogitsCore: AggregatorCore = (_contributions, arrays) => meanOf(arrays);

/** As the mean: the checks fused with the sum. */
export const meanLogits: Aggregator = (contributions, options) => {
  const { arrays, sum } = checkedSum('mean-logits', contributions, options);
  return meanFromSum(sum, arrays.length);
};

export const meanLogitsAggregator = { name: 'mean-logits', aggregate: meanLogits, core: meanLogitsCore, plainMean: true, needsIndividualValues: false } as const satisfies AggregatorDescriptor;
