/**
 * Fixed-point encoding of knowledge for secure aggregation: masks add mod 2^32, so every value
 * travels as a uint32 whose sum over the round's members must not wrap.
 *
 *  - probabilities in [0, 1]: round(p · 2^24), step 2^−24 ≈ 6.0e−8 (|error| ≤ 2^−25 per value);
 *    at most MAX_SECURE_MEMBERS · 2^24 = 255 · 2^24 < 2^32;
 *  - logits: round(z · 2^16) in two's complement, z clamped to ±128 (a softmax is saturated far
 *    before), step 2^−16 ≈ 1.5e−5; |Σ| ≤ 255 · 2^23 < 2^31, read back as int32;
 *  - counts (FD's per-class samples and holders): integers as they are, each ≤ 2^24.
 *
 * So a secure round holds at most N = 255 members (also Shamir's GF(2^8) limit, shamir.ts).
 *
 * What each kind sums (length L of the vector):
 *  - reference-predictions, reference-logits: the [rows, C] values, L = rows · C;
 *  - class-logits (FD): [C·C logits | C holders | C counts], L = C·C + 2C. A member zeroes the
 *    logit rows of classes it holds no sample of and marks the classes it holds with 1, so that the
 *    sum gives, per class, the sum of the holders' vectors and how many hold it — what FD's
 *    mean over the holders needs (server/strategies/fd.ts's classTeacher).
 */
import { simplexViolation, type KnowledgeKind } from '../knowledge.js';

/** Members a secure round may hold (sums of N values must not wrap; Shamir's x-coordinates are 1…255). */
export const MAX_SECURE_MEMBERS = 255;
export const PROBABILITY_SCALE = 2 ** 24;
export const LOGIT_SCALE = 2 ** 16;
export const LOGIT_BOUND = 128;
/** Largest per-class sample count one member may add. */
export const MAX_SECURE_COUNT = 2 ** 24;

/** The knowledge kinds a secure round can sum. */
export const SECURE_KINDS: readonly KnowledgeKind[] = ['reference-predictions', 'reference-logits', 'class-logits'];

/** The step of one encoded value of `kind`: decoded sums are within n · step/2 of the float sums. */
export function fixedPointStep(kind: KnowledgeKind): number {
  return kind === 'reference-predictions' ? 1 / PROBABILITY_SCALE : 1 / LOGIT_SCALE;
}

/** Words of the summed vector for a round of `rows` reference samples and C classes. */
export function secureVectorLength(kind: KnowledgeKind, rows: number, C: number): number {
  switch (kind) {
    case 'reference-predictions':
    case 'reference-logits':
      return rows * C;
    case 'class-logits':
      return C * C + 2 * C;
    default:
      throw new Error(`secure aggregation sums ${SECURE_KINDS.join(', ')}; not ${kind}`);
  }
}

function encodeProbability(p: number): number {
  if (Number.isNaN(p)) throw new RangeError('fixed point: a probability is NaN');
  return Math.round(Math.min(1, Math.max(0, p)) * PROBABILITY_SCALE);
}

function encodeLogit(z: number): number {
  if (Number.isNaN(z)) throw new RangeError('fixed point: a logit is NaN');
  return Math.round(Math.min(LOGIT_BOUND, Math.max(-LOGIT_BOUND, z)) * LOGIT_SCALE) >>> 0;
}

/** A share of `kind` as the uint32 vector a member masks and uploads. */
export function encodeKnowledge(kind: KnowledgeKind, values: Float32Array, C: number, labelCounts?: readonly number[]): Uint32Array {
  if (kind === 'reference-predictions') return Uint32Array.from(values, encodeProbability);
  if (kind === 'reference-logits') return Uint32Array.from(values, encodeLogit);
  if (kind !== 'class-logits') throw new Error(`secure aggregation sums ${SECURE_KINDS.join(', ')}; not ${kind}`);
  if (values.length !== C * C || labelCounts?.length !== C) throw new RangeError(`class-logits: expected ${C * C} values and ${C} label counts`);
  const out = new Uint32Array(C * C + 2 * C);
  for (let c = 0; c < C; c++) {
    const n = labelCounts[c]!;
    if (!(Number.isInteger(n) && n >= 0 && n <= MAX_SECURE_COUNT)) throw new RangeError(`class-logits: the count of class ${c} must be an integer in [0, ${MAX_SECURE_COUNT}] (got ${n})`);
    if (n === 0) continue;
    for (let k = 0; k < C; k++) out[c * C + k] = encodeLogit(values[c * C + k]!);
    out[C * C + c] = 1;
    out[C * C + C + c] = n;
  }
  return out;
}

/** A value of the sum as a number: probabilities and counts unsigned, logits as int32. */
function logitsSigned(word: number): number {
  return word | 0;
}

/** What a participant learns from, built from the round's sum: the same shape as a plain target. */
export interface SumTarget {
  values: Float32Array;
  counts?: number[];
}

/**
 * The mean of every member's knowledge, S/n (FedMD's consensus, a distiller's ensemble):
 * the plain mean within step/2 of each value.
 */
export function meanFromSecureSum(kind: KnowledgeKind, sum: Uint32Array, n: number): SumTarget {
  if (kind === 'class-logits') throw new Error('class-logits targets leave one out (FD); use othersFromSecureSum');
  return { values: decode(kind, sum, undefined, n) };
}

/**
 * The leave-one-out target of a member, (S − own)/(n − 1) (DML, Zhang et al. 2018, eq. 10; FD's
 * per-class mean over the other holders, Jeong et al. 2018), from the round's sum and the member's
 * own encoded upload — exact integer arithmetic before the one division, so the result is the
 * plain target's within the step. null when nobody else contributed.
 */
export function othersFromSecureSum(kind: KnowledgeKind, sum: Uint32Array, own: Uint32Array, n: number, C: number): SumTarget | null {
  if (own.length !== sum.length) throw new RangeError(`own upload has ${own.length} words; the sum ${sum.length}`);
  if (n < 2) return null;
  if (kind !== 'class-logits') return { values: decode(kind, sum, own, n - 1) };
  const values = new Float32Array(C * C);
  const counts = new Array<number>(C);
  for (let c = 0; c < C; c++) {
    const holders = (sum[C * C + c]! - own[C * C + c]!) >>> 0;
    counts[c] = (sum[C * C + C + c]! - own[C * C + C + c]!) >>> 0;
    if (holders === 0) continue;
    for (let k = 0; k < C; k++) values[c * C + k] = logitsSigned((sum[c * C + k]! - own[c * C + k]!) >>> 0) / LOGIT_SCALE / holders;
  }
  return { values, counts };
}

function decode(kind: KnowledgeKind, sum: Uint32Array, own: Uint32Array | undefined, divisor: number): Float32Array {
  const values = new Float32Array(sum.length);
  const probabilities = kind === 'reference-predictions';
  const scale = probabilities ? PROBABILITY_SCALE : LOGIT_SCALE;
  for (let i = 0; i < sum.length; i++) {
    const word = own === undefined ? sum[i]! : (sum[i]! - own[i]!) >>> 0;
    values[i] = (probabilities ? word : logitsSigned(word)) / scale / divisor;
  }
  return values;
}

/**
 * Why a target built from a secure sum could not have come from members that encoded honest
 * knowledge, or undefined when it could. Under secure aggregation the coordinator sees no
 * member's values and cannot refuse a hostile upload (a member can encode rows of 1s, or send
 * any words at all), so the participant checks what it is about to learn from, against the same
 * bounds the coordinator applies to a plain upload: a mean of probabilities lies in [0, 1] with
 * rows summing to 1 (float32 softmax rounding, 1e-3, plus the fixed-point step per value); a mean
 * of logits within ±LOGIT_BOUND; FD's holders of a class at most the other contributors.
 */
export function implausibleSecureTarget(kind: KnowledgeKind, target: SumTarget, C: number, others: number): string | undefined {
  const { values } = target;
  if (kind === 'reference-predictions') {
    const slack = 1e-3 + C / PROBABILITY_SCALE;
    return simplexViolation(values, Math.ceil(values.length / C), C, slack);
  }
  const bound = LOGIT_BOUND + 1 / LOGIT_SCALE;
  const at = values.findIndex((z) => !(Math.abs(z) <= bound));
  if (at >= 0) return `value ${at} is ${values[at]}: a mean of logits clamped to ±${LOGIT_BOUND} lies within them`;
  if (kind === 'class-logits' && target.counts !== undefined) {
    // The holders were summed beside the counts; a class held by more than the other contributors was not summed honestly.
    const c = target.counts.findIndex((n) => !(n >= 0 && n <= others * MAX_SECURE_COUNT));
    if (c >= 0) return `class ${c} has a count of ${target.counts[c]}, more than ${others} members can hold`;
  }
  return undefined;
}
