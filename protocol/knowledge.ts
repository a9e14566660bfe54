/**
 * The kinds of knowledge participants exchange, and what each must satisfy beyond its bytes:
 * the semantic checks both ends share. Every upload carries one tensor (`values`), plus counts
 * where the kind needs them.
 *
 *  - reference-predictions: softmax(z/T) on the round's reference samples, [ids, classes];
 *  - reference-logits: raw logits on the round's reference samples, [ids, classes] (FedMD);
 *  - class-logits: mean logit vector per class over private data, [classes, classes], with the
 *    per-class sample counts in labelCounts (FD — needs no shared data);
 *  - weights: all model parameters flattened, [parameters], with sampleCount (the FedAvg
 *    baseline only, so that bytes and accuracy compare on the same wire).
 */
import { ErrorCode, ProtocolError } from './errors.js';
import { unpackTensor, type WireDtype, type WireTensor } from './tensor.js';

export const KNOWLEDGE_KINDS = ['reference-predictions', 'reference-logits', 'class-logits', 'weights'] as const;
export type KnowledgeKind = (typeof KNOWLEDGE_KINDS)[number];

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

/** An upload after validation: decoded values and the counts that came with them. */
export interface Contribution {
  participant: string;
  kind: KnowledgeKind;
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
}

export interface RawUpload {
  kind: KnowledgeKind;
  values: WireTensor;
  sampleCount?: number;
  labelCounts?: number[];
}

/**
 * How far a row of soft predictions may stray from summing to 1 after the wire encoding:
 * float32 rounding, float16's 2^-11 relative step per entry, uint8's half step per entry.
 */
function simplexTolerance(dtype: WireDtype, numClasses: number, scale: number | undefined): number {
  switch (dtype) {
    case 'float32':
      return 1e-3;
    case 'float16':
      return 1e-3 + numClasses * 2 ** -11;
    case 'uint8':
      return 1e-3 + (numClasses * (scale ?? 0)) / 2;
  }
}

function expectedShape(e: KnowledgeExpectation, upload: RawUpload): number[] {
  switch (e.kind) {
    case 'reference-predictions':
    case 'reference-logits':
      return [e.rows, e.numClasses];
    case 'class-logits':
      return [e.numClasses, e.numClasses];
    case 'weights':
      // Any flat vector until the session has seen one; the same length ever after.
      if (upload.values.shape.length !== 1) {
        throw new ProtocolError(ErrorCode.Shape, `weights travel as one flat vector; got shape [${upload.values.shape.join(',')}]`);
      }
      return [e.parameters ?? upload.values.shape[0]!];
  }
}

/** Validates an upload against the session's expectation and decodes it. Throws a ProtocolError naming what is wrong. */
export function readContribution(participant: string, upload: RawUpload, e: KnowledgeExpectation): Contribution {
  const what = `${upload.kind} for round ${e.round}`;
  if (upload.kind !== e.kind) {
    throw new ProtocolError(ErrorCode.Schema, `${what}: this session exchanges ${e.kind}, not ${upload.kind}`);
  }
  let values: Float32Array;
  try {
    values = unpackTensor(upload.values, Array.isArray(upload.values?.shape) ? expectedShape(e, upload) : undefined);
  } catch (error) {
    if (error instanceof ProtocolError) throw new ProtocolError(error.code, `${what}: ${error.toWire().message}`);
    throw error;
  }
  const contribution: Contribution = { participant, kind: upload.kind, values };
  if (upload.sampleCount !== undefined) contribution.sampleCount = upload.sampleCount;
  if (upload.labelCounts !== undefined) {
    if (upload.labelCounts.length !== e.numClasses) {
      throw new ProtocolError(ErrorCode.Shape, `${what}: labelCounts has ${upload.labelCounts.length} entries; the session has ${e.numClasses} classes`);
    }
    contribution.labelCounts = upload.labelCounts;
  }
  switch (e.kind) {
    case 'reference-predictions':
      checkSimplex(values, e.rows, e.numClasses, simplexTolerance(upload.values.dtype, e.numClasses, upload.values.scale), what);
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
  }
  return contribution;
}

/** Every value in [0, 1] and every row summing to 1, within the encoding's tolerance. */
function checkSimplex(values: Float32Array, rows: number, numClasses: number, tolerance: number, what: string): void {
  for (let r = 0; r < rows; r++) {
    let sum = 0;
    for (let k = 0; k < numClasses; k++) {
      const p = values[r * numClasses + k]!;
      if (!(p >= -tolerance && p <= 1 + tolerance)) {
        throw new ProtocolError(ErrorCode.Value, `${what}: row ${r}, class ${k} is ${p}; soft predictions must be probabilities in [0, 1]`);
      }
      sum += p;
    }
    if (Math.abs(sum - 1) > tolerance) {
      throw new ProtocolError(
        ErrorCode.Value,
        `${what}: row ${r} sums to ${sum.toFixed(6)}; soft predictions must sum to 1 (±${tolerance.toPrecision(2)}) — send softmax(logits / T), not logits`,
      );
    }
  }
}
