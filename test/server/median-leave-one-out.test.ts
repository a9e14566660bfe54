/**
 * The leave-one-out medians computed from one sort per coordinate against the definition — the
 * median aggregator run on the n − 1 others, once per participant — bit for bit, on columns
 * with ties, zeros and small negative values (the simplex check lets those pass). With −0 in the
 * columns too, bit for bit but for the sign of a zero: where a column's middle holds both −0 and
 * +0, the definition's quickselect returns either, in no meaningful order.
 */
import { describe, expect, it } from 'vitest';
import { SeededRandom } from '../../client/data/random.js';
import type { Contribution } from '../../protocol/index.js';
import { leaveOneOutAggregates } from '../../server/aggregators/index.js';
import { medianCore } from '../../server/aggregators/median.js';
import { leaveOneOutMedians } from '../../server/aggregators/order-statistics.js';
import { columnContributions } from './column-contributions.js';

const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));
/** The bits with −0 read as +0. */
const bitsUpToZeroSign = (a: Float32Array) => bits(a.map((v) => (v === 0 ? 0 : v)));

/** Coarse values make ties common; some exact zeros, a few −0 and tiny negatives. */
function contributions(n: number, rows: number, classes: number, random: SeededRandom, negativeZeros = false): Contribution[] {
  return columnContributions(n, rows, classes, random, (r) => {
    const u = r.next();
    return u < 0.15 ? 0 : u < 0.2 ? (negativeZeros ? -0 : 0) : u < 0.23 ? -1e-5 : Math.round(r.next() * 8) / 8;
  });
}

describe('leave-one-out medians', () => {
  for (const negativeZeros of [false, true]) {
    it(`equal the median of the others for every participant, bit for bit${negativeZeros ? ' but for the sign of a zero, with −0 among the values' : ''}`, () => {
      const random = new SeededRandom(77);
      const compare = negativeZeros ? bitsUpToZeroSign : bits;
      for (const n of [2, 3, 4, 5, 6, 7, 10, 11, 40]) {
        const rows = 7;
        const classes = 5;
        const cs = contributions(n, rows, classes, random, negativeZeros);
        const fast = leaveOneOutMedians(cs.map((c) => c.values), rows, classes);
        for (let k = 0; k < n; k++) {
          const others = cs.filter((_, j) => j !== k);
          const slow = medianCore(others, others.map((c) => c.values), { rows, classes });
          expect(compare(fast[k]!), `n = ${n}, without p${k}`).toEqual(compare(slow));
        }
      }
    });
  }

  it('are what the median strategy path sends', () => {
    const random = new SeededRandom(5);
    const cs = contributions(9, 4, 3, random);
    const targets = leaveOneOutAggregates('median', cs, { rows: 4, classes: 3 });
    cs.forEach((c, k) => {
      const others = cs.filter((_, j) => j !== k);
      expect(bits(targets.get(c.participant)!)).toEqual(bits(medianCore(others, others.map((o) => o.values), { rows: 4, classes: 3 })));
    });
  });
});
