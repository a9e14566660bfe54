/**
 * Federated distillation, FD (Jeong et al. 2018, "Communication-Efficient On-Device Machine
 * Learning: Federated Distillation and Augmentation under Non-IID Private Data", §2): each
 * participant sends its mean logit vector per class over its private data, [C, C], with how
 * many samples it holds per class. For participant i and class c the teacher is the mean of
 * the *other* participants' class-c vectors — (Σ_j F_j,c − F_i,c)/(K − 1) in the paper — taken
 * here over the others that hold class c at all (a participant with no class-c sample has no
 * class-c mean to give). No reference set is needed: a few hundred bytes per round.
 */
import type { Aggregate, Contribution, StrategyDescriptor, StrategyRounds, Target } from './strategy.js';

export const fd: StrategyDescriptor = {
  name: 'fd',
  mode: 'sync',
  knowledge: 'class-logits',
  // Jeong et al. distill towards the others' per-class logits; T = 1 keeps their logit scale.
  defaults: { temperature: 1, alpha: 0.5 },
  summary: "federated distillation: per-class mean logits, no shared data (Jeong et al. 2018)",
  secureTargets: 'others',
  create(settings): StrategyRounds {
    const C = settings.numClasses;
    return {
      configureRound: () => ({ referenceIds: [] }),
      aggregate(contributions, learners): Aggregate {
        const sums = classSums(contributions, C);
        if (sums === undefined) {
          // Counts that are not whole numbers, or a participant twice (never from a session): the
          // teacher of each learner summed from scratch, O(n²), as FD's formula reads.
          const targets = new Map(learners.map((p) => [p, classTeacher(contributions.filter((c) => c.participant !== p), C)]));
          return { targets, ensemble: classTeacher(contributions, C)?.values ?? null };
        }
        const targets = new Map(learners.map((p) => [p, teacherWithout(sums, contributions, sums.index.get(p) ?? -1, C)]));
        return { targets, ensemble: contributions.length === 0 ? null : teacherWithout(sums, contributions, -1, C)!.values };
      },
    };
  },
};

/** Per class, the mean of the class-c logit vectors of the contributors holding class c. */
function classTeacher(contributions: readonly Contribution[], C: number): Target | null {
  if (contributions.length === 0) return null;
  const sum = new Float64Array(C * C);
  const holders = new Array<number>(C).fill(0);
  const counts = new Array<number>(C).fill(0);
  for (const { values, labelCounts } of contributions) {
    for (let c = 0; c < C; c++) {
      const n = labelCounts![c]!;
      if (n === 0) continue;
      holders[c]!++;
      counts[c]! += n;
      for (let k = 0; k < C; k++) sum[c * C + k]! += values[c * C + k]!;
    }
  }
  const values = new Float32Array(C * C);
  for (let c = 0; c < C; c++) {
    if (holders[c] === 0) continue;
    for (let k = 0; k < C; k++) values[c * C + k] = sum[c * C + k]! / holders[c]!;
  }
  return { values, shape: [C, C], counts };
}

/**
 * What every learner's teacher is computed from, in one pass over all contributions:
 *
 *  - sum[c·C+k], holders[c], counts[c]: classTeacher's sums over everyone, in the same order;
 *  - exact[c·C+k]: whether every float64 sum of any subset of the class-c holders' values at
 *    (c, k), in any order, is exact. Then Σ_{j≠i} (each learner's sum, which classTeacher adds up
 *    in contribution order) equals S − v_i to the bit, and one sum serves all n teachers, O(n)
 *    instead of O(n²). Why the test below proves it: every float32 is an integer multiple of its
 *    ulp, 2^(max(E,1) − 150) for biased exponent E, so all values at (c, k) are multiples of
 *    q = 2^(minE − 150); every partial sum then is a multiple of q no larger than Σ|v|, which
 *    float64 holds exactly while Σ|v| < 2^53·q. The float64 Σ|v| computed here may round low
 *    by a relative n·2^−53, so the test asks for 2^52·q. Logits of ordinary size pass it by
 *    far; an element that fails (a tiny value beside large ones) is summed for each learner as
 *    classTeacher sums it.
 *
 * Undefined when counts are not safe integers (their sums would round) or a participant appears
 * twice (classTeacher's filter would drop both).
 */
interface ClassSums {
  sum: Float64Array;
  exact: Uint8Array;
  holders: number[];
  counts: number[];
  /** Per class, the indices of the contributions that hold it, in order. */
  holderIndices: number[][];
  /** Participant → index of its contribution. */
  index: Map<string, number>;
}

function classSums(contributions: readonly Contribution[], C: number): ClassSums | undefined {
  const index = new Map<string, number>();
  for (const { participant, labelCounts } of contributions) {
    if (index.has(participant)) return undefined;
    index.set(participant, index.size);
    for (let c = 0; c < C; c++) if (!Number.isSafeInteger(labelCounts![c]!)) return undefined;
  }
  const sum = new Float64Array(C * C);
  const absSum = new Float64Array(C * C);
  const minExponent = new Int32Array(C * C).fill(255);
  const holders = new Array<number>(C).fill(0);
  const counts = new Array<number>(C).fill(0);
  const holderIndices = Array.from({ length: C }, () => [] as number[]);
  contributions.forEach(({ values, labelCounts }, j) => {
    const bits = new Int32Array(values.buffer, values.byteOffset, values.length);
    for (let c = 0; c < C; c++) {
      const n = labelCounts![c]!;
      if (n === 0) continue;
      holders[c]!++;
      counts[c]! += n;
      holderIndices[c]!.push(j);
      for (let k = 0; k < C; k++) {
        const e = c * C + k;
        const v = values[e]!;
        sum[e]! += v;
        absSum[e]! += Math.abs(v);
        if (v !== 0) minExponent[e] = Math.min(minExponent[e]!, Math.max((bits[e]! >>> 23) & 0xff, 1));
      }
    }
  });
  if (!counts.every((n) => Number.isSafeInteger(n))) return undefined;
  const exact = new Uint8Array(C * C);
  // A NaN or ±Inf makes absSum non-finite and fails the comparison: such an element is summed per learner.
  for (let e = 0; e < C * C; e++) exact[e] = absSum[e]! < 2 ** (minExponent[e]! - 98) ? 1 : 0;
  return { sum, exact, holders, counts, holderIndices, index };
}

/** classTeacher of the contributions other than the one at `index` (of all, when −1), from the sums. */
function teacherWithout(sums: ClassSums, contributions: readonly Contribution[], index: number, C: number): Target | null {
  if (contributions.length - (index >= 0 ? 1 : 0) === 0) return null;
  const own = index >= 0 ? contributions[index]! : undefined;
  const values = new Float32Array(C * C);
  const counts = new Array<number>(C).fill(0);
  for (let c = 0; c < C; c++) {
    const mine = own === undefined ? 0 : own.labelCounts![c]!;
    const holders = sums.holders[c]! - (mine !== 0 ? 1 : 0);
    counts[c] = sums.counts[c]! - mine;
    if (holders === 0) continue;
    for (let k = 0; k < C; k++) {
      const e = c * C + k;
      let total: number;
      if (mine === 0) total = sums.sum[e]!;
      else if (sums.exact[e] === 1) total = sums.sum[e]! - own!.values[e]!;
      else {
        total = 0;
        for (const j of sums.holderIndices[c]!) if (j !== index) total += contributions[j]!.values[e]!;
      }
      values[e] = total / holders;
    }
  }
  return { values, shape: [C, C], counts };
}
