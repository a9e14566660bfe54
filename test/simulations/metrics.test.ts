import { describe, it, expect } from 'vitest';
import {
  accuracy,
  argmaxRow,
  expectedCalibrationError,
  meanEntropy,
  meanKl,
  meanProbabilities,
  perClassAccuracy,
  personalisedAccuracy,
  predictionChurn,
} from '../../simulations/metrics.js';

/**
 * Goldens computed once with NumPy 2.4 (float64 on these values cast to float32), independently
 * of the TypeScript: ECE by the reference implementation's binning (gpleiss/temperature_scaling
 * `_ECELoss`: `conf > lower & conf <= upper` over `linspace(0, 1, M + 1)`), entropy and KL with
 * 0·ln 0 = 0, argmax ties to the first index (as numpy.argmax). 20 rows, 5 classes; row 3 and
 * row 7 of P are ties, rows 3, 7, 18 of P hold zeros.
 */
const C = 5;
// prettier-ignore
const P = Float32Array.from([
  0.6224, 0.2094, 0.0074, 0.0064, 0.1544,
  0.4655, 0.0615, 0.1783, 0.1149, 0.1798,
  0.0602, 0.2075, 0.0513, 0.648, 0.033,
  0.5, 0.5, 0.0, 0.0, 0.0,
  0.0861, 0.0982, 0.1785, 0.3529, 0.2843,
  0.0495, 0.0175, 0.2857, 0.5337, 0.1136,
  0.029, 0.07, 0.6513, 0.1485, 0.1012,
  0.0, 0.25, 0.25, 0.25, 0.25,
  0.4261, 0.2469, 0.2908, 0.0106, 0.0256,
  0.1143, 0.3895, 0.0001, 0.0497, 0.4464,
  0.0819, 0.3917, 0.2915, 0.1372, 0.0977,
  0.5371, 0.0062, 0.0703, 0.0086, 0.3778,
  0.1031, 0.1366, 0.5453, 0.1154, 0.0996,
  0.0882, 0.2995, 0.3345, 0.008, 0.2698,
  0.0015, 0.1588, 0.3819, 0.2074, 0.2504,
  0.2789, 0.0527, 0.5693, 0.0975, 0.0016,
  0.4416, 0.2162, 0.0054, 0.2071, 0.1297,
  0.0433, 0.6566, 0.2646, 0.0263, 0.0092,
  0.0, 0.0339, 0.1814, 0.5967, 0.188,
  0.0082, 0.0584, 0.2288, 0.0822, 0.6224,
]);
// prettier-ignore
const Q = Float32Array.from([
  0.2533, 0.0041, 0.5415, 0.0671, 0.134,
  0.2207, 0.0747, 0.4166, 0.2556, 0.0324,
  0.3325, 0.072, 0.2123, 0.1362, 0.247,
  0.1, 0.2, 0.3, 0.2, 0.2,
  0.0459, 0.2754, 0.1946, 0.3887, 0.0954,
  0.1447, 0.266, 0.0996, 0.3501, 0.1396,
  0.1624, 0.2387, 0.0668, 0.4482, 0.0839,
  0.1629, 0.0768, 0.3304, 0.3618, 0.0681,
  0.2066, 0.1147, 0.6157, 0.0372, 0.0258,
  0.0776, 0.2609, 0.0344, 0.3811, 0.246,
  0.4544, 0.0686, 0.1329, 0.136, 0.2081,
  0.0203, 0.3834, 0.1718, 0.2424, 0.1821,
  0.2421, 0.0446, 0.3788, 0.1533, 0.1812,
  0.1378, 0.1339, 0.3233, 0.1039, 0.3011,
  0.1334, 0.1857, 0.2538, 0.141, 0.2861,
  0.2112, 0.1746, 0.0838, 0.0546, 0.4758,
  0.3062, 0.2209, 0.0363, 0.039, 0.3976,
  0.1201, 0.166, 0.4206, 0.018, 0.2753,
  0.2413, 0.1234, 0.323, 0.185, 0.1273,
  0.4806, 0.0989, 0.292, 0.0336, 0.0949,
]);
const labels = Int32Array.from([2, 1, 0, 2, 3, 0, 2, 1, 0, 4, 1, 1, 4, 2, 2, 1, 3, 2, 0, 4]);

const GOLDEN = {
  ece15: 0.3996100008487702,
  ece10: 0.37756999731063845,
  ece4: 0.34961000084877014,
  ece1: 0.048669999837875344,
  eceQ15: 0.24234999865293505,
  entropyP: 1.1649807119850821,
  entropyQ: 1.3943890653661222,
  klPQ: 0.7000232761477948,
  churnPQ: 0.8,
  accuracyP: 0.45,
  perClassP: [0.25, 0.4, 0.5, 0.5, 0.6666666666666666],
};

/** |actual − expected| ≤ 1e-5 · |expected| (and exact zero for zero). */
function expectClose(actual: number, expected: number): void {
  expect(Math.abs(actual - expected)).toBeLessThanOrEqual(1e-5 * Math.abs(expected));
}

describe('metric goldens', () => {
  it('expected calibration error (Guo et al. 2017), 15, 10, 4 and 1 bins', () => {
    expectClose(expectedCalibrationError(P, labels, C), GOLDEN.ece15);
    expectClose(expectedCalibrationError(P, labels, C, 15), GOLDEN.ece15);
    expectClose(expectedCalibrationError(P, labels, C, 10), GOLDEN.ece10);
    expectClose(expectedCalibrationError(P, labels, C, 4), GOLDEN.ece4);
    expectClose(expectedCalibrationError(P, labels, C, 1), GOLDEN.ece1);
    expectClose(expectedCalibrationError(Q, labels, C), GOLDEN.eceQ15);
  });

  it('mean entropy in nats', () => {
    expectClose(meanEntropy(P, C), GOLDEN.entropyP);
    expectClose(meanEntropy(Q, C), GOLDEN.entropyQ);
  });

  it('mean KL(p‖q) over rows', () => {
    expectClose(meanKl(P, Q, C), GOLDEN.klPQ);
  });

  it('churn, accuracy and per-class accuracy', () => {
    expectClose(predictionChurn(P, Q, C), GOLDEN.churnPQ);
    expectClose(accuracy(P, labels, C), GOLDEN.accuracyP);
    perClassAccuracy(P, labels, C).forEach((a, c) => expectClose(a, GOLDEN.perClassP[c]!));
  });
});

describe('metric definitions on hand-made rows', () => {
  it('ECE bins are (m−1)/M, m/M]: a confidence on a boundary belongs to the lower bin', () => {
    // Confidences 0.5, 0.75, 1.0 exactly (representable in float32); 4 bins.
    // bin 2 = (0.25, 0.5]: row 0, conf 0.5, correct            → |1 − 0.5|   · 1/4
    // bin 3 = (0.5, 0.75]: row 1, conf 0.75, wrong              → |0 − 0.75|  · 1/4
    // bin 4 = (0.75, 1]:   rows 2, 3, conf 1, one right          → |0.5 − 1|   · 2/4
    const probs = Float32Array.from([0.5, 0.25, 0.25, 0.75, 0.25, 0, 0, 1, 0, 1, 0, 0]);
    const y = [0, 1, 1, 1];
    expect(expectedCalibrationError(probs, y, 3, 4)).toBeCloseTo(0.125 + 0.1875 + 0.25, 12);
  });

  it('ECE is 0 for a right one-hot predictor and 1 for a confidently wrong one', () => {
    const oneHot = Float32Array.from([1, 0, 0, 1]);
    expect(expectedCalibrationError(oneHot, [0, 1], 2)).toBe(0);
    expect(expectedCalibrationError(oneHot, [1, 0], 2)).toBe(1);
  });

  it('entropy is ln C for uniform rows and 0 for one-hot rows', () => {
    expect(meanEntropy(new Float32Array(8).fill(0.25), 4)).toBeCloseTo(Math.log(4), 6);
    expect(meanEntropy(Float32Array.from([0, 1, 0, 0]), 4)).toBe(0);
  });

  it('KL is 0 against itself, batch-mean (divided by rows, not rows × classes), and +Infinity off the support', () => {
    expect(meanKl(P, P, C)).toBe(0);
    // One row [1, 0] ‖ [0.5, 0.5] = ln 2, one row 0: the mean over 2 rows is ln 2 / 2.
    expect(meanKl(Float32Array.from([1, 0, 0.5, 0.5]), Float32Array.from([0.5, 0.5, 0.5, 0.5]), 2)).toBeCloseTo(Math.log(2) / 2, 7);
    expect(meanKl(Q, P, C)).toBe(Infinity);
  });

  it('argmax ties go to the first class everywhere', () => {
    expect(argmaxRow(P, C, 3)).toBe(0);
    expect(argmaxRow(P, C, 7)).toBe(1);
    const tie = Float32Array.from([0.5, 0.5]);
    expect(predictionChurn(tie, Float32Array.from([0.6, 0.4]), 2)).toBe(0);
    expect(predictionChurn(tie, Float32Array.from([0.4, 0.6]), 2)).toBe(1);
  });

  it('per-class accuracy is NaN for a class without rows', () => {
    const acc = perClassAccuracy(Float32Array.from([0.9, 0.1, 0, 0.2, 0.8, 0]), [0, 0], 3);
    expect(acc[0]).toBe(0.5);
    expect(acc[1]).toBeNaN();
    expect(acc[2]).toBeNaN();
  });

  it('meanProbabilities is the elementwise consensus', () => {
    const m = meanProbabilities([P, Q]);
    expect(m.length).toBe(P.length);
    expect(m[0]).toBeCloseTo(0.43785, 6);
    expect(() => meanProbabilities([])).toThrow(/E_SHAPE/);
    expect(() => meanProbabilities([P, Q.subarray(5)])).toThrow(/E_SHAPE/);
  });

  it('refuses mismatched shapes and labels', () => {
    expect(() => expectedCalibrationError(P, labels.subarray(1), C)).toThrow(/E_SHAPE/);
    expect(() => expectedCalibrationError(P.subarray(1), labels, C)).toThrow(/E_SHAPE/);
    expect(() => accuracy(P, labels.map(() => 5), C)).toThrow(/E_LABEL/);
    expect(() => meanKl(P, Q.subarray(5), C)).toThrow(/E_SHAPE/);
    expect(() => predictionChurn(P, Q.subarray(5), C)).toThrow(/E_SHAPE/);
    expect(() => expectedCalibrationError(P, labels, C, 0)).toThrow(/E_RANGE/);
  });
});

describe('personalised accuracy', () => {
  it('weights per-class accuracy by the site\'s label shares, over the classes the test set holds', () => {
    expect(personalisedAccuracy([0.5, 1, 0], [0.5, 0.5, 0])).toBeCloseTo(0.75, 12);
    // The test set has no class 1: its NaN does not sink the rest; the shares are renormalised.
    expect(personalisedAccuracy([0.5, Number.NaN, 1], [0.25, 0.5, 0.25])).toBeCloseTo(0.75, 12);
    expect(personalisedAccuracy([Number.NaN, 1], [1, 0])).toBeNaN();
  });
});
