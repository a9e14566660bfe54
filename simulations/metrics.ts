/**
 * Per-round metrics on predicted probabilities: pure functions over row-major Float32Array
 * [n, C] (each row a distribution over C classes), accumulated in float64.
 *
 * Ties in argmax go to the lowest class index, everywhere (accuracy, churn, calibration), so
 * every metric agrees on what "the prediction" of a row is. Logarithms are natural (nats).
 */

function checkProbs(probs: Float32Array, numClasses: number, what: string): number {
  if (!Number.isInteger(numClasses) || numClasses < 1) {
    throw new RangeError(`E_SHAPE: numClasses must be a positive integer; got ${numClasses}`);
  }
  if (probs.length === 0 || probs.length % numClasses !== 0) {
    throw new RangeError(`E_SHAPE: ${what} has ${probs.length} values, which is not a positive multiple of ${numClasses} classes`);
  }
  return probs.length / numClasses;
}

function checkLabels(labels: ArrayLike<number>, rows: number, numClasses: number): void {
  if (labels.length !== rows) {
    throw new RangeError(`E_SHAPE: ${labels.length} labels for ${rows} rows of probabilities`);
  }
  for (let i = 0; i < labels.length; i++) {
    const c = labels[i]!;
    if (!Number.isInteger(c) || c < 0 || c >= numClasses) {
      throw new RangeError(`E_LABEL: label ${c} at row ${i} is outside [0, ${numClasses})`);
    }
  }
}

/** Index of the largest value of row `row`; the first one on ties. */
export function argmaxRow(probs: Float32Array, numClasses: number, row: number): number {
  const base = row * numClasses;
  let best = 0;
  let bestValue = probs[base]!;
  for (let c = 1; c < numClasses; c++) {
    const v = probs[base + c]!;
    if (v > bestValue) {
      bestValue = v;
      best = c;
    }
  }
  return best;
}

/** Fraction of rows whose argmax is the label. */
export function accuracy(probs: Float32Array, labels: ArrayLike<number>, numClasses: number): number {
  const n = checkProbs(probs, numClasses, 'probs');
  checkLabels(labels, n, numClasses);
  let correct = 0;
  for (let i = 0; i < n; i++) if (argmaxRow(probs, numClasses, i) === labels[i]) correct++;
  return correct / n;
}

/**
 * Accuracy within each true class: acc(c) = |{i : yᵢ = c, argmax pᵢ = c}| / |{i : yᵢ = c}|.
 * NaN for a class with no rows (there is no accuracy to report, and 0 would read as a failure).
 */
export function perClassAccuracy(probs: Float32Array, labels: ArrayLike<number>, numClasses: number): number[] {
  const n = checkProbs(probs, numClasses, 'probs');
  checkLabels(labels, n, numClasses);
  const correct = new Array<number>(numClasses).fill(0);
  const total = new Array<number>(numClasses).fill(0);
  for (let i = 0; i < n; i++) {
    const y = labels[i]!;
    total[y]!++;
    if (argmaxRow(probs, numClasses, i) === y) correct[y]!++;
  }
  return correct.map((k, c) => (total[c]! === 0 ? NaN : k / total[c]!));
}

/**
 * Personalised accuracy: per-class accuracy weighted by a site's own label distribution,
 * Σ_k w_k·acc_k over the classes the test set holds, the weights renormalised over those (a test
 * set without some class says nothing of it; its NaN must not sink the rest). NaN when the test
 * set holds none of the site's classes.
 */
export function personalisedAccuracy(perClass: readonly number[], shares: readonly number[]): number {
  let weighted = 0;
  let weight = 0;
  let missing = false;
  shares.forEach((share, k) => {
    if (!(share > 0)) return;
    const accuracy = perClass[k]!;
    if (Number.isNaN(accuracy)) missing = true;
    else {
      weighted += share * accuracy;
      weight += share;
    }
  });
  if (!(weight > 0)) return Number.NaN;
  // With every class present the shares already sum to 1: left undivided, as it always was.
  return missing ? weighted / weight : weighted;
}

/**
 * Expected calibration error, Guo, Pleiss, Sun & Weinberger (2017), "On calibration of modern
 * neural networks", ICML, §2 (after Naeini, Cooper & Hauskrecht 2015):
 *
 *   ECE = Σ_m (|B_m| / n) · |acc(B_m) − conf(B_m)|
 *
 * where conf_i = max_c p_ic, ŷ_i = argmax_c p_ic, and B_m holds the rows with conf_i in
 * ((m−1)/M, m/M], m = 1…M (equal-width bins; a confidence of exactly 0 goes to the first bin).
 * acc(B_m) is the fraction of B_m with ŷ_i = y_i, conf(B_m) their mean confidence; empty bins
 * contribute nothing. Guo et al. use M = 15. Equivalent to the reference implementation
 * (gpleiss/temperature_scaling, `_ECELoss`), which bins by `conf > lower and conf <= upper`.
 */
export function expectedCalibrationError(probs: Float32Array, labels: ArrayLike<number>, numClasses: number, bins = 15): number {
  const n = checkProbs(probs, numClasses, 'probs');
  checkLabels(labels, n, numClasses);
  if (!Number.isInteger(bins) || bins < 1) throw new RangeError(`E_RANGE: bins must be a positive integer; got ${bins}`);
  const count = new Float64Array(bins);
  const correct = new Float64Array(bins);
  const confidence = new Float64Array(bins);
  for (let i = 0; i < n; i++) {
    const predicted = argmaxRow(probs, numClasses, i);
    const conf = probs[i * numClasses + predicted]!;
    // Bin m (0-based) holds (m/M, (m+1)/M]; start from ceil(conf·M) − 1 and settle the
    // boundary cases against the same m/M values the definition uses.
    let m = Math.min(bins - 1, Math.max(0, Math.ceil(conf * bins) - 1));
    while (m > 0 && conf <= m / bins) m--;
    while (m < bins - 1 && conf > (m + 1) / bins) m++;
    count[m]!++;
    confidence[m]! += conf;
    if (predicted === labels[i]) correct[m]!++;
  }
  let ece = 0;
  for (let m = 0; m < bins; m++) {
    const k = count[m]!;
    if (k === 0) continue;
    ece += (k / n) * Math.abs(correct[m]! / k - confidence[m]! / k);
  }
  return ece;
}

/**
 * Mean Shannon entropy of the rows, H(p) = −Σ_c p_c ln p_c (0 ln 0 = 0), in nats; ln C for a
 * uniform row, 0 for a one-hot row. On the consensus (the mean of all participants'
 * probabilities) it is the consensus entropy: how undecided the ensemble is.
 */
export function meanEntropy(probs: Float32Array, numClasses: number): number {
  const n = checkProbs(probs, numClasses, 'probs');
  let total = 0;
  for (let i = 0; i < probs.length; i++) {
    const p = probs[i]!;
    if (p > 0) total -= p * Math.log(p);
  }
  return total / n;
}

/**
 * KL(p‖q) = Σ_c p_c (ln p_c − ln q_c), averaged over rows (batch-mean: divided by n, not by
 * n·C), in nats. Terms with p_c = 0 are 0; a class with p_c > 0 and q_c = 0 makes the row's
 * divergence +Infinity, and so the mean — reported as is rather than hidden by an epsilon.
 * For a participant's divergence from the consensus, p = the participant, q = the consensus
 * (which is positive wherever any participant is, so the value is finite).
 */
export function meanKl(p: Float32Array, q: Float32Array, numClasses: number): number {
  const n = checkProbs(p, numClasses, 'p');
  if (q.length !== p.length) throw new RangeError(`E_SHAPE: p has ${p.length} values but q has ${q.length}`);
  let total = 0;
  for (let i = 0; i < p.length; i++) {
    const pi = p[i]!;
    if (pi > 0) total += pi * (Math.log(pi) - Math.log(q[i]!));
  }
  return total / n;
}

/**
 * Prediction churn between two rounds: the fraction of rows whose argmax changed,
 * (1/n) Σ_i [argmax prev_i ≠ argmax probs_i] (Milani Fard et al. 2016, "Launch and iterate:
 * reducing prediction churn", NeurIPS, define churn between two models this way).
 */
export function predictionChurn(prevProbs: Float32Array, probs: Float32Array, numClasses: number): number {
  const n = checkProbs(probs, numClasses, 'probs');
  if (prevProbs.length !== probs.length) {
    throw new RangeError(`E_SHAPE: previous round has ${prevProbs.length} values but this round ${probs.length}`);
  }
  let changed = 0;
  for (let i = 0; i < n; i++) if (argmaxRow(prevProbs, numClasses, i) !== argmaxRow(probs, numClasses, i)) changed++;
  return changed / n;
}

/** Elementwise mean of several participants' [n, C] probabilities: the consensus. Summed in float64. */
export function meanProbabilities(all: readonly Float32Array[]): Float32Array {
  const first = all[0];
  if (first === undefined) throw new RangeError('E_SHAPE: the mean of no probability arrays is undefined');
  const sum = new Float64Array(first.length);
  all.forEach((probs, k) => {
    if (probs.length !== first.length) throw new RangeError(`E_SHAPE: array ${k} has ${probs.length} values; array 0 has ${first.length}`);
    for (let i = 0; i < probs.length; i++) sum[i]! += probs[i]!;
  });
  const out = new Float32Array(first.length);
  for (let i = 0; i < out.length; i++) out[i] = sum[i]! / all.length;
  return out;
}

/**
 * A mean over seeds with its spread: "mean ± sd" over two or more, and over one run the value
 * alone with "(n = 1)" — a standard deviation of one run is not 0, it is unknown.
 */
export function meanWithSpread(s: { mean: number; sd: number; n: number }, format: (x: number) => string): string {
  return s.n === 1 ? `${format(s.mean)} (n = 1)` : `${format(s.mean)} ± ${format(s.sd)}`;
}
