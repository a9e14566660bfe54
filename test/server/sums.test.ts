/** Golden values for the aggregation math (float64 by hand), and its invariants. */
import { describe, expect, it } from 'vitest';
import { leaveOneOutMeans, meanOf, sumOf } from '../../server/aggregators/sums.js';
import { referenceIdsForRound } from '../../server/strategies/reference-ids.js';
import { createStrategy } from '../../server/strategies/index.js';

// Three participants, two reference samples, three classes.
const P = [
  new Float32Array([0.7, 0.2, 0.1, 0.1, 0.1, 0.8]),
  new Float32Array([0.5, 0.25, 0.25, 0.3, 0.3, 0.4]),
  new Float32Array([0.1, 0.8, 0.1, 1 / 3, 1 / 3, 1 / 3]),
];

function expectClose(actual: ArrayLike<number>, expected: number[], tolerance = 1e-6): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) expect(Math.abs(actual[i]! - expected[i]!)).toBeLessThan(tolerance);
}

describe('aggregation math', () => {
  it('the mean is (1/n) Σ p_j', () => {
    expectClose(meanOf(P), [1.3 / 3, 1.25 / 3, 0.45 / 3, (0.4 + 1 / 3) / 3, (0.4 + 1 / 3) / 3, (1.2 + 1 / 3) / 3]);
  });

  it('leave-one-out: participant i gets the mean of the others only', () => {
    const [t0, t1, t2] = leaveOneOutMeans(P);
    expectClose(t0!, [0.3, 0.525, 0.175, (0.3 + 1 / 3) / 2, (0.3 + 1 / 3) / 2, (0.4 + 1 / 3) / 2]);
    expectClose(t1!, [0.4, 0.5, 0.1, (0.1 + 1 / 3) / 2, (0.1 + 1 / 3) / 2, (0.8 + 1 / 3) / 2]);
    expectClose(t2!, [0.6, 0.225, 0.175, 0.2, 0.2, 0.6]);
  });

  it('leave-one-out equals the explicit mean of the others for random inputs, and stays on the simplex', () => {
    let seed = 3;
    const rand = () => ((seed = (seed * 1664525 + 1013904223) >>> 0) / 2 ** 32);
    const n = 7;
    const rows = 50;
    const c = 10;
    const uploads = Array.from({ length: n }, () => {
      const v = new Float32Array(rows * c);
      for (let r = 0; r < rows; r++) {
        let s = 0;
        for (let k = 0; k < c; k++) s += v[r * c + k] = rand();
        for (let k = 0; k < c; k++) v[r * c + k]! /= s;
      }
      return v;
    });
    const targets = leaveOneOutMeans(uploads);
    targets.forEach((target, i) => {
      const others = uploads.filter((_, j) => j !== i);
      expectClose(target, [...meanOf(others)]);
      for (let r = 0; r < rows; r++) {
        const s = target.subarray(r * c, (r + 1) * c).reduce((a, b) => a + b, 0);
        expect(Math.abs(s - 1)).toBeLessThan(1e-5);
      }
    });
  });

  it('accumulates in float64', () => {
    // 1 + 1e-8 is not representable in float32, so the sum must not be float32 either.
    const sum = sumOf([new Float32Array([1e8]), new Float32Array([1])]);
    expect(sum[0]).toBe(100000001);
  });

  it('refuses what it cannot aggregate', () => {
    expect(() => leaveOneOutMeans([P[0]!])).toThrow(/at least 2 participants; got 1/);
    expect(() => sumOf([])).toThrow(/zero vectors/);
    expect(() => sumOf([new Float32Array(2), new Float32Array(3)])).toThrow(/lengths 2 and 3/);
  });

  it('the dml strategy sends leave-one-out targets to learners only, and none to a lone participant', () => {
    const strategy = createStrategy('dml', { referenceSize: 2, referencePerRound: 2, seed: 1, numClasses: 3 });
    const contribution = (participant: string, values: Float32Array) => ({ participant, values });
    const alone = strategy.aggregate([contribution('p0', P[0]!)], ['p0'], 2);
    expect(alone.targets.get('p0')).toBeNull();
    // c is a teacher: it contributes to a's and b's targets but gets none itself.
    const three = strategy.aggregate([contribution('a', P[0]!), contribution('b', P[1]!), contribution('c', P[2]!)], ['a', 'b'], 2);
    expect([...three.targets.keys()]).toEqual(['a', 'b']);
    expectClose(three.targets.get('a')!.values, [0.3, 0.525, 0.175, (0.3 + 1 / 3) / 2, (0.3 + 1 / 3) / 2, (0.4 + 1 / 3) / 2]);
    expect(three.targets.get('a')!.shape).toEqual([2, 3]);
    expectClose(three.ensemble!, [...meanOf(P)]);
  });
});

describe('reference ids per round', () => {
  it('takes all ids, or a seeded sample that changes by round and repeats by seed', () => {
    expect(referenceIdsForRound(5, 10, 1, 1)).toEqual([0, 1, 2, 3, 4]);
    const a = referenceIdsForRound(1000, 100, 7, 3);
    expect(a).toHaveLength(100);
    expect(new Set(a).size).toBe(100);
    expect(a.every((id) => id >= 0 && id < 1000)).toBe(true);
    expect(referenceIdsForRound(1000, 100, 7, 3)).toEqual(a);
    expect(referenceIdsForRound(1000, 100, 7, 4)).not.toEqual(a);
    expect(referenceIdsForRound(1000, 100, 8, 3)).not.toEqual(a);
  });
});
