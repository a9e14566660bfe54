/**
 * Issue 15, defect 6c: CSV features were used as read while IDX images are scaled to [0, 1], so a
 * 0–255 CSV export of the same images trained silently badly. Asserted: 0–255 integer features are
 * divided by 255 — the very values the IDX loader gives for the same pixels — and the dataset says
 * so in `preprocessing`; features already in [0, 1], and tabular features outside it that are not
 * 0–255 integers, are used as read and recorded so; `scaling: "none"` keeps pixels raw.
 */
import { describe, expect, it } from 'vitest';
import { parseCsv } from '../../client/data/csv.js';

/** Rows of 16 pixels: the given values first, then zeros. */
function pixelsCsv(given: number[][]): string {
  const rows = given.map((r) => [...r, ...new Array<number>(16 - r.length).fill(0)]);
  return `label,${rows[0]!.map((_, i) => `p${i}`).join(',')}\n${rows.map((r, i) => `${i % 3},${r.join(',')}`).join('\n')}\n`;
}

describe('CSV features outside [0, 1]', () => {
  it('divides 0–255 pixel data by 255, as the IDX loader does, and records it', () => {
    const pixels = [[0, 12, 255, 128], [3, 0, 77, 254]];
    const d = parseCsv(pixelsCsv(pixels), 'digits.csv');
    // The IDX loader's values: Float32Array of u8 / 255.
    const idx = Float32Array.from(pixels.flatMap((r) => [...r, ...new Array<number>(12).fill(0)]), (v) => v / 255);
    expect(Array.from(d.x)).toEqual(Array.from(idx));
    expect(d.preprocessing.divisor).toBe(255);
    expect(d.preprocessing.note).toMatch(/0–255 pixel intensities: divided by 255/);
  });

  it('uses features already in [0, 1] as read', () => {
    const d = parseCsv('label,a,b\n0,0.25,1\n1,0,0.5\n', 'unit.csv');
    expect(Array.from(d.x)).toEqual([0.25, 1, 0, 0.5]);
    expect(d.preprocessing).toEqual({ divisor: 1, note: 'features already in [0, 1]: used as read' });
  });

  it('uses tabular features that are not 0–255 integers as read, and says so', () => {
    for (const [text, range] of [
      ['label,a,b\n0,-3,4\n1,2,0\n', '[-3, 4]'],
      ['label,a,b\n0,1.5,4\n1,2,0\n', '[0, 4]'],
      ['label,a,b\n0,300,4\n1,2,0\n', '[0, 300]'],
      ['label,age,children\n0,45,2\n1,200,0\n', '[0, 200]'], // small integers, but two columns: a table
      [pixelsCsv([[0, 100], [1, 2]]), '[0, 100]'], // 16 columns, but never brighter than 100
    ] as const) {
      const d = parseCsv(text, 'table.csv');
      expect(d.preprocessing.divisor, text).toBe(1);
      expect(d.preprocessing.note).toBe(`features in ${range} do not look like 0–255 pixel data: used as read`);
    }
  });

  it('keeps pixels raw with scaling "none", and refuses an unknown mode', () => {
    const d = parseCsv(pixelsCsv([[0, 255], [1, 2]]), 'raw.csv', { scaling: 'none' });
    expect(Array.from(d.x.subarray(0, 2))).toEqual([0, 255]);
    expect(Array.from(d.x.subarray(16, 18))).toEqual([1, 2]);
    expect(d.preprocessing.note).toMatch(/used as read \(scaling: "none"\); they look like 0–255 pixel data/);
    expect(() => parseCsv(pixelsCsv([[0, 1]]), 'x.csv', { scaling: 'max' as 'auto' })).toThrow(/^E_CSV_OPTIONS: scaling must be "auto" or "none"/);
  });
});
