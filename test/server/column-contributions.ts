/**
 * Reference predictions for the order-statistic aggregators' tests (median, trimmed mean): each
 * value drawn by `value`, so a test chooses the ties, zeros and extremes its columns need; a row
 * left with nothing positive gets a 1 in its first class, so every row passes the simplex check.
 */
import type { SeededRandom } from '../../client/data/random.js';
import type { Contribution } from '../../protocol/index.js';

export function columnContributions(n: number, rows: number, classes: number, random: SeededRandom, value: (random: SeededRandom) => number): Contribution[] {
  return Array.from({ length: n }, (_, k) => {
    const values = new Float32Array(rows * classes);
    for (let r = 0; r < rows; r++) {
      let sum = 0;
      for (let c = 0; c < classes; c++) {
        const v = value(random);
        values[r * classes + c] = v;
        sum += Math.max(v, 0);
      }
      if (sum === 0) values[r * classes] = 1;
    }
    return { participant: `p${k}`, kind: 'reference-predictions', values };
  });
}
