/**
 * Per-class label-count weighted mean, for non-IID participants: a participant speaks for a
 * class in proportion to how many private samples of that class it holds.
 *
 *   w_kc = L_kc / Σ_j L_jc          (1/n for every k when Σ_j L_jc = 0: nobody holds class c)
 *   q_rc = Σ_k w_kc · p_k,rc        (column c of every row weighted by the class-c weights)
 *   p̄_rc = q_rc / Σ_c' q_rc'       (rows renormalised to sum 1)
 *
 * Source: the class-level ensemble of FedFTG (Zhang et al. 2022, "Fine-tuning Global Model via
 * Data-Free Knowledge Distillation for Non-IID Federated Learning", CVPR) uses the same
 * weights α_k^y = n_k^y / n^y. There they weight a client's *whole* output for a sample
 * generated with label y; on an unlabeled reference set y is unknown, so here the weight of
 * class c is applied to column c instead: each class's probability comes mostly from the
 * participants that have seen that class, and a participant that never saw class c cannot
 * vote it up. Column weights no longer sum a row to 1, hence the renormalisation. (FedDF, Lin
 * et al. 2020, by contrast averages uniformly.)
 *
 * Every contribution must carry labelCounts: `classes` finite counts ≥ 0.
 */
import { ErrorCode, ProtocolError } from '../../protocol/errors.js';
import { withChecks, writeNormalisedRow, type AggregatorCore, type AggregatorDescriptor } from './aggregator.js';

export const labelWeightedCore: AggregatorCore = (contributions, arrays, options) => {
  const { rows, classes } = options;
  const n = arrays.length;
  // weights[k·C + c] = w_kc; the class totals first, then each participant's share.
  const weights = new Float64Array(n * classes);
  const classTotals = new Float64Array(classes);
  contributions.forEach(({ participant, labelCounts }, k) => {
    if (labelCounts === undefined) {
      throw new ProtocolError(ErrorCode.Schema, `label-weighted: ${participant} sent no labelCounts; every contribution needs one count per class`);
    }
    if (labelCounts.length !== classes) {
      throw new ProtocolError(ErrorCode.Shape, `label-weighted: ${participant} sent ${labelCounts.length} label counts; expected one per class, ${classes}`);
    }
    for (let c = 0; c < classes; c++) {
      const count = labelCounts[c]!;
      if (!Number.isFinite(count) || count < 0) {
        throw new ProtocolError(ErrorCode.Value, `label-weighted: ${participant} sent label count ${count} for class ${c}; counts must be finite numbers ≥ 0`);
      }
      weights[k * classes + c] = count;
      classTotals[c]! += count;
    }
  });
  for (let c = 0; c < classes; c++) {
    const total = classTotals[c]!;
    for (let k = 0; k < n; k++) weights[k * classes + c] = total > 0 ? weights[k * classes + c]! / total : 1 / n;
  }

  const out = new Float32Array(rows * classes);
  const rowSums = new Float64Array(classes);
  for (let r = 0; r < rows; r++) {
    rowSums.fill(0);
    const base = r * classes;
    for (let k = 0; k < n; k++) {
      const values = arrays[k]!;
      const w = k * classes;
      for (let c = 0; c < classes; c++) rowSums[c]! += weights[w + c]! * values[base + c]!;
    }
    writeNormalisedRow(out, r, rowSums, classes);
  }
  return out;
};

export const labelWeighted = withChecks('label-weighted', labelWeightedCore);

export const labelWeightedAggregator = { name: 'label-weighted', aggregate: labelWeighted, core: labelWeightedCore, plainMean: false, needsIndividualValues: false } as const satisfies AggregatorDescriptor;
