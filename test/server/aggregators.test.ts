/**
 * Golden values for the aggregator library (server/aggregators), computed once in float64 with
 * numpy from the float32-rounded inputs below — by sorting and numpy.median, independently of
 * the quickselect the library uses — and stored here. Hand derivations of the cases that pin a
 * detail sit beside them. Relative tolerance 1e-5.
 */
import { describe, expect, it } from 'vitest';
import { leaveOneOutMeans, meanOf } from '../../server/aggregators/sums.js';
import {
  AGGREGATOR_NAMES,
  AGGREGATORS,
  aggregateExcluding,
  aggregatorFor,
  leaveOneOutAggregates,
  type AggregatorName,
  type AggregatorOptions,
  type Contribution,
} from '../../server/aggregators/index.js';
import { medianInPlace, selectInPlace, trimmedMeanInPlace } from '../../server/aggregators/order-statistics.js';
import { expectRelative } from '../golden.js';

const SHAPE = { rows: 2, classes: 3 };

// Five participants, two reference samples, three classes: probabilities.
const P = [
  [0.7, 0.2, 0.1, 0.1, 0.3, 0.6],
  [0.6, 0.3, 0.1, 0.2, 0.2, 0.6],
  [0.8, 0.1, 0.1, 0.1, 0.1, 0.8],
  [0.5, 0.25, 0.25, 0.25, 0.25, 0.5],
  [0.2, 0.5, 0.3, 0.3, 0.4, 0.3],
];
const SAMPLE_COUNTS = [100, 300, 50, 250, 0];
// Class 2 is held by p3 alone.
const LABEL_COUNTS = [[40, 10, 0], [0, 30, 0], [60, 0, 0], [0, 10, 25], [20, 50, 0]];

// Three participants' logits, for mean-logits.
const Z = [
  [2.0, -1.0, 0.5, 0.1, 0.2, -0.3],
  [1.5, 0.0, -2.0, -1.0, 3.0, 0.25],
  [-0.5, 2.5, 1.0, 0.0, -0.75, 1.75],
];

const GOLDEN = {
  mean: [0.5600000053644181, 0.27000000327825546, 0.17000000327825546, 0.1900000035762787, 0.25000000447034837, 0.5600000143051147],
  meanLogits: [1.0, 0.5, -0.16666666666666666, -0.29999999950329465, 0.8166666676600774, 0.5666666626930237],
  sampleWeighted: [0.592857152223587, 0.25357143421258244, 0.15357142952936037, 0.19642857302512443, 0.2250000030866691, 0.5785714430468423],
  labelWeighted: [0.512163891851941, 0.29577464941906584, 0.19206145872899322, 0.14059754171774816, 0.33216168960750825, 0.5272407686747436],
  /** p0..p2 with LABEL_COUNTS[0..2]: nobody holds class 2. */
  labelWeightedNobody: [0.669603518329801, 0.24229075453769025, 0.08810572713250878, 0.10084033493486877, 0.22689075548175233, 0.6722689095833789],
  entropyWeighted: [0.5867285602005479, 0.25384686872291495, 0.15942458302355933, 0.17903336550293583, 0.23626032703559774, 0.5847063296264648],
  eraT01: [0.9300031891326986, 0.051171769061282686, 0.018825041806018777, 0.023111006024378055, 0.04211099894945924, 0.9347779950261627],
  eraT05: [0.49546540802736294, 0.277410271486735, 0.227124320485902, 0.23677424004864817, 0.2669622106673158, 0.496263549284036],
  medianOdd: [0.6315789556239118, 0.26315788771967497, 0.10526315665641323, 0.19047618844882167, 0.23809523201313165, 0.5714285795380467],
  /** p0..p3. */
  medianEven: [0.6666666666666666, 0.23076923018141376, 0.10256410315191956, 0.15384615178879438, 0.23076922577278633, 0.6153846224384193],
  trimmed02: [0.5999999980131785, 0.25000000248352683, 0.14999999950329462, 0.18333333072563018, 0.2499999993791183, 0.5666666698952516],
  /** Leave p1 out. */
  looMedianP1: [0.5999999962747097, 0.22500000232830644, 0.17500000139698388, 0.1749999974854291, 0.2750000008381903, 0.5500000016763806],
  looEraP1: [0.9233054160155494, 0.052089327348574285, 0.024605256635876354, 0.024605254049177527, 0.05208932381301146, 0.9233054221378111],
  /** Row entropies (nats) of the mean and of ERA at T = 0.1 and 0.5. */
  entropyOfMean: [0.9794510181563982, 0.9868108749968183],
  entropyOfEraT01: [0.2943830584472106, 0.28350104201570253],
  entropyOfEraT05: [1.0403126694510498, 1.0413776625917022],
};

function contributions(values: number[][], extra: (k: number) => Partial<Contribution> = () => ({})): Contribution[] {
  return values.map((v, k) => ({ participant: `p${k}`, values: new Float32Array(v), ...extra(k) }));
}

const WITH_METADATA = contributions(P, (k) => ({ sampleCount: SAMPLE_COUNTS[k]!, labelCounts: LABEL_COUNTS[k]! }));

function rowEntropies(values: Float32Array, classes: number): number[] {
  const out: number[] = [];
  for (let base = 0; base < values.length; base += classes) {
    let h = 0;
    for (let c = 0; c < classes; c++) {
      const p = values[base + c]!;
      if (p > 0) h -= p * Math.log(p);
    }
    out.push(h);
  }
  return out;
}

function maxAbsDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

describe('aggregators against golden values', () => {
  it('mean: (1/n) Σ p_k', () => {
    expectRelative(AGGREGATORS.mean(contributions(P), SHAPE), GOLDEN.mean);
  });

  it('mean-logits: (1/n) Σ z_k, logits in and out, nothing renormalised', () => {
    const out = AGGREGATORS['mean-logits'](contributions(Z), SHAPE);
    // Row 0 by hand: (2 + 1.5 − 0.5)/3 = 1, (−1 + 0 + 2.5)/3 = 0.5, (0.5 − 2 + 1)/3 = −1/6.
    expectRelative(out, GOLDEN.meanLogits);
  });

  it('sample-weighted: Σ (n_k/n) p_k, a zero count weighs nothing', () => {
    expectRelative(AGGREGATORS['sample-weighted'](WITH_METADATA, SHAPE), GOLDEN.sampleWeighted);
  });

  it('sample-weighted equals the mean when every count is equal', () => {
    const equal = contributions(P, () => ({ sampleCount: 42 }));
    expectRelative(AGGREGATORS['sample-weighted'](equal, SHAPE), AGGREGATORS.mean(equal, SHAPE), 1e-6);
  });

  it('label-weighted: column c weighted by L_kc / Σ_j L_jc, then rows renormalised; a class one participant holds is its alone', () => {
    // Row 0 before renormalising: class 0 from p0, p2, p4 with 40:60:20 → (28 + 48 + 4)/120 = 2/3;
    // class 1 from p0, p1, p3, p4 with 10:30:10:50 → 0.385; class 2 from p3 alone → 0.25.
    // Sum 1.301667, so 0.51216…, 0.29577…, 0.19206….
    const out = AGGREGATORS['label-weighted'](WITH_METADATA, SHAPE);
    expectRelative(out, GOLDEN.labelWeighted);
    expectRelative([out[0]! / out[2]!, out[3]! / out[5]!], [(2 / 3) / 0.25, ((40 * 0.1 + 60 * 0.1 + 20 * 0.3) / 120) / 0.5]);
  });

  it('label-weighted: a class nobody holds falls back to equal weights', () => {
    // Class 2 has no holder among p0..p2: its column is the plain mean, (0.1 + 0.1 + 0.1)/3 in row 0.
    const three = WITH_METADATA.slice(0, 3);
    const out = AGGREGATORS['label-weighted'](three, SHAPE);
    expectRelative(out, GOLDEN.labelWeightedNobody);
    expectRelative([out[2]! / out[0]!], [0.1 / ((40 * 0.7 + 60 * 0.8) / 100)]);
  });

  it('entropy-weighted: per row, weights exp(−H_k) normalised over participants', () => {
    const out = AGGREGATORS['entropy-weighted'](contributions(P), SHAPE);
    expectRelative(out, GOLDEN.entropyWeighted);
    // A convex combination of distributions: rows still sum to 1.
    expect(Math.abs(out[0]! + out[1]! + out[2]! - 1)).toBeLessThan(1e-6);
    // The confident participants (p2: 0.8 on class 0) pull class 0 above the plain mean.
    expect(out[0]!).toBeGreaterThan(GOLDEN.mean[0]!);
  });

  it('entropy-weighted: equally confident participants get equal weights, so the mean', () => {
    // Permutations of one distribution have equal entropies.
    const permuted = contributions([[0.7, 0.2, 0.1, 0.6, 0.3, 0.1], [0.1, 0.7, 0.2, 0.1, 0.6, 0.3], [0.2, 0.1, 0.7, 0.3, 0.1, 0.6]]);
    expectRelative(AGGREGATORS['entropy-weighted'](permuted, SHAPE), AGGREGATORS.mean(permuted, SHAPE), 1e-6);
  });

  it('era: softmax(mean / T), and at T = 0.1 the entropy goes down against the mean', () => {
    const out = AGGREGATORS.era(contributions(P), { ...SHAPE, temperature: 0.1 });
    expectRelative(out, GOLDEN.eraT01);
    expectRelative(rowEntropies(out, 3), GOLDEN.entropyOfEraT01);
    expectRelative(rowEntropies(AGGREGATORS.mean(contributions(P), SHAPE), 3), GOLDEN.entropyOfMean);
    rowEntropies(out, 3).forEach((h, r) => expect(h).toBeLessThan(GOLDEN.entropyOfMean[r]! / 3));
    // Row 0 by hand: mean (0.56, 0.27, 0.17)/0.1 → exp(5.6), exp(2.7), exp(1.7) normalised.
    const e = [Math.exp(5.6), Math.exp(2.7), Math.exp(1.7)];
    expectRelative(out.subarray(0, 3), e.map((x) => x / (e[0]! + e[1]! + e[2]!)));
    // The class order of the mean is kept.
    expect(out[0]! > out[1]! && out[1]! > out[2]!).toBe(true);
  });

  it('era defaults to T = 0.1', () => {
    expectRelative(AGGREGATORS.era(contributions(P), SHAPE), GOLDEN.eraT01);
  });

  it('era is softmax(p̄/T), not p̄^(1/T): at T = 0.5 with three classes it raises the entropy', () => {
    // Sharper only where T is below the logarithmic mean of the two probabilities; here it is not.
    const out = AGGREGATORS.era(contributions(P), { ...SHAPE, temperature: 0.5 });
    expectRelative(out, GOLDEN.eraT05);
    expectRelative(rowEntropies(out, 3), GOLDEN.entropyOfEraT05);
    rowEntropies(out, 3).forEach((h, r) => expect(h).toBeGreaterThan(GOLDEN.entropyOfMean[r]!));
  });

  it('median, odd n: the middle value per coordinate, rows renormalised', () => {
    // Row 0, class 0: 0.2 0.5 [0.6] 0.7 0.8; class 1: 0.1 0.2 [0.25] 0.3 0.5; class 2: 0.1 0.1 [0.1] 0.25 0.3.
    // Sum 0.95 → 0.6316, 0.2632, 0.1053.
    expectRelative(AGGREGATORS.median(contributions(P), SHAPE), GOLDEN.medianOdd);
  });

  it('median, even n: the mean of the two middle values, rows renormalised', () => {
    // Row 0, class 0: 0.5 [0.6 0.7] 0.8 → 0.65; class 1: 0.1 [0.2 0.25] 0.3 → 0.225; class 2: 0.1 [0.1 0.1] 0.25 → 0.1.
    // Sum 0.975 → 2/3, 0.2308, 0.1026.
    expectRelative(AGGREGATORS.median(contributions(P.slice(0, 4)), SHAPE), GOLDEN.medianEven);
  });

  it('median: a row whose medians are all 0 becomes uniform', () => {
    const disagree = contributions([[1, 0, 0], [0, 1, 0], [0, 0, 1]]);
    expectRelative(AGGREGATORS.median(disagree, { rows: 1, classes: 3 }), [1 / 3, 1 / 3, 1 / 3]);
  });

  it('trimmed mean, β = 0.2 of 5: drops the 1 smallest and 1 largest value of each coordinate', () => {
    // Row 0, class 0: 0.2 [0.5 0.6 0.7] 0.8 → 0.6 (drops p4 and p2); class 1: 0.1 [0.2 0.25 0.3] 0.5 → 0.25
    // (drops p2 and p4); class 2: 0.1 [0.1 0.1 0.25] 0.3 → 0.15 (drops one of p0..p2 and p4).
    // Row 1, class 0: 0.1 [0.1 0.2 0.25] 0.3 → 0.18333 (drops p0 or p2, and p4); class 1: 0.1 [0.2 0.25 0.3] 0.4
    // → 0.25 (drops p2 and p4); class 2: 0.3 [0.5 0.6 0.6] 0.8 → 0.56667 (drops p4 and p2).
    // These rows already sum to 1, so renormalising leaves them.
    const out = AGGREGATORS['trimmed-mean'](contributions(P), { ...SHAPE, trimFraction: 0.2 });
    expectRelative(out, GOLDEN.trimmed02);
    expectRelative(out, [0.6, 0.25, 0.15, 0.55 / 3, 0.25, 1.7 / 3]);
  });

  it('trimmed mean: ⌊β·n⌋ = 0 is the mean, and trimming down to one value is the median', () => {
    expectRelative(AGGREGATORS['trimmed-mean'](contributions(P), SHAPE), GOLDEN.mean); // default β = 0.1: ⌊0.5⌋ = 0
    expectRelative(AGGREGATORS['trimmed-mean'](contributions(P), { ...SHAPE, trimFraction: 0.4 }), GOLDEN.medianOdd);
  });

  it('trimmed mean counts ⌊β·n⌋ without floating-point loss: 0.29 · 100 trims 29, not 28', () => {
    // 0.29 * 100 is 28.999999999999996 in float64. p_k puts k² on class 0 and 1000 on class 1;
    // trimming 29 per side keeps k = 29..70, Σ k² = 109081 over 42 values (28 would keep 28..71: 114906/44).
    const many = Array.from({ length: 100 }, (_, k) => ({ participant: `p${k}`, values: new Float32Array([k * k, 1000]) }));
    const out = AGGREGATORS['trimmed-mean'](many, { rows: 1, classes: 2, trimFraction: 0.29 });
    expectRelative([out[0]! / out[1]!], [109081 / 42 / 1000]);
  });
});

describe('robust aggregators against an adversarial participant', () => {
  // A sixth participant that flips every prediction and scales it by 10.
  const adversary = [0, 0, 10, 10, 0, 0];
  const honestMean = GOLDEN.mean;
  const attacked = contributions([...P, adversary]);

  it('moves the mean far, the median and the trimmed mean hardly', () => {
    const meanShift = maxAbsDifference(AGGREGATORS.mean(attacked, SHAPE), honestMean);
    const medianShift = maxAbsDifference(AGGREGATORS.median(attacked, SHAPE), honestMean);
    const trimmedShift = maxAbsDifference(AGGREGATORS['trimmed-mean'](attacked, { ...SHAPE, trimFraction: 0.2 }), honestMean);
    expect(meanShift).toBeGreaterThan(1.5); // float64 reference: 1.6383
    expect(medianShift).toBeLessThan(0.04); // 0.0350
    expect(trimmedShift).toBeLessThan(0.045); // 0.0397
  });

  it('keeps the honest participants’ top class', () => {
    for (const out of [AGGREGATORS.median(attacked, SHAPE), AGGREGATORS['trimmed-mean'](attacked, { ...SHAPE, trimFraction: 0.2 })]) {
      expect(out[0]!).toBeGreaterThan(Math.max(out[1]!, out[2]!));
      expect(out[5]!).toBeGreaterThan(Math.max(out[3]!, out[4]!));
    }
    const mean = AGGREGATORS.mean(attacked, SHAPE);
    expect(mean[2]!).toBeGreaterThan(mean[0]!); // the mean has been turned
  });
});

describe('leave-one-out forms', () => {
  const options: AggregatorOptions = { ...SHAPE, temperature: 0.1, trimFraction: 0.25 };

  for (const name of AGGREGATOR_NAMES) {
    it(`${name}: aggregateExcluding equals the aggregate recomputed over the others`, () => {
      const inputs = name === 'mean-logits' ? contributions(Z) : WITH_METADATA;
      for (const left of inputs) {
        const others = inputs.filter((c) => c !== left);
        const expected = AGGREGATORS[name](others, options);
        expectRelative(aggregateExcluding(name, inputs, left.participant, options), expected, 1e-6);
      }
    });

    it(`${name}: leaveOneOutAggregates gives every participant its aggregateExcluding`, () => {
      const inputs = name === 'mean-logits' ? contributions(Z) : WITH_METADATA;
      const all = leaveOneOutAggregates(name, inputs, options);
      expect([...all.keys()]).toEqual(inputs.map((c) => c.participant));
      for (const { participant } of inputs) {
        expectRelative(all.get(participant)!, aggregateExcluding(name, inputs, participant, options), 1e-6);
      }
    });
  }

  it('mean: the sum-minus-own form is leaveOneOutMeans exactly', () => {
    const inputs = contributions(P);
    const expected = leaveOneOutMeans(inputs.map((c) => c.values));
    inputs.forEach(({ participant }, k) => {
      expect([...aggregateExcluding('mean', inputs, participant, SHAPE)]).toEqual([...expected[k]!]);
    });
    expectRelative(aggregateExcluding('mean', inputs, 'p1', SHAPE), meanOf(inputs.filter((c) => c.participant !== 'p1').map((c) => c.values)), 1e-6);
  });

  it('golden: the median and ERA of everyone but p1', () => {
    expectRelative(aggregateExcluding('median', contributions(P), 'p1', SHAPE), GOLDEN.looMedianP1);
    expectRelative(aggregateExcluding('era', contributions(P), 'p1', { ...SHAPE, temperature: 0.1 }), GOLDEN.looEraP1);
  });

  it('a participant that contributed nothing gets the aggregate of all; a lone contributor gets an error', () => {
    expectRelative(aggregateExcluding('median', contributions(P), 'late', SHAPE), GOLDEN.medianOdd);
    expectRelative(aggregateExcluding('mean', contributions(P), 'late', SHAPE), GOLDEN.mean);
    expect(() => aggregateExcluding('mean', contributions(P.slice(0, 1)), 'p0', SHAPE)).toThrow(/p0 is the only contributor/);
    expect(() => leaveOneOutAggregates('median', contributions(P.slice(0, 1)), SHAPE)).toThrow(/at least 2 contributors; got 1/);
  });
});

describe('order statistics on the reused scratch', () => {
  it('match a sort for random columns, with ties, small and large n', () => {
    let seed = 11;
    const rand = () => (seed = (seed * 1664525 + 1013904223) >>> 0) / 2 ** 32;
    for (let trial = 0; trial < 300; trial++) {
      const n = 1 + Math.floor(rand() * 60);
      const column = Array.from({ length: n }, () => (rand() < 0.3 ? 0.5 : Math.round(rand() * 20) / 20));
      const sorted = [...column].sort((a, b) => a - b);
      const k = Math.floor(rand() * n);
      const a = new Float64Array(column);
      selectInPlace(a, 0, n - 1, k);
      expect(a[k]).toBe(sorted[k]);
      for (let i = 0; i < k; i++) expect(a[i]!).toBeLessThanOrEqual(a[k]!);
      for (let i = k + 1; i < n; i++) expect(a[i]!).toBeGreaterThanOrEqual(a[k]!);

      const middle = n % 2 === 1 ? sorted[(n - 1) / 2]! : (sorted[n / 2 - 1]! + sorted[n / 2]!) / 2;
      expect(medianInPlace(new Float64Array(column), n)).toBeCloseTo(middle, 12);
      const trim = Math.floor(rand() * (Math.floor((n - 1) / 2) + 1)); // keeps at least one value
      const kept = sorted.slice(trim, n - trim);
      expect(trimmedMeanInPlace(new Float64Array(column), n, trim)).toBeCloseTo(kept.reduce((s, x) => s + x, 0) / kept.length, 12);
    }
  });
});

describe('refusals', () => {
  const good = contributions(P);

  it('no contributions, a bad shape, a participant twice', () => {
    for (const name of AGGREGATOR_NAMES) {
      expect(() => AGGREGATORS[name]([], SHAPE)).toThrow(new RegExp(`^${name}: no contributions to aggregate`));
    }
    expect(() => AGGREGATORS.mean(good, { rows: 0, classes: 3 })).toThrow(/rows and classes must be positive integers; got rows=0/);
    const short = [...good.slice(0, 2), { participant: 'p9', values: new Float32Array(5) }];
    expect(() => AGGREGATORS.median(short, SHAPE)).toThrow('E_SHAPE: median: p9 sent 5 values; expected rows × classes = 2 × 3 = 6');
    expect(() => AGGREGATORS.mean([good[0]!, good[0]!], SHAPE)).toThrow(/p0 contributes twice/);
  });

  it('NaN and ±Infinity, with where they are', () => {
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      const values = new Float32Array(P[1]!);
      values[4] = bad;
      const inputs = [good[0]!, { participant: 'p1', values }];
      for (const name of AGGREGATOR_NAMES) {
        expect(() => aggregatorFor(name)(inputs.map((c, k) => ({ ...c, sampleCount: 1, labelCounts: LABEL_COUNTS[k]! })), SHAPE)).toThrow(
          `E_VALUE: ${name}: p1 sent ${bad} at row 1, class 1; values must be finite numbers`,
        );
      }
    }
  });

  it('sample-weighted: a count missing, negative, or all zero', () => {
    expect(() => AGGREGATORS['sample-weighted'](good, SHAPE)).toThrow('E_SCHEMA: sample-weighted: p0 sent no sampleCount');
    const negative = contributions(P, (k) => ({ sampleCount: k === 2 ? -1 : 10 }));
    expect(() => AGGREGATORS['sample-weighted'](negative, SHAPE)).toThrow(/E_VALUE: sample-weighted: p2 sent sampleCount -1/);
    const zeros = contributions(P, () => ({ sampleCount: 0 }));
    expect(() => AGGREGATORS['sample-weighted'](zeros, SHAPE)).toThrow(/E_VALUE: sample-weighted: every one of the 5 sample counts is 0/);
  });

  it('label-weighted: counts missing, of the wrong length, or negative', () => {
    expect(() => AGGREGATORS['label-weighted'](good, SHAPE)).toThrow(/E_SCHEMA: label-weighted: p0 sent no labelCounts/);
    const short = contributions(P, () => ({ labelCounts: [1, 2] }));
    expect(() => AGGREGATORS['label-weighted'](short, SHAPE)).toThrow(/E_SHAPE: label-weighted: p0 sent 2 label counts; expected one per class, 3/);
    const negative = contributions(P, (k) => ({ labelCounts: k === 3 ? [1, -2, 3] : [1, 1, 1] }));
    expect(() => AGGREGATORS['label-weighted'](negative, SHAPE)).toThrow(/E_VALUE: label-weighted: p3 sent label count -2 for class 1/);
  });

  it('era: a temperature outside (0, 1); trimmed mean: a fraction outside [0, 0.5)', () => {
    for (const temperature of [0, -0.1, 1, 4, Number.NaN]) {
      expect(() => AGGREGATORS.era(good, { ...SHAPE, temperature })).toThrow(/era: temperature must lie in \(0, 1\)/);
    }
    for (const trimFraction of [-0.1, 0.5, Number.NaN]) {
      expect(() => AGGREGATORS['trimmed-mean'](good, { ...SHAPE, trimFraction })).toThrow(/trimFraction must lie in \[0, 0.5\)/);
    }
  });

  it('an unknown aggregator name, listing the known ones', () => {
    const known = 'mean, mean-logits, sample-weighted, label-weighted, entropy-weighted, era, median, trimmed-mean';
    expect(() => aggregatorFor('average')).toThrow(`unknown aggregator "average"; choose one of ${known}`);
    expect(() => aggregatorFor('constructor')).toThrow(/unknown aggregator "constructor"/);
    expect(() => aggregateExcluding('toString' as AggregatorName, good, 'p0', SHAPE)).toThrow(/unknown aggregator "toString"/);
    expect(AGGREGATOR_NAMES.join(', ')).toBe(known);
  });
});
