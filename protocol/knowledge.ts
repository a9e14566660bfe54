/**
 * The kinds of knowledge participants exchange, and what each must satisfy beyond its bytes:
 * the semantic checks both ends share. Every upload carries one tensor (`values`), plus counts
 * where the kind needs them.
 *
 *  - reference-predictions: softmax(z/T) on the round's reference samples, [ids, classes];
 *  - reference-token-predictions: softmax(z/T) of a language model at every position of the round's
 *    reference windows (shared text cut into windows of `positions` tokens), [ids, positions, vocab];
 *    the session fixes positions and the tokenizer (so the vocabulary), and refuses a participant
 *    whose tokenizer differs at its join;
 *  - reference-logits: raw logits on the round's reference samples, [ids, classes] (FedMD);
 *  - class-logits: mean logit vector per class over private data, [classes, classes], with the
 *    per-class sample counts in labelCounts (FD — needs no shared data);
 *  - weights: all model parameters flattened, [parameters], with sampleCount (the FedAvg
 *    baseline only, so that bytes and accuracy compare on the same wire);
 *  - class-representations: per class, the mean of the penultimate layer's output over private
 *    data — a prototype — [classes, width], with labelCounts and sampleCount (FedProto);
 *  - class-hyper-knowledge: per class, the mean representation followed by the mean soft
 *    prediction softmax(z/T), [classes, width + classes], with labelCounts and sampleCount (FedHKD).
 *  Both class kinds need no shared data. A class the sender does not hold has count 0 and a row of
 *  zeros; the row width is fixed by the session's first aggregated round, as the parameter count of weights is.
 */
import { ErrorCode, ProtocolError } from './errors.js';
import { decodeTopKRows, expandTopK, isTopK, type KnowledgeTensor, type TopKRows, type TopKWireTensor } from './sparse.js';
import { decodeTensorValues, unpackTensor, type WireDtype, type WireTensor } from './tensor.js';

export const KNOWLEDGE_KINDS = ['reference-predictions', 'reference-token-predictions', 'reference-logits', 'class-logits', 'weights', 'class-representations', 'class-hyper-knowledge'] as const;
export type KnowledgeKind = (typeof KNOWLEDGE_KINDS)[number];
/** What a session exchanges: a kind of knowledge, or nothing (local training). */
export type Knowledge = KnowledgeKind | 'none';

/** What fixes a tensor's shape in a round: its reference rows, the classes, the model's parameter count. */
export interface ShapeContext {
  /** Reference samples in the round (reference kinds). */
  rows: number;
  numClasses: number;
  /** Parameters of the model whose weights are exchanged (weights), once known. */
  parameters?: number;
  /** Values per class row of the class kinds (class-representations, class-hyper-knowledge), once known. */
  width?: number;
  /** Tokens per reference window (reference-token-predictions): the session's context. */
  positions?: number;
}

/** The kinds whose values are probabilities (softmax at T) over the last axis: simplex-checked, and the only ones with a top-k form. */
export function isProbabilityKind(kind: Knowledge): kind is 'reference-predictions' | 'reference-token-predictions' {
  return kind === 'reference-predictions' || kind === 'reference-token-predictions';
}

/** The kinds whose rows are per-class means of a width the first upload fixes. */
export function isClassRowKind(kind: Knowledge): kind is 'class-representations' | 'class-hyper-knowledge' {
  return kind === 'class-representations' || kind === 'class-hyper-knowledge';
}

/**
 * The shape of a tensor of this knowledge — an upload and the target sent back alike. Decided
 * here once: the strategy packs its targets in this shape, and the participant unpacks them
 * against it. The shape of weights is known only to who holds the model (or has seen one upload).
 */
export function knowledgeShape(knowledge: Knowledge, context: ShapeContext): number[] {
  switch (knowledge) {
    case 'reference-predictions':
    case 'reference-logits':
      return [context.rows, context.numClasses];
    case 'reference-token-predictions':
      if (context.positions === undefined) throw new Error('the shape of reference-token-predictions needs the positions per window');
      return [context.rows, context.positions, context.numClasses];
    case 'class-logits':
      return [context.numClasses, context.numClasses];
    case 'weights':
      if (context.parameters === undefined) throw new Error('the shape of weights needs the parameter count');
      return [context.parameters];
    case 'class-representations':
    case 'class-hyper-knowledge':
      if (context.width === undefined) throw new Error(`the shape of ${knowledge} needs the row width`);
      return [context.numClasses, context.width];
    case 'none':
      return [0];
  }
}

/**
 * The reference ids of one shard in an asynchronous session: the reference set cut into
 * `shards` contiguous, near-equal slices, so both ends agree on a shard's rows from its number.
 */
export function shardIds(referenceSize: number, shards: number, shard: number): number[] {
  if (!Number.isInteger(shard) || shard < 0 || shard >= shards) {
    throw new ProtocolError(ErrorCode.Schema, `shard ${shard} does not exist; the reference set has shards 0…${shards - 1}`);
  }
  const start = Math.floor((shard * referenceSize) / shards);
  const end = Math.floor(((shard + 1) * referenceSize) / shards);
  return Array.from({ length: end - start }, (_, i) => start + i);
}

/**
 * One participant's knowledge after validation: decoded values (row-major, in the shape its
 * kind fixes) and the counts that came with them. The one type the coordinator hands its
 * sessions, the aggregators read and the journal stores.
 */
export interface Contribution {
  participant: string;
  /** May view the received envelope's bytes (readContribution reads aligned float32 in place): the envelope must not change. */
  values: Float32Array;
  sampleCount?: number;
  labelCounts?: number[];
}

/** What the receiving session expects of an upload in the current round. */
export interface KnowledgeExpectation {
  kind: KnowledgeKind;
  round: number;
  numClasses: number;
  /** Reference samples in the round (reference kinds). */
  rows: number;
  /** Parameter count every weights upload must have, once known. */
  parameters?: number;
  /** Row width every class-representations or class-hyper-knowledge upload must have, once known. */
  width?: number;
  /** Tokens per reference window (reference-token-predictions). */
  positions?: number;
}

export interface RawUpload {
  kind: KnowledgeKind;
  /** Dense, or (soft predictions only) top-k sparse: see sparse.ts. */
  values: KnowledgeTensor;
  sampleCount?: number;
  labelCounts?: number[];
}

/**
 * How far one probability may stray outside [0, 1], whatever the dtype: float32 rounding of a
 * softmax needs far less. An honest float16 or uint8 value stays in [0, 1] as it is (float16
 * rounds monotonically and holds 0 and 1 exactly; uint8 levels lie between the tensor's min and
 * max, which packTensor takes from the values), so no dtype needs more.
 */
const PROBABILITY_SLACK = 1e-3;

/**
 * The largest uint8 step an honest sender of probabilities uses: packTensor spreads a tensor's
 * [min, max] ⊂ [0, 1] over 255 steps.
 */
const MAX_PROBABILITY_SCALE = 1 / 255;

/**
 * How far a row of soft predictions may stray from summing to 1 after the wire encoding, from
 * the dtype's honest worst case alone — never from anything the sender chose: float32 rounding;
 * float16's 2^-11 relative step per entry; uint8's half step per entry, with the step at most
 * MAX_PROBABILITY_SCALE (checkProbabilityQuantisation refuses a larger one).
 */
function simplexTolerance(dtype: WireDtype, numClasses: number): number {
  switch (dtype) {
    case 'float32':
      return 1e-3;
    case 'float16':
      return 1e-3 + numClasses * 2 ** -11;
    case 'uint8':
      return 1e-3 + (numClasses * MAX_PROBABILITY_SCALE) / 2;
  }
}

/**
 * A uint8 tensor of probabilities must keep all 256 of its levels, min + q·scale for q = 0…255, in
 * [0, 1] (up to PROBABILITY_SLACK): parameters an honest sender never uses are refused as such,
 * before any value is looked at. (decodeTensorValues has already checked they are finite numbers
 * and scale ≥ 0.) A scale of 0 — a constant tensor, which packTensor sends that way — decodes
 * every value to min, which this bounds too.
 */
function checkProbabilityQuantisation(t: Pick<WireTensor, 'dtype' | 'min' | 'scale'>): void {
  if (t.dtype !== 'uint8') return;
  const min = t.min!;
  const scale = t.scale!;
  const top = min + 255 * scale;
  if (min < -PROBABILITY_SLACK || top > 1 + PROBABILITY_SLACK) {
    throw new ProtocolError(
      ErrorCode.Value,
      `uint8 quantisation min=${min}, scale=${scale} puts its levels in [${min}, ${top}]; soft predictions need them in [0, 1] ` +
        `(min ≥ 0 and min + 255·scale ≤ 1, so scale ≤ 1/255): quantise the probabilities themselves, as packTensor does`,
    );
  }
}

function expectedShape(e: KnowledgeExpectation, upload: RawUpload): number[] {
  if (e.kind === 'weights' && e.parameters === undefined) {
    // Any flat vector until a round has fixed the length (server/sync-rounds.ts); that length ever after.
    if (upload.values.shape.length !== 1) {
      throw new ProtocolError(ErrorCode.Shape, `weights travel as one flat vector; got shape [${upload.values.shape.join(',')}]`);
    }
    return [upload.values.shape[0]!];
  }
  if (isClassRowKind(e.kind) && e.width === undefined) {
    // Any width the kind allows until a round has fixed it (server/sync-rounds.ts); that width ever after.
    const shape = upload.values.shape;
    const least = e.kind === 'class-hyper-knowledge' ? e.numClasses + 1 : 1;
    if (shape.length !== 2 || shape[0] !== e.numClasses || !Number.isInteger(shape[1]) || shape[1]! < least || shape[1]! > MAX_CLASS_ROW_WIDTH) {
      throw new ProtocolError(
        ErrorCode.Shape,
        `${e.kind} travel as [classes, width] = [${e.numClasses}, w] with ${least} ≤ w ≤ ${MAX_CLASS_ROW_WIDTH}` +
          `${e.kind === 'class-hyper-knowledge' ? ' (a representation of at least one value, then the class\'s soft prediction over the classes)' : ''}; got shape [${shape.join(',')}]`,
      );
    }
    return [e.numClasses, shape[1]!];
  }
  return knowledgeShape(e.kind, e);
}

/** Validates an upload against the session's expectation and decodes it. Throws a ProtocolError naming what is wrong. */
export function readContribution(participant: string, upload: RawUpload, e: KnowledgeExpectation): Contribution {
  const what = `${upload.kind} for round ${e.round}`;
  if (upload.kind !== e.kind) {
    throw new ProtocolError(ErrorCode.Schema, `${what}: this session exchanges ${e.kind}, not ${upload.kind}`);
  }
  const probabilities = isProbabilityKind(e.kind);
  // Rows of the last axis: one per reference sample, or per position of each reference window.
  const distributions = e.rows * (e.kind === 'reference-token-predictions' ? (e.positions ?? 0) : 1);
  let values: Float32Array;
  // Soft predictions get one pass over their values instead of two: isOnSimplex accepts exactly
  // what the finiteness scan (unpackTensor's last step) and checkSimplex both accept, and when it
  // does not, the two run as before, in the order they always ran, so the error is the one they
  // always threw.
  let offSimplex = false;
  try {
    const shape = Array.isArray(upload.values?.shape) ? expectedShape(e, upload) : undefined;
    if (isTopK(upload.values)) {
      if (!probabilities) throw new ProtocolError(ErrorCode.Schema, `the top-k sparse form carries probabilities (reference-predictions, reference-token-predictions) only; ${e.kind} travels dense`);
      values = readTopKProbabilities(upload.values, shape);
    } else if (probabilities) {
      // In place where the bytes are aligned (encodeMessage aligns large tensors): the receiver owns
      // the envelope and nothing writes to it, so the copy would buy nothing.
      values = decodeTensorValues(upload.values, shape, { inPlace: true });
      checkProbabilityQuantisation(upload.values);
      offSimplex = !isOnSimplex(values, distributions, e.numClasses, simplexTolerance(upload.values.dtype, e.numClasses), PROBABILITY_SLACK);
      if (offSimplex) values = unpackTensor(upload.values, shape); // throws if a value is not finite
    } else {
      values = unpackTensor(upload.values, shape, { inPlace: true });
    }
  } catch (error) {
    if (error instanceof ProtocolError) throw new ProtocolError(error.code, `${what}: ${error.toWire().message}`);
    throw error;
  }
  const contribution = withCounts({ participant, values }, upload, e, what);
  switch (e.kind) {
    case 'reference-predictions':
    case 'reference-token-predictions':
      if (offSimplex) {
        checkSimplex(values, distributions, e.numClasses, simplexTolerance(upload.values.dtype, e.numClasses), PROBABILITY_SLACK, what);
        // isOnSimplex refused what checkSimplex accepts: a bug here, not the participant's.
        throw new Error(`${what}: the fused probability check and checkSimplex disagree`);
      }
      break;
    case 'class-logits':
      if (contribution.labelCounts === undefined) {
        throw new ProtocolError(ErrorCode.Schema, `${what}: labelCounts is required: the private sample count behind each class's mean logits`);
      }
      break;
    case 'weights':
      if (contribution.sampleCount === undefined || contribution.sampleCount < 1) {
        throw new ProtocolError(ErrorCode.Schema, `${what}: sampleCount ≥ 1 is required to weight the average`);
      }
      break;
    case 'reference-logits':
      break;
    case 'class-representations':
    case 'class-hyper-knowledge':
      checkClassRows(contribution, e, upload.values.dtype, what);
      break;
  }
  return contribution;
}

/** The widest class row a session takes: a penultimate layer of 4,096 units plus its classes is far below it. */
export const MAX_CLASS_ROW_WIDTH = 65_536;

/**
 * The largest magnitude a representation value may have. The coordinator averages the rows, so
 * one participant's value of v moves the class's mean by up to v·n_i/n: without a bound a
 * single sender could put the mean anywhere. Honest penultimate activations of the students
 * here are O(1)–O(10) (ReLU outputs of an MLP or CNN on [0, 1] inputs); 10⁴ leaves room for
 * any reasonable model while keeping one sender's pull bounded.
 */
export const MAX_REPRESENTATION_MAGNITUDE = 1e4;

/**
 * The class kinds' semantic checks: counts that say how many private samples stand behind each
 * row and add up to sampleCount; a row of zeros for every class the sender does not hold (so
 * "absent" means one thing on the wire); representation values bounded by
 * MAX_REPRESENTATION_MAGNITUDE; and for class-hyper-knowledge, each held class's soft prediction
 * (the row's last `classes` values) on the simplex.
 */
function checkClassRows(c: Contribution, e: KnowledgeExpectation, dtype: WireDtype, what: string): void {
  const C = e.numClasses;
  const { labelCounts, sampleCount, values } = c;
  if (labelCounts === undefined || sampleCount === undefined) {
    throw new ProtocolError(ErrorCode.Schema, `${what}: labelCounts and sampleCount are required: the private samples behind each class's mean, and their total`);
  }
  let total = 0;
  for (const n of labelCounts) total += n;
  if (total !== sampleCount || sampleCount < 1) {
    throw new ProtocolError(ErrorCode.Value, `${what}: labelCounts add up to ${total} but sampleCount is ${sampleCount}; they must agree, and at least one sample must stand behind the upload`);
  }
  const width = values.length / C;
  const soft = e.kind === 'class-hyper-knowledge' ? C : 0;
  const represented = width - soft;
  for (let k = 0; k < C; k++) {
    const row = values.subarray(k * width, (k + 1) * width);
    if (labelCounts[k] === 0) {
      const at = row.findIndex((v) => v !== 0);
      if (at >= 0) throw new ProtocolError(ErrorCode.Value, `${what}: class ${k} has count 0 but its row holds ${row[at]} at column ${at}; a class the sender does not hold must be a row of zeros`);
      continue;
    }
    for (let j = 0; j < represented; j++) {
      if (!(Math.abs(row[j]!) <= MAX_REPRESENTATION_MAGNITUDE)) {
        throw new ProtocolError(ErrorCode.Value, `${what}: class ${k}, representation value ${j} is ${row[j]}; representation values must lie in [−${MAX_REPRESENTATION_MAGNITUDE}, ${MAX_REPRESENTATION_MAGNITUDE}]`);
      }
    }
    if (soft > 0) checkSimplex(row.subarray(represented), 1, C, simplexTolerance(dtype, C), PROBABILITY_SLACK, `${what}: class ${k}'s soft prediction`);
  }
}

/** The counts that came with an upload, checked against the session, added to its contribution. */
function withCounts(contribution: Contribution, upload: RawUpload, e: KnowledgeExpectation, what: string): Contribution {
  if (upload.sampleCount !== undefined) contribution.sampleCount = upload.sampleCount;
  if (upload.labelCounts !== undefined) {
    if (upload.labelCounts.length !== e.numClasses) {
      throw new ProtocolError(ErrorCode.Shape, `${what}: labelCounts has ${upload.labelCounts.length} entries; the session has ${e.numClasses} classes`);
    }
    contribution.labelCounts = upload.labelCounts;
  }
  return contribution;
}

/**
 * A top-k tensor of probabilities (sparse.ts) decoded to its dense rows and checked by the dense
 * form's rule: whatever it is accepted from decodes to values a float32 upload of the whole rows
 * could have carried — every value in [0, 1] up to PROBABILITY_SLACK, every row summing to 1
 * within simplexTolerance(dtype, last axis). Before that, with a message naming the fault: the
 * structure (decodeTopKRows: k, shape, bytes, indices in range and distinct), uint8 parameters an
 * honest sender of probabilities uses, each of the k values finite and in [0, 1], and their sum
 * at most 1 + simplexTolerance(dtype, k) — the dtype's worst case over the k values sent, never
 * anything the sender chose — since the remaining mass, 1 − Σ, cannot be negative; with k equal
 * to the last axis nothing remains to spread, and the row must sum to 1 as a dense one does.
 * Used for uploads (readContribution) and by participants for targets that come down top-k.
 */
export function readTopKProbabilities(t: TopKWireTensor, expected?: readonly number[]): Float32Array {
  const sparse = decodeTopKRows(t, expected);
  checkProbabilityQuantisation(t);
  checkTopKValues(sparse, simplexTolerance(t.dtype, sparse.k));
  const dense = expandTopK(sparse);
  const tolerance = simplexTolerance(t.dtype, sparse.width);
  if (!isOnSimplex(dense, sparse.rows, sparse.width, tolerance, PROBABILITY_SLACK)) {
    checkSimplex(dense, sparse.rows, sparse.width, tolerance, PROBABILITY_SLACK, 'top-k probabilities, spread to dense rows');
  }
  return dense;
}

function checkTopKValues({ rows, width, k, indices, values }: TopKRows, tolerance: number): void {
  for (let r = 0; r < rows; r++) {
    let sum = 0;
    for (let i = r * k; i < r * k + k; i++) {
      const p = values[i]!;
      if (!(p >= -PROBABILITY_SLACK && p <= 1 + PROBABILITY_SLACK)) {
        throw new ProtocolError(ErrorCode.Value, `top-k row ${r}, entry ${indices[i]} is ${p}; top-k values must be probabilities in [0, 1]`);
      }
      sum += p;
    }
    if (sum > 1 + tolerance) {
      throw new ProtocolError(
        ErrorCode.Value,
        `top-k row ${r}: its ${k} probabilities sum to ${sum.toFixed(6)}, past 1 (+${tolerance.toPrecision(2)}); the remaining mass 1 − Σ cannot be negative`,
      );
    }
    if (k === width && sum < 1 - tolerance) {
      throw new ProtocolError(ErrorCode.Value, `top-k row ${r}: k is the whole last axis (${width}) and its probabilities sum to ${sum.toFixed(6)}; they must sum to 1 (±${tolerance.toPrecision(2)})`);
    }
  }
}

/**
 * True exactly when every value is finite and checkSimplex would accept them: one pass, no message,
 * no branch per value (the comparisons are and-ed as bits, so there is no early exit either: a
 * refusal is the rare case, and checkSimplex finds where). Why it is the same test: NaN fails both
 * comparisons and ±Inf one of them, so "finite and in [−tol, 1 + tol]" is "in [−tol, 1 + tol]",
 * compared exactly as checkSimplex compares; with every value in range every row sum is finite
 * and is added up exactly as checkSimplex adds it (float64, in index order), so |sum − 1| ≤ tol
 * is the negation of its refusal. On 5,000×10 softmax rows: 52 µs, against 92 µs for checkSimplex
 * plus 40 µs for the finiteness scan (best of 9 × 30 calls, the 2-core machine under load 8).
 */
export function isOnSimplex(values: Float32Array, rows: number, numClasses: number, tolerance: number, valueTolerance = tolerance): boolean {
  if (numClasses >= WIDE_ROWS) return isOnSimplexWide(values, rows, numClasses, tolerance, valueTolerance);
  const lo = -valueTolerance;
  const hi = 1 + valueTolerance;
  let ok = 1;
  for (let r = 0, i = 0; r < rows; r++) {
    let sum = 0;
    for (const end = i + numClasses; i < end; i++) {
      const p = values[i]!;
      sum += p;
      ok &= Number(p >= lo) & Number(p <= hi);
    }
    ok &= Number(Math.abs(sum - 1) <= tolerance);
  }
  return ok === 1;
}

/**
 * From this many classes a row is summed in four interleaved parts (isOnSimplexWide): on 5,000
 * rows of 10 classes 49 µs against 59 µs one value after another (best of 9 × 30 calls).
 */
const WIDE_ROWS = 8;

/**
 * isOnSimplex for rows of 8 classes or more: summed one value after another, a row is a chain of
 * dependent float64 additions (100 in a row of 100 classes), which the processor cannot overlap; four
 * partial sums make four chains a quarter as long. They round differently from checkSimplex's
 * sum, so the verdict is taken only when it cannot differ: both sums add the same m values, each
 * in [−tol, 1 + tol], so each lies within (m − 1)·2^−53·m·(1 + tol) of the exact sum (the
 * standard bound for recursive summation, Higham 2002, §4.2), and |s − 1| adds one more rounding
 * of at most 2^−53·(m·(1 + tol) + 1). With `margin` twice the sum of those, a row whose |s − 1|
 * is within margin of the tolerance is summed again, one value after another, as checkSimplex
 * sums it. (A row holding a value out of range, NaN included, fails the value test anyway.)
 */
function isOnSimplexWide(values: Float32Array, rows: number, m: number, tolerance: number, valueTolerance: number): boolean {
  const lo = -valueTolerance;
  const hi = 1 + valueTolerance;
  const u = 2 ** -53;
  const margin = 2 * (2 * (m - 1) * u * m * hi + 2 * u * (m * hi + 1));
  const tail = m % 4;
  let ok = 1;
  for (let r = 0; r < rows; r++) {
    const base = r * m;
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    let k = base;
    for (const end = base + m - tail; k < end; k += 4) {
      const a = values[k]!;
      const b = values[k + 1]!;
      const c = values[k + 2]!;
      const d = values[k + 3]!;
      s0 += a;
      s1 += b;
      s2 += c;
      s3 += d;
      ok &= Number(a >= lo) & Number(a <= hi) & Number(b >= lo) & Number(b <= hi) & Number(c >= lo) & Number(c <= hi) & Number(d >= lo) & Number(d <= hi);
    }
    for (; k < base + m; k++) {
      const p = values[k]!;
      s0 += p;
      ok &= Number(p >= lo) & Number(p <= hi);
    }
    const deviation = Math.abs(s0 + s1 + (s2 + s3) - 1);
    if (deviation <= tolerance - margin) continue;
    if (deviation > tolerance + margin) {
      ok = 0;
      continue;
    }
    let sum = 0;
    for (let i = base; i < base + m; i++) sum += values[i]!;
    ok &= Number(Math.abs(sum - 1) <= tolerance);
  }
  return ok === 1;
}

/**
 * Where values leave the probability simplex, or undefined: the first value outside [0, 1]
 * (± valueTolerance) or the first row not summing to 1 (± tolerance), named by row and class. One
 * wording for every caller: a participant's upload (checkSimplex) and a target built from a secure
 * sum (protocol/secure/fixed-point.ts), each prefixing what it checked.
 */
export function simplexViolation(values: Float32Array, rows: number, numClasses: number, tolerance: number, valueTolerance = tolerance): string | undefined {
  for (let r = 0; r < rows; r++) {
    let sum = 0;
    for (let k = 0; k < numClasses; k++) {
      const p = values[r * numClasses + k]!;
      if (!(p >= -valueTolerance && p <= 1 + valueTolerance)) return `row ${r}, class ${k} is ${p}; a probability lies in [0, 1] (±${valueTolerance.toPrecision(2)})`;
      sum += p;
    }
    if (Math.abs(sum - 1) > tolerance) return `row ${r} sums to ${sum.toFixed(6)}; a row of probabilities sums to 1 (±${tolerance.toPrecision(2)})`;
  }
  return undefined;
}

/** Every value in [0, 1] (± valueTolerance) and every row summing to 1 (± the encoding's tolerance), or E_VALUE naming the first that does not. */
function checkSimplex(values: Float32Array, rows: number, numClasses: number, tolerance: number, valueTolerance: number, what: string): void {
  const violation = simplexViolation(values, rows, numClasses, tolerance, valueTolerance);
  if (violation !== undefined) throw new ProtocolError(ErrorCode.Value, `${what}: ${violation}`);
}

/**
 * A target as a participant receives it (a round's target, an asynchronous ensemble), decoded and
 * held to what an honest coordinator sends for the session's knowledge before anything trains on
 * it — the bounds readContribution holds an upload to: soft predictions on the simplex (dense as
 * top-k), counts one per class, and for the class kinds rows of zeros where no one holds the class,
 * representations within MAX_REPRESENTATION_MAGNITUDE and FedHKD's soft parts on the simplex (a
 * mean of such rows is such a row). Logits (reference-logits, class-logits) are only finite.
 * Throws a ProtocolError naming the first fault.
 */
export function readTarget(kind: KnowledgeKind, t: KnowledgeTensor, shape: readonly number[], counts: readonly number[] | undefined, numClasses: number): Float32Array {
  const what = `the ${kind} target`;
  try {
    if (isTopK(t)) {
      if (!isProbabilityKind(kind)) throw new ProtocolError(ErrorCode.Schema, `the top-k sparse form carries probabilities (reference-predictions, reference-token-predictions) only; ${kind} travels dense`);
      return readTopKProbabilities(t, shape);
    }
    const values = unpackTensor(t, shape);
    if (isProbabilityKind(kind)) {
      checkProbabilityQuantisation(t);
      const width = shape[shape.length - 1] ?? 0;
      const rows = width === 0 ? 0 : values.length / width;
      const tolerance = simplexTolerance(t.dtype, width);
      if (!isOnSimplex(values, rows, width, tolerance, PROBABILITY_SLACK)) checkSimplex(values, rows, width, tolerance, PROBABILITY_SLACK, 'soft predictions');
    }
    if (kind === 'class-logits' || isClassRowKind(kind)) {
      if (counts === undefined || counts.length !== numClasses) {
        throw new ProtocolError(ErrorCode.Shape, `counts has ${counts === undefined ? 'no' : counts.length} entries; the session has ${numClasses} classes`);
      }
    }
    if (isClassRowKind(kind)) {
      const sampleCount = counts!.reduce((a, b) => a + b, 0);
      const held = { participant: 'the coordinator', values, labelCounts: [...counts!], sampleCount };
      if (sampleCount > 0) checkClassRows(held, { kind, round: 0, numClasses, rows: 0 }, t.dtype, 'per-class rows');
      else if (values.some((v) => v !== 0)) throw new ProtocolError(ErrorCode.Value, 'every count is 0 but the rows are not all zeros');
    }
    return values;
  } catch (error) {
    if (error instanceof ProtocolError) throw new ProtocolError(error.code, `${what}: ${error.toWire().message}`);
    throw error;
  }
}
