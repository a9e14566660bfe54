import { createHash } from 'node:crypto';
import { countLabels } from './dataset.js';
import { SeededRandom } from './random.js';

export type PartitionSpec =
  | { kind: 'iid' }
  | { kind: 'dirichlet'; alpha: number; minSize?: number }
  /** Pathological non-IID (McMahan et al. 2017): each participant holds k label-sorted shards. */
  | { kind: 'shards'; classesPerParticipant: number }
  /** Quantity skew: sizes ~ Dirichlet(α) over participants, labels IID. */
  | { kind: 'quantity'; alpha: number; minSize?: number };

export type PartitionKind = PartitionSpec['kind'];
export const PARTITION_KINDS: readonly PartitionKind[] = ['iid', 'dirichlet', 'shards', 'quantity'];

/**
 * A short human description for logs and reports, e.g. "Dirichlet α=0.3 label skew".
 * Here rather than in simulations/ so that readers of results need not load the simulator.
 */
export function describePartition(spec: PartitionSpec): string {
  switch (spec.kind) {
    case 'iid':
      return 'IID';
    case 'dirichlet':
      return `Dirichlet α=${spec.alpha} label skew`;
    case 'shards':
      return `${spec.classesPerParticipant} label shards each`;
    case 'quantity':
      return `Dirichlet α=${spec.alpha} quantity skew`;
  }
}

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
    case 'shards': {
      const k = spec.classesPerParticipant;
      if (!Number.isInteger(k) || k < 1 || k * participants > n) {
        throw new RangeError(
          `E_PARTITION: shards need an integer classesPerParticipant ≥ 1 with classesPerParticipant × participants ≤ ${n} samples; got ${k} × ${participants}`,
        );
      }
      canonical = { kind: 'shards', classesPerParticipant: k };
      indices = shardSplit(labels, participants, k, rng);
      break;
    }
    case 'quantity': {
      const { alpha, minSize = DEFAULT_MIN_SIZE } = spec;
      if (!(alpha > 0) || !Number.isFinite(alpha)) {
        throw new RangeError(`E_PARTITION: quantity-skew alpha must be a finite number > 0; got ${alpha}`);
      }
      if (!Number.isInteger(minSize) || minSize < 0 || minSize * participants > n) {
        throw new RangeError(
          `E_PARTITION: minSize ${minSize} × ${participants} participants exceeds the ${n} samples (or is not a non-negative integer)`,
        );
      }
      canonical = { kind: 'quantity', alpha, minSize };
      indices = quantitySplit(n, participants, alpha, minSize, rng);
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
  // Fixed key order per kind; the iid and dirichlet keys are those of format /1 from the start,
  // so partitions made before shards and quantity skew existed keep their hashes.
  let specKeys: object;
  switch (spec.kind) {
    case 'iid':
      specKeys = { kind: spec.kind };
      break;
    case 'shards':
      specKeys = { kind: spec.kind, classesPerParticipant: spec.classesPerParticipant };
      break;
    case 'dirichlet':
    case 'quantity':
      specKeys = { kind: spec.kind, alpha: spec.alpha, minSize: spec.minSize ?? DEFAULT_MIN_SIZE };
      break;
  }
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

/**
 * Pathological non-IID after McMahan, Moore, Ramage, Hampson & Agüera y Arcas (2017),
 * "Communication-efficient learning of deep networks from decentralized data", §3: sort the
 * rows by label, cut them into P·k shards of (near-)equal size, and give each participant k
 * shards chosen at random. Each participant then sees at most k classes — fewer when two of
 * its shards come from the same class, and a shard can straddle a class boundary, as in the
 * paper (2 shards of 300 over 100 clients). Rows within a class are shuffled before the sort
 * (a stable sort of a seeded permutation), so shards do not depend on the pool's row order.
 * Shard sizes differ by at most one row: the first (n mod P·k) shards get one more.
 */
function shardSplit(labels: Int32Array, participants: number, k: number, rng: SeededRandom): number[][] {
  const n = labels.length;
  const order = rng.shuffle(Array.from({ length: n }, (_, i) => i));
  order.sort((a, b) => labels[a]! - labels[b]!); // Array.prototype.sort is stable (ES2019)
  const shardCount = participants * k;
  const base = Math.floor(n / shardCount);
  const extra = n % shardCount;
  const shards: number[][] = [];
  let start = 0;
  for (let s = 0; s < shardCount; s++) {
    const end = start + base + (s < extra ? 1 : 0);
    shards.push(order.slice(start, end));
    start = end;
  }
  const dealt = rng.shuffle(Array.from({ length: shardCount }, (_, s) => s));
  return Array.from({ length: participants }, (_, p) => dealt.slice(p * k, (p + 1) * k).flatMap((s) => shards[s]!));
}

/**
 * Quantity skew ("quantity-based label-agnostic" skew of Li, Diao, Chen & He (2021),
 * "Federated learning on non-IID data silos: an experimental study", §4.2): participant sizes
 * follow q ~ Dir(α·1_P) while every participant's labels are an IID sample of the pool.
 * Small α → a few participants hold most rows; α → ∞ → equal sizes.
 *
 * minSize: each participant first gets minSize rows and the other n − P·minSize rows are
 * split by q, so sizes are minSize + q_p·(n − P·minSize) (rounded, summing to n). NIID-Bench
 * instead redraws q until every share is ≥ 10 rows, which for α ≲ 0.1 and many participants
 * almost never happens; the shift always succeeds with one draw, and equals plain Dir(α)
 * sizes when minSize = 0.
 */
function quantitySplit(n: number, participants: number, alpha: number, minSize: number, rng: SeededRandom): number[][] {
  const order = rng.shuffle(Array.from({ length: n }, (_, i) => i));
  const share = rng.dirichlet(alpha, participants);
  const free = n - minSize * participants;
  const parts: number[][] = [];
  let cumulative = 0;
  let start = 0;
  for (let p = 0; p < participants; p++) {
    cumulative += share[p]!;
    const end = p === participants - 1 ? n : Math.min(n, (p + 1) * minSize + Math.round(cumulative * free));
    parts.push(order.slice(start, end));
    start = end;
  }
  return parts;
}
