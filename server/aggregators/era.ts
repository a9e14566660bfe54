/**
 * Entropy reduction aggregation (ERA) of DS-FL: Itahara et al. 2021, "Distillation-Based
 * Semi-Supervised Federated Learning for Communication-Efficient Collaborative Training with
 * Non-IID Private Data", IEEE Transactions on Mobile Computing (arXiv 2008.06180).
 *
 *   p̄_r  = (1/n) Σ_k p_k,r                   the mean of the participants' probabilities
 *   ERA_r = softmax(p̄_r / T),  0 < T < 1      sharpened with a low temperature (T = 0.1 in DS-FL)
 *
 * Which form: the temperature divides the *mean probabilities themselves*, softmax(p̄/T). That
 * is what the reference implementations do — AIJack's DSFLServer (`softmax(mean /
 * era_temperature)`, default 0.1) and several independent DS-FL server handlers
 * (`F.softmax(mean_soft_labels / era_temperature)`), one of which cites the paper's Eqs. 7–8 for
 * it. It is *not* the power sharpening softmax(ln p̄ / T) ∝ p̄^{1/T} (MixMatch's "sharpen"). The
 * paper's own equation was not at hand when this was written (only its abstract), so the form
 * rests on that code. The code disagrees with itself on the inputs: AIJack averages whatever the
 * client model outputs (raw logits, for a model without a final softmax), the other handlers
 * average probabilities. Here values are probabilities, like all of codistill's
 * reference-predictions.
 *
 * What this form does and does not do: for two classes a, b the odds p_a/p_b become
 * exp((p̄_a − p̄_b)/T). That is sharper exactly when T < (p̄_a − p̄_b)/ln(p̄_a/p̄_b), the
 * logarithmic mean of p̄_a and p̄_b (which lies between their geometric and arithmetic means).
 * Since ln(x/y) ≥ x − y on (0, 1], T ≥ 1 never sharpens anything (hence refused), and T < 1
 * sharpens only pairs whose probabilities are not much smaller than T. The sharpening is
 * bounded too: no class can end more than e^{1/T} times likelier than another. So with T = 0.1
 * and 10 classes (the paper's MNIST setting) ERA sharpens strongly, but with 3 classes T = 0.5
 * already *raises* the entropy of a typical mean (see the tests), and with 1000 classes and
 * p̄ = (0.5, 0.5/999, …) T = 0.1 leaves only 0.13 on the top class. Choose T with C in mind.
 * The softmax subtracts the row maximum first, so no T > 0 overflows.
 */
import { sumOf } from './sums.js';
import { checkedSum, type Aggregator, type AggregatorCore, type AggregatorOptions, type AggregatorDescriptor } from './aggregator.js';

/** DS-FL's temperature. */
export const ERA_DEFAULT_TEMPERATURE = 0.1;

export const era: Aggregator = (contributions, options) => {
  const { arrays, sum } = checkedSum('era', contributions, options);
  const temperature = eraTemperature(options);
  return sharpenMeanRows(sum, 1 / arrays.length, options.classes, temperature);
};

export const eraCore: AggregatorCore = (_contributions, arrays, options) => {
  const temperature = eraTemperature(options);
  return sharpenMeanRows(sumOf(arrays), 1 / arrays.length, options.classes, temperature);
};

/** The temperature from the options, checked: 0 < T < 1 (T ≥ 1 never sharpens; see above). */
function eraTemperature(options: AggregatorOptions): number {
  const temperature = options.temperature ?? ERA_DEFAULT_TEMPERATURE;
  if (!(temperature > 0 && temperature < 1)) {
    throw new Error(
      `era: temperature must lie in (0, 1); got ${temperature}. ERA divides mean probabilities by T, and for T ≥ 1 ` +
        'that flattens every row instead of sharpening it; use the "mean" aggregator for an unsharpened ensemble.',
    );
  }
  return temperature;
}

/** softmax((scale · sum_r) / T) for every row r of a float64 sum. */
function sharpenMeanRows(sum: Float64Array, scale: number, classes: number, temperature: number): Float32Array {
  const out = new Float32Array(sum.length);
  const exps = new Float64Array(classes);
  const factor = scale / temperature;
  for (let base = 0; base < sum.length; base += classes) {
    let max = -Infinity;
    for (let c = 0; c < classes; c++) max = Math.max(max, sum[base + c]!);
    let total = 0;
    for (let c = 0; c < classes; c++) total += exps[c] = Math.exp((sum[base + c]! - max) * factor);
    for (let c = 0; c < classes; c++) out[base + c] = exps[c]! / total;
  }
  return out;
}

export const eraAggregator = { name: 'era', aggregate: era, core: eraCore, plainMean: false, needsIndividualValues: false } as const satisfies AggregatorDescriptor;
