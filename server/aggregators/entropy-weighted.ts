/**
 * Confidence (entropy) weighted mean, per reference sample: a fixed gate that lets the
 * participants that are sure about a sample speak louder on that sample.
 *
 *   H_k,r = −Σ_c p_k,rc · ln p_k,rc          (nats; 0 · ln 0 = 0)
 *   g_k,r = exp(−H_k,r) / Σ_j exp(−H_j,r)     (a softmax gate over negative entropies)
 *   p̄_rc = Σ_k g_k,r · p_k,rc
 *
 * Why exp(−H) rather than 1/(H + ε): H lies in [0, ln C], so exp(−H) lies in [1/C, 1] — a
 * one-hot participant outweighs a uniform one by at most C, needs no ε, and cannot take over a
 * sample by being (or claiming to be) certain; 1/(H + ε) gives a one-hot prediction weight 1/ε.
 * The gate is a convex combination, so rows of distributions stay distributions.
 *
 * Sources: the gate has the form of a mixture-of-experts gate (Jacobs et al. 1991, "Adaptive
 * Mixtures of Local Experts") and of ONE's gated on-the-fly ensemble teacher (Lan et al. 2018,
 * "Knowledge Distillation by On-the-Fly Native Ensemble"), but neither learns nor uses entropy:
 * their gates are trained. Using prediction entropy to judge knowledge in federated distillation
 * follows Selective-FD (Shao et al. 2024, "Selective knowledge sharing for privacy-preserving
 * federated distillation without a good teacher", Nature Communications), whose server drops
 * high-entropy (ambiguous) predictions with a hard threshold; this is the soft version. The
 * exact exp(−H) weighting is this library's choice, not a published formula.
 *
 * Values should be probabilities (the wire refuses rows off the simplex). Non-positive entries
 * add nothing to H, and H is clamped to [0, ln C], its range on the simplex, so that values off
 * the simplex cannot widen the gate's range beyond [1/C, 1] either.
 */
import { withChecks, type AggregatorCore, type AggregatorDescriptor } from './aggregator.js';

export const entropyWeightedCore: AggregatorCore = (_contributions, arrays, options) => {
  const { rows, classes } = options;
  const out = new Float32Array(rows * classes);
  const rowSums = new Float64Array(classes);
  const maxEntropy = Math.log(classes);
  for (let r = 0; r < rows; r++) {
    rowSums.fill(0);
    const base = r * classes;
    let gateTotal = 0;
    for (const values of arrays) {
      let entropy = 0;
      for (let c = 0; c < classes; c++) {
        const p = values[base + c]!;
        if (p > 0) entropy -= p * Math.log(p);
      }
      const gate = Math.exp(-Math.min(Math.max(entropy, 0), maxEntropy));
      gateTotal += gate;
      for (let c = 0; c < classes; c++) rowSums[c]! += gate * values[base + c]!;
    }
    for (let c = 0; c < classes; c++) out[base + c] = rowSums[c]! / gateTotal;
  }
  return out;
};

export const entropyWeighted = withChecks('entropy-weighted', entropyWeightedCore);

export const entropyWeightedAggregator = { name: 'entropy-weighted', aggregate: entropyWeighted, core: entropyWeightedCore, plainMean: false, needsIndividualValues: true } as const satisfies AggregatorDescriptor;
