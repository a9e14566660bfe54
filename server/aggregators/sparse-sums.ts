/**
 * The mean and the leave-one-out means of top-k sparse distributions (protocol/sparse.ts) without
 * expanding them to dense rows: typed-array math whose cost follows the entries sent (n·k per row),
 * not the width of the last axis — what per-token knowledge over a vocabulary needs (issue 17).
 *
 * Participant i's row is p_i(j) = v_i(j) on its k indices and b_i = max(0, 1 − Σ v_i)/(width − k)
 * elsewhere (the uniform remainder). Over the union S of the n supports, with B = Σ_i b_i and
 * E(j) = Σ_i (p_i(j) − b_i) (non-zero only on S):
 *   mean(j)   = (B + E(j)) / n                        for j ∈ S,   B / n elsewhere;
 *   LOO_i(j)  = (B + E(j) − p_i(j)) / (n − 1)         for j ∈ S,   (B − b_i) / (n − 1) elsewhere.
 * Both are again a support with values plus one background value for every entry off it — the
 * same uniform-remainder form, k = |S| — so they can go down top-k (or be expanded) as they are.
 * These are exactly the dense mean and leave-one-out means of the expanded rows (sums.ts), up to
 * float rounding: the tests hold them to that.
 */
import type { TopKRows } from '../../protocol/index.js';

/** Rows of distributions as a support per row plus one background value for every entry off it. */
export interface SparseRows {
  rows: number;
  width: number;
  /** Row r's entries are indices/values[rowStart[r] … rowStart[r+1]). */
  rowStart: Uint32Array;
  indices: Uint32Array;
  values: Float32Array;
  /** The value of every entry of row r not in its support. */
  background: Float32Array;
}

/** The sum of n sparse contributions over the union of their supports, kept for the mean and every leave-one-out mean. */
interface SparseSum {
  rows: number;
  width: number;
  n: number;
  rowStart: Uint32Array;
  indices: Uint32Array;
  /** E(j) per support entry (float64: n terms). */
  excess: Float64Array;
  /** B per row. */
  background: Float64Array;
  /** b_i per participant and row, [n][rows]. */
  own: Float64Array[];
}

function checkSame(inputs: readonly TopKRows[]): { rows: number; width: number } {
  if (inputs.length === 0) throw new Error('sparse aggregation needs at least one contribution');
  const { rows, width } = inputs[0]!;
  for (const [i, t] of inputs.entries()) {
    if (t.rows !== rows || t.width !== width) throw new Error(`contribution ${i} has ${t.rows} rows of ${t.width}; the first has ${rows} of ${width}`);
  }
  return { rows, width };
}

/** The remainder each entry off participant t's support receives in row r. */
function remainderShare(t: TopKRows, r: number): number {
  if (t.k === t.width) return 0;
  let sum = 0;
  for (let i = r * t.k; i < r * t.k + t.k; i++) sum += t.values[i]!;
  return Math.max(0, 1 - sum) / (t.width - t.k);
}

function sparseSum(inputs: readonly TopKRows[]): SparseSum {
  const { rows, width } = checkSame(inputs);
  const n = inputs.length;
  const perRow = Math.min(width, inputs.reduce((a, t) => a + t.k, 0));
  const rowStart = new Uint32Array(rows + 1);
  const indices = new Uint32Array(rows * perRow);
  const excess = new Float64Array(rows * perRow);
  const background = new Float64Array(rows);
  const own = inputs.map(() => new Float64Array(rows));
  // slot[j] is entry j's place in the current row's support, valid when stamp[j] is the row's number.
  const stamp = new Uint32Array(width);
  const slot = new Uint32Array(width);
  let at = 0;
  for (let r = 0; r < rows; r++) {
    rowStart[r] = at;
    let b = 0;
    const mark = r + 1;
    for (let p = 0; p < n; p++) {
      const t = inputs[p]!;
      const k = t.k;
      const named = t.indices;
      const sent = t.values;
      const share = remainderShare(t, r);
      own[p]![r] = share;
      b += share;
      for (let i = r * k, end = i + k; i < end; i++) {
        const j = named[i]!;
        if (stamp[j] !== mark) {
          stamp[j] = mark;
          slot[j] = at;
          indices[at] = j;
          excess[at] = 0;
          at++;
        }
        excess[slot[j]!]! += sent[i]! - share;
      }
    }
    background[r] = b;
  }
  rowStart[rows] = at;
  return { rows, width, n, rowStart, indices: indices.subarray(0, at), excess: excess.subarray(0, at), background, own };
}

/** The mean of n top-k distributions, as a support (the union of theirs) plus a background. */
export function sparseMean(inputs: readonly TopKRows[]): SparseRows {
  const s = sparseSum(inputs);
  const values = new Float32Array(s.indices.length);
  const background = new Float32Array(s.rows);
  for (let r = 0; r < s.rows; r++) {
    const B = s.background[r]!;
    background[r] = B / s.n;
    for (let i = s.rowStart[r]!; i < s.rowStart[r + 1]!; i++) values[i] = (B + s.excess[i]!) / s.n;
  }
  return { rows: s.rows, width: s.width, rowStart: s.rowStart, indices: s.indices, values, background };
}

/**
 * For every participant, the mean of the others' distributions (DML's target), from one sum: each
 * over the union of all supports (an entry only participant i named is, for i, the others'
 * background plus their share of nothing else — exact, just not the smallest support).
 */
export function sparseLeaveOneOutMeans(inputs: readonly TopKRows[]): SparseRows[] {
  if (inputs.length < 2) throw new Error('leave-one-out means need at least two contributions');
  const s = sparseSum(inputs);
  const m = s.n - 1;
  // p_i(j) on the union: b_i, or v_i(j) where i named j; written per participant through a width-long scratch.
  const named = new Float64Array(s.width);
  const stamp = new Uint32Array(s.width);
  return inputs.map((t, p) => {
    const values = new Float32Array(s.indices.length);
    const background = new Float32Array(s.rows);
    for (let r = 0; r < s.rows; r++) {
      const B = s.background[r]!;
      const b = s.own[p]![r]!;
      background[r] = (B - b) / m;
      for (let i = r * t.k; i < r * t.k + t.k; i++) {
        stamp[t.indices[i]!] = r + 1;
        named[t.indices[i]!] = t.values[i]!;
      }
      for (let i = s.rowStart[r]!; i < s.rowStart[r + 1]!; i++) {
        const j = s.indices[i]!;
        const mine = stamp[j] === r + 1 ? named[j]! : b;
        values[i] = (B + s.excess[i]! - mine) / m;
      }
    }
    stamp.fill(0);
    return { rows: s.rows, width: s.width, rowStart: s.rowStart, indices: s.indices, values, background };
  });
}

/** The dense rows a SparseRows stands for (tests, and a receiver that wants them dense). */
export function denseOf(sparse: SparseRows): Float32Array {
  const out = new Float32Array(sparse.rows * sparse.width);
  for (let r = 0; r < sparse.rows; r++) {
    out.fill(sparse.background[r]!, r * sparse.width, (r + 1) * sparse.width);
    for (let i = sparse.rowStart[r]!; i < sparse.rowStart[r + 1]!; i++) out[r * sparse.width + sparse.indices[i]!] = sparse.values[i]!;
  }
  return out;
}
