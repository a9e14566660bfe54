import { createHash } from 'node:crypto';
import { countLabels } from './dataset.js';
import { SeededRandom } from './random.js';

export type PartitionSpec = { kind: 'iid' } | { kind: 'dirichlet'; alpha: number; minSize?: number };

/** Who holds which samples. Saved with a run so the run can be reproduced exactly. */
export interface Partition {
  /** The spec with defaults filled in (e.g. minSize), so equal partitions have equal specs. */
  spec: PartitionSpec;
  seed: number;
  /** indices[p]: the rows of the labelled pool held by participant p, ascending. */
  indices: number[][];
  /** labelMatrix[p][c]: how many samples of class c participant p holds. */
  labelMatrix: number[][];
  /** sha256 hex over spec, seed and indices; the identity of the partition in logs and results. */
  hash: string;
}

const DEFAULT_MIN_SIZE = 10;
/** Dirichlet redraws before giving up; each draw is O(n), so this stays cheap even when it fails. */
const MAX_DIRICHLET_DRAWS = 1000;

/**
 * Splits the rows of `labels` among `participants`, every row to exactly one participant.
 * Deterministic: the same (labels, spec, seed) gives the same indices and hash on any machine.
 */
export function partition(
  labels: Int32Array,
  numClasses: number,
  participants: number,
  spec: PartitionSpec,
  seed: number,
): Partition {
  const n = labels.length;
  if (!Number.isInteger(numClasses) || numClasses < 1) {
    throw new RangeError(`E_PARTITION: numClasses must be a positive integer; got ${numClasses}`);
  }
  if (!Number.isInteger(participants) || participants < 1 || participants > n) {
    throw new RangeError(`E_PARTITION: participants must be an integer in [1, ${n}] for ${n} samples; got ${participants}`);
  }
  countLabels(labels, numClasses); // validates every label before any work
  const rng = new SeededRandom(seed);

  let canonical: PartitionSpec;
  let indices: number[][];
  switch (spec.kind) {
    case 'iid':
      canonical = { kind: 'iid' };
      indices = iidSplit(n, participants, rng);
      break;
    case 'dirichlet': {
      const { alpha, minSize = DEFAULT_MIN_SIZE } = spec;
      if (!(alpha > 0) || !Number.isFinite(alpha)) {
        throw new RangeError(`E_PARTITION: Dirichlet alpha must be a finite number > 0; got ${alpha}`);
      }
      if (!Number.isInteger(minSize) || minSize < 0 || minSize * participants > n) {
        throw new RangeError(
          `E_PARTITION: minSize ${minSize} × ${participants} participants exceeds the ${n} samples (or is not a non-negative integer)`,
        );
      }
      canonical = { kind: 'dirichlet', alpha, minSize };
      indices = dirichletSplit(labels, numClasses, participants, alpha, minSize, rng);
      break;
    }
    default:
      throw new RangeError(`E_PARTITION: unknown partition kind ${JSON.stringify((spec as { kind: unknown }).kind)}`);
  }

  // Ascending order makes the hash independent of how a split happened to emit rows;
  // participants shuffle their own data when they train.
  for (const rows of indices) rows.sort((a, b) => a - b);
  const labelMatrix = indices.map((rows) => countLabels(rows.map((i) => labels[i]!), numClasses));
  return { spec: canonical, seed, indices, labelMatrix, hash: partitionHash(canonical, seed, indices) };
}

/** sha256 over a versioned JSON of spec (fixed key order), seed and indices. */
export function partitionHash(spec: PartitionSpec, seed: number, indices: number[][]): string {
  const specKeys =
    spec.kind === 'iid' ? { kind: spec.kind } : { kind: spec.kind, alpha: spec.alpha, minSize: spec.minSize ?? DEFAULT_MIN_SIZE };
  return createHash('sha256')
    .update(JSON.stringify({ format: 'codistill-partition/1', spec: specKeys, seed, indices }))
    .digest('hex');
}

/** Seeded permutation cut into near-equal runs: the first n mod P participants get one extra row. */
function iidSplit(n: number, participants: number, rng: SeededRandom): number[][] {
  const order = rng.shuffle(Array.from({ length: n }, (_, i) => i));
  const base = Math.floor(n / participants);
  const extra = n % participants;
  const parts: number[][] = [];
  let start = 0;
  for (let p = 0; p < participants; p++) {
    const end = start + base + (p < extra ? 1 : 0);
    parts.push(order.slice(start, end));
    start = end;
  }
  return parts;
}

/**
 * Label skew after Hsu, Qi & Brown (2019), "Measuring the effects of non-identical data
 * distribution for federated visual classification": for each class c draw
 * q_c ~ Dir(α·1_P) and give participant p a share q_c[p] of class c's (shuffled) rows.
 * Small α → each participant holds few classes; α → ∞ → IID.
 *
 * The FedMA / NIID-Bench code (Wang et al. 2020; Li et al. 2021) also zeroes q_c[p] for
 * participants already above n/P rows, which evens out quantities; that is not in the paper,
 * and not done here, so quantity skew is part of what α produces. Like that code, we redraw
 * everything until each participant has ≥ minSize rows.
 */
function dirichletSplit(
  labels: Int32Array,
  numClasses: number,
  participants: number,
  alpha: number,
  minSize: number,
  rng: SeededRandom,
): number[][] {
  const byClass: number[][] = Array.from({ length: numClasses }, () => []);
  labels.forEach((c, i) => byClass[c]!.push(i));

  let smallest = 0;
  for (let draw = 0; draw < MAX_DIRICHLET_DRAWS; draw++) {
    const parts: number[][] = Array.from({ length: participants }, () => []);
    for (const classRows of byClass) {
      const rows = rng.shuffle([...classRows]);
      const share = rng.dirichlet(alpha, participants);
      // Cut points at round(cumulative share × class size): shares sum to the class size exactly.
      let cumulative = 0;
      let start = 0;
      for (let p = 0; p < participants; p++) {
        cumulative += share[p]!;
        const end = p === participants - 1 ? rows.length : Math.min(rows.length, Math.round(cumulative * rows.length));
        const part = parts[p]!;
        for (let k = start; k < end; k++) part.push(rows[k]!);
        start = end;
      }
    }
    smallest = parts.reduce((m, rows) => Math.min(m, rows.length), Infinity);
    if (smallest >= minSize) return parts;
  }
  throw new Error(
    `E_PARTITION: Dirichlet(α=${alpha}) over ${participants} participants left someone below minSize ${minSize} ` +
      `in all ${MAX_DIRICHLET_DRAWS} draws (last smallest: ${smallest} rows); raise alpha, lower minSize or use fewer participants`,
  );
}
