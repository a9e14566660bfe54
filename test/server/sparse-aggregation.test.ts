/**
 * The sparse mean and leave-one-out means (server/aggregators/sparse-sums.ts): golden values
 * worked by hand, and agreement with the dense math of sums.ts on the expanded rows.
 */
import { describe, expect, it } from 'vitest';
import { SeededRandom } from '../../client/data/random.js';
import { decodeTopKRows, expandTopK, packTopK, type TopKRows } from '../../protocol/index.js';
import { leaveOneOutMeans, meanOf } from '../../server/aggregators/sums.js';
import { denseOf, sparseLeaveOneOutMeans, sparseMean } from '../../server/aggregators/sparse-sums.js';

/** One row of 6 entries, k = 2: the remainder 0.2, 0.2, 0.3 spread over 4 others (0.05, 0.05, 0.075). */
function rows(indices: number[], values: number[]): TopKRows {
  return { rows: 1, width: 6, k: 2, indices: Uint16Array.from(indices), values: Float32Array.from(values) };
}
const INPUTS = [rows([1, 3], [0.6, 0.2]), rows([1, 0], [0.5, 0.3]), rows([4, 2], [0.5, 0.2])];

function close(got: Float32Array, expected: number[]): void {
  expect(got.length).toBe(expected.length);
  got.forEach((v, i) => expect(v, `entry ${i}`).toBeCloseTo(expected[i]!, 6));
}

describe('sparse mean and leave-one-out means', () => {
  it('golden: the mean over the union of supports, the background elsewhere', () => {
    const mean = sparseMean(INPUTS);
    expect(Array.from(mean.indices)).toEqual([1, 3, 0, 4, 2]);
    expect(mean.background[0]).toBeCloseTo(0.175 / 3, 7);
    close(denseOf(mean), [0.425 / 3, 1.175 / 3, 0.1, 0.325 / 3, 0.2, 0.175 / 3]);
  });

  it('golden: each participant\'s leave-one-out mean', () => {
    const loo = sparseLeaveOneOutMeans(INPUTS);
    close(denseOf(loo[0]!), [0.1875, 0.2875, 0.125, 0.0625, 0.275, 0.0625]);
    close(denseOf(loo[1]!), [0.0625, 0.3375, 0.125, 0.1375, 0.275, 0.0625]);
    close(denseOf(loo[2]!), [0.175, 0.55, 0.05, 0.125, 0.05, 0.05]);
  });

  it('equals the dense mean and leave-one-out means of the expanded rows (300 entries, rank 3, mixed k)', () => {
    const random = new SeededRandom(17);
    const shape = [4, 5, 300];
    const inputs = [1, 3, 8, 8, 2].map((k) => {
      const p = new Float32Array(20 * 300);
      for (let r = 0; r < 20; r++) {
        let sum = 0;
        for (let j = 0; j < 300; j++) sum += p[r * 300 + j] = Math.exp(8 * random.next());
        for (let j = 0; j < 300; j++) p[r * 300 + j]! /= sum;
      }
      return decodeTopKRows(packTopK(p, shape, k, 'float32'));
    });
    const dense = inputs.map((t) => expandTopK(t));
    const mean = meanOf(dense);
    denseOf(sparseMean(inputs)).forEach((v, i) => expect(Math.abs(v - mean[i]!)).toBeLessThan(1e-7));
    const loo = leaveOneOutMeans(dense);
    sparseLeaveOneOutMeans(inputs).forEach((s, p) => denseOf(s).forEach((v, i) => expect(Math.abs(v - loo[p]![i]!)).toBeLessThan(1e-7)));
  });

  it('refuses contributions of different shapes, and leave-one-out of one', () => {
    expect(() => sparseMean([INPUTS[0]!, { ...INPUTS[1]!, width: 7 }])).toThrow(/contribution 1 has 1 rows of 7; the first has 1 of 6/);
    expect(() => sparseLeaveOneOutMeans([INPUTS[0]!])).toThrow(/at least two/);
  });
});
