/**
 * Sample-count weighted mean: p̄ = Σ_k (n_k / n) p_k with n = Σ_k n_k, the weighting FedAvg
 * gives client updates (McMahan et al. 2017, "Communication-Efficient Learning of Deep Networks
 * from Decentralized Data", Algorithm 1: w ← Σ_k (n_k/n) w_k), applied here to predictions.
 *
 * Every contribution must carry a finite sampleCount ≥ 0, and at least one must be positive; a
 * participant with zero samples is allowed and simply weighs nothing. With equal counts this is
 * the plain mean. Like the mean, it keeps rows on the simplex.
 */
import { ErrorCode, ProtocolError } from '../../protocol/errors.js';
import { withChecks, type AggregatorCore, type AggregatorDescriptor } from './aggregator.js';

export const sampleWeightedCore: AggregatorCore = (contributions, arrays) => {
  let total = 0;
  for (const { participant, sampleCount } of contributions) {
    if (sampleCount === undefined) {
      throw new ProtocolError(ErrorCode.Schema, `sample-weighted: ${participant} sent no sampleCount; every contribution needs one`);
    }
    if (!Number.isFinite(sampleCount) || sampleCount < 0) {
      throw new ProtocolError(ErrorCode.Value, `sample-weighted: ${participant} sent sampleCount ${sampleCount}; it must be a finite number ≥ 0`);
    }
    total += sampleCount;
  }
  if (total === 0) {
    throw new ProtocolError(ErrorCode.Value, `sample-weighted: every one of the ${contributions.length} sample counts is 0; nothing to weight by`);
  }
  const sum = new Float64Array(arrays[0]!.length);
  arrays.forEach((values, k) => {
    const weight = contributions[k]!.sampleCount! / total;
    if (weight === 0) return;
    for (let i = 0; i < values.length; i++) sum[i]! += weight * values[i]!;
  });
  return new Float32Array(sum);
};

export const sampleWeighted = withChecks('sample-weighted', sampleWeightedCore);

export const sampleWeightedAggregator = { name: 'sample-weighted', aggregate: sampleWeighted, core: sampleWeightedCore, plainMean: false, needsIndividualValues: false } as const satisfies AggregatorDescriptor;
