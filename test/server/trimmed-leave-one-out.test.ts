/**
 * The leave-one-out trimmed means from one sort per coordinate (leaveOneOutTrimmedMeans) against
 * the definition — the trimmed-mean aggregator run on the n − 1 others, once per participant.
 * The definition sums the kept values in quickselect's order, the fast form subtracts one value
 * from a double-double sum of the kept block, so they agree to float64 rounding: every float32
 * value equal or one unit in the last place apart, on columns with ties, zeros, tiny negatives
 * and values some twenty orders of magnitude apart.
 */
import { describe, expect, it } from 'vitest';
import { SeededRandom } from '../../client/data/random.js';
import type { Contribution } from '../../protocol/index.js';
import { leaveOneOutAggregates } from '../../server/aggregators/index.js';
import { leaveOneOutTrimmedMeans } from '../../server/aggregators/order-statistics.js';
import { trimmedMeanCore, trimmedPerSide } from '../../server/aggregators/trimmed-mean.js';
import { columnContributions } from './column-contributions.js';

/** Coarse values make ties common; exact zeros, tiny negatives, and tiny positives beside near-ones. */
function contributions(n: number, rows: number, classes: number, random: SeededRandom): Contribution[] {
  return columnContributions(n, rows, classes, random, (r) => {
    const u = r.next();
    return u < 0.15 ? 0 : u < 0.18 ? -1e-5 : u < 0.3 ? 1e-20 * (1 + r.int(3)) : u < 0.4 ? 0.99 : Math.round(r.next() * 8) / 8;
  });
}

/** How many float32 steps apart a and b are (same sign assumed for non-zeros; zeros of either sign are 0 apart). */
function ulpsApart(a: number, b: number): number {
  if (a === b) return 0;
  const view = new Float32Array([a, b]);
  const [x, y] = new Int32Array(view.buffer);
  return Math.abs(x! - y!);
}

describe('leave-one-out trimmed means', () => {
  it('equal the trimmed mean of the others for every participant, to the last float32 bit or one step from it', () => {
    const random = new SeededRandom(91);
    let values = 0;
    let differing = 0;
    for (const n of [2, 3, 4, 5, 8, 11, 21, 40]) {
      for (const fraction of [0, 0.1, 0.25, 0.34, 0.49]) {
        const rows = 6;
        const classes = 5;
        const cs = contributions(n, rows, classes, random);
        const trim = trimmedPerSide(fraction, n - 1);
        const fast = leaveOneOutTrimmedMeans(cs.map((c) => c.values), rows, classes, trim);
        for (let k = 0; k < n; k++) {
          const others = cs.filter((_, j) => j !== k);
          const slow = trimmedMeanCore(others, others.map((c) => c.values), { rows, classes, trimFraction: fraction });
          for (let i = 0; i < slow.length; i++) {
            const apart = ulpsApart(fast[k]![i]!, slow[i]!);
            expect(apart, `n = ${n}, β = ${fraction}, without p${k}, value ${i}: ${fast[k]![i]} vs ${slow[i]}`).toBeLessThanOrEqual(1);
            values++;
            if (apart > 0) differing++;
          }
        }
      }
    }
    console.log(`trimmed leave-one-out: ${values} values, ${differing} one float32 step from the definition, the rest bit-exact`);
    expect(differing).toBeLessThan(values / 100);
  });

  it('keep a tiny value exact beside a near-one that is removed (no cancellation in the subtraction)', () => {
    // One column: 0.99 and four 1e-20s; trim 0. Without the 0.99, the mean of the others is 1e-20 —
    // a plain float64 sum minus 0.99 would give 0.
    const column = [0.99, 1e-20, 1e-20, 1e-20, 1e-20].map((v) => Float32Array.of(v, 1 - v));
    const [withoutBig] = leaveOneOutTrimmedMeans(column, 1, 2, 0);
    // Row renormalised: 1e-20 / (1e-20 + (1 − 1e-20)) in float32.
    expect(withoutBig![0]).toBe(Math.fround(Math.fround(1e-20) / (Math.fround(1e-20) + 1)));
    expect(withoutBig![0]).toBeGreaterThan(0);
  });

  it('are what the trimmed-mean strategy path sends, and refuse a trim that keeps nothing', () => {
    const random = new SeededRandom(6);
    const cs = contributions(9, 4, 3, random);
    const options = { rows: 4, classes: 3, trimFraction: 0.25 };
    const targets = leaveOneOutAggregates('trimmed-mean', cs, options);
    const direct = leaveOneOutTrimmedMeans(cs.map((c) => c.values), 4, 3, trimmedPerSide(0.25, 8));
    cs.forEach((c, k) => expect(Array.from(targets.get(c.participant)!)).toEqual(Array.from(direct[k]!)));
    expect(() => leaveOneOutTrimmedMeans(cs.map((c) => c.values), 4, 3, 4)).toThrow(/cannot keep 0 of the 8 others' values with 4 trimmed on each side/);
  });
});
