/**
 * Top-k sparse probabilities on the wire: per row of a probability tensor (its last axis is the
 * distribution: `[rows, classes]`, or `[rows, positions, vocab]` per token), the k largest
 * probabilities and their indices. The remaining mass, 1 − Σ top-k, is not sent: the receiver
 * derives it and spreads it uniformly over the row's other n − k entries: with nothing known of
 * the tail, that is the completion of largest entropy that agrees with the top k (Jaynes 1957,
 * "Information theory and statistical mechanics"), the way label smoothing spreads its mass
 * (Szegedy et al. 2016, §7). Sending the remainder would cost one more value per row and carry
 * nothing the values do not fix, since an honest row sums to 1.
 *
 * A top-k tensor travels as `{ dtype, shape, k, indices, data, min?, scale? }`: `shape` is the
 * dense shape; `data` holds rows·k probabilities packed as packTensor packs `dtype` (uint8 with
 * the tensor's min and scale); `indices` holds rows·k positions along the last axis, one byte
 * each when that axis has at most 256 entries, else two (little-endian uint16). The index width
 * follows from the shape alone: the sender does not choose it.
 *
 * A learner may instead treat the remaining mass as unknown and fill it in proportion to its own
 * distribution over the entries outside the support (`sparseTail: student`, client/losses/tokens.ts):
 * for that it keeps which entries were sent (topKSupport).
 *
 * This file packs, reads and expands the form; what an accepted upload may hold (probabilities,
 * sums) is checked where the dense form's is, in knowledge.ts (readTopKProbabilities).
 */
import { ErrorCode, ProtocolError } from './errors.js';
import { decodeTensorValues, packTensor, type WireDtype, type WireTensor } from './tensor.js';

/** A probability tensor as its k largest entries per row (the remaining mass derived by the receiver). */
export interface TopKWireTensor {
  dtype: WireDtype;
  /** The dense shape; the last axis is the distribution's. */
  shape: number[];
  k: number;
  /** rows·k indices along the last axis: uint8, or little-endian uint16 when the last axis has more than 256 entries. */
  indices: Uint8Array;
  /** rows·k probabilities packed as `dtype` (see packTensor). */
  data: Uint8Array;
  min?: number;
  scale?: number;
}

/** A dense or a top-k tensor: what an upload of soft predictions or a target may carry. */
export type KnowledgeTensor = WireTensor | TopKWireTensor;

/** The widest last axis a two-byte index addresses. */
export const MAX_TOP_K_WIDTH = 65536;

/** Whether a received tensor is in the top-k form (it names its k). */
export function isTopK(t: KnowledgeTensor): t is TopKWireTensor {
  return typeof t === 'object' && t !== null && 'k' in t && (t as { k?: unknown }).k !== undefined;
}

/** Bytes per index for a last axis of `width` entries. */
export function topKIndexBytes(width: number): 1 | 2 {
  return width <= 256 ? 1 : 2;
}

/**
 * The k largest probabilities of every row of `values` (row-major, `shape`'s last axis the
 * distribution), largest first, ties to the lower index; packed as `dtype`.
 */
export function packTopK(values: Float32Array, shape: readonly number[], k: number, dtype: WireDtype): TopKWireTensor {
  const { rows, width } = rowsOf(shape);
  checkK(k, width);
  if (values.length !== rows * width) {
    throw new ProtocolError(ErrorCode.Shape, `top-k: shape [${shape.join(',')}] has ${rows * width} values but ${values.length} were given`);
  }
  const top = new Float32Array(rows * k);
  const wide = topKIndexBytes(width) === 2;
  const positions = wide ? new Uint16Array(rows * k) : new Uint8Array(rows * k);
  // Per row an insertion into the k best so far: O(width · k) at worst, O(width) for the usual
  // small k, with no allocation per row.
  const bestValue = new Float64Array(k);
  const bestIndex = new Int32Array(k);
  for (let r = 0; r < rows; r++) {
    const base = r * width;
    let held = 0;
    for (let j = 0; j < width; j++) {
      const v = values[base + j]!;
      if (held === k && !(v > bestValue[k - 1]!)) continue;
      let at = held < k ? held++ : k - 1;
      while (at > 0 && v > bestValue[at - 1]!) {
        bestValue[at] = bestValue[at - 1]!;
        bestIndex[at] = bestIndex[at - 1]!;
        at--;
      }
      bestValue[at] = v;
      bestIndex[at] = j;
    }
    for (let i = 0; i < k; i++) {
      top[r * k + i] = bestValue[i]!;
      positions[r * k + i] = bestIndex[i]!;
    }
  }
  const packed = packTensor(top, [rows, k], dtype);
  const indices = new Uint8Array(positions.buffer, positions.byteOffset, positions.byteLength).slice();
  if (wide && !HOST_IS_LITTLE_ENDIAN) swapPairs(indices);
  const out: TopKWireTensor = { dtype, shape: [...shape], k, indices, data: packed.data };
  if (packed.min !== undefined) out.min = packed.min;
  if (packed.scale !== undefined) out.scale = packed.scale;
  return out;
}

/** A top-k tensor read back: its rows' indices and probabilities as decoded, not yet checked as probabilities. */
export interface TopKRows {
  rows: number;
  /** Entries along the last axis. */
  width: number;
  k: number;
  /** rows·k indices, each in [0, width), distinct within its row. */
  indices: Uint16Array;
  /** rows·k decoded values (finite or not: the caller checks them as probabilities). */
  values: Float32Array;
}

/**
 * Decodes a received top-k tensor's structure: shape (against `expectedShape` when given), k in
 * [1, width], byte counts, the values' dtype and quantisation parameters (as decodeTensorValues
 * checks a dense tensor's), every index inside the last axis and no index twice in a row. Throws
 * a ProtocolError naming the first fault. The values themselves are checked by the caller.
 */
export function decodeTopKRows(t: TopKWireTensor, expectedShape?: readonly number[]): TopKRows {
  if (typeof t !== 'object' || t === null) throw new ProtocolError(ErrorCode.Schema, 'top-k tensor must be an object');
  if (!Array.isArray(t.shape) || t.shape.length === 0) {
    throw new ProtocolError(ErrorCode.Shape, `top-k tensor needs a shape of rank ≥ 1; got ${Array.isArray(t.shape) ? '[]' : typeof t.shape}`);
  }
  if (expectedShape !== undefined && !(t.shape.length === expectedShape.length && t.shape.every((d, i) => d === expectedShape[i]))) {
    throw new ProtocolError(ErrorCode.Shape, `top-k tensor has shape [${t.shape.slice(0, 8).join(',')}]; expected [${expectedShape.join(',')}]`);
  }
  const { rows, width } = rowsOf(t.shape);
  checkK(t.k, width);
  const k = t.k;
  // The values: a dense [rows, k] tensor as far as their bytes go.
  const values = decodeTensorValues({ dtype: t.dtype, shape: [rows, k], data: t.data, min: t.min, scale: t.scale } as WireTensor);
  if (!(t.indices instanceof Uint8Array)) throw new ProtocolError(ErrorCode.Schema, 'top-k tensor indices must be binary (Uint8Array)');
  const indexBytes = topKIndexBytes(width);
  if (t.indices.byteLength !== rows * k * indexBytes) {
    throw new ProtocolError(
      ErrorCode.Shape,
      `top-k tensor of ${rows} rows × k=${k} needs ${rows * k * indexBytes} index bytes (${indexBytes === 1 ? 'uint8' : 'uint16'}, the last axis has ${width} entries); got ${t.indices.byteLength}`,
    );
  }
  const indices = new Uint16Array(rows * k);
  if (indexBytes === 1) indices.set(t.indices);
  else {
    const bytes = t.indices;
    for (let i = 0; i < rows * k; i++) indices[i] = bytes[2 * i]! | (bytes[2 * i + 1]! << 8);
  }
  // Distinct within a row: each row stamps the entries it names with its own number.
  const seen = new Uint32Array(width);
  for (let r = 0; r < rows; r++) {
    for (let i = r * k; i < r * k + k; i++) {
      const j = indices[i]!;
      if (j >= width) {
        throw new ProtocolError(ErrorCode.Value, `top-k row ${r} names entry ${j}; the last axis has entries 0…${width - 1}`);
      }
      if (seen[j] === r + 1) throw new ProtocolError(ErrorCode.Value, `top-k row ${r} names entry ${j} twice; a row's k indices must be distinct`);
      seen[j] = r + 1;
    }
  }
  return { rows, width, k, indices, values };
}

/**
 * The dense rows a top-k form stands for: each row's k values at their indices, and its remaining
 * mass max(0, 1 − Σ top-k) spread evenly over the other width − k entries (none when k = width).
 */
export function expandTopK(sparse: TopKRows): Float32Array {
  const { rows, width, k, indices, values } = sparse;
  const out = new Float32Array(rows * width);
  const others = width - k;
  for (let r = 0; r < rows; r++) {
    let sum = 0;
    for (let i = r * k; i < r * k + k; i++) sum += values[i]!;
    const base = r * width;
    if (others > 0) out.fill(Math.max(0, 1 - sum) / others, base, base + width);
    for (let i = r * k; i < r * k + k; i++) out[base + indices[i]!] = values[i]!;
  }
  return out;
}

/**
 * How a learner completes a top-k target's row: `uniform`, the remaining mass spread evenly over
 * the entries not sent (expandTopK); `student`, the remaining mass r spread in proportion to the
 * learner's own distribution q outside the support S, r·q_j / Σ_{i∉S} q_i (client/losses/tokens.ts).
 */
export const SPARSE_TAILS = ['uniform', 'student'] as const;
export type SparseTail = (typeof SPARSE_TAILS)[number];

/** Which entries a top-k form sent: rows·width, 1 at each row's k indices, 0 elsewhere. */
export function topKSupport(sparse: TopKRows): Uint8Array {
  const { rows, width, k, indices } = sparse;
  const out = new Uint8Array(rows * width);
  for (let r = 0; r < rows; r++) for (let i = r * k; i < r * k + k; i++) out[r * width + indices[i]!] = 1;
  return out;
}

/** Payload bytes of a top-k tensor: its values and indices. */
export function topKWireBytes(t: TopKWireTensor): number {
  return t.data.byteLength + t.indices.byteLength;
}

function rowsOf(shape: readonly number[]): { rows: number; width: number } {
  if (shape.length === 0) throw new ProtocolError(ErrorCode.Shape, 'a top-k tensor needs a shape of rank ≥ 1: its last axis is the distribution');
  let rows = 1;
  for (let i = 0; i < shape.length; i++) {
    const d = shape[i];
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
      throw new ProtocolError(ErrorCode.Shape, `top-k tensor shape dimension ${i} is ${String(d)}; dimensions must be non-negative integers`);
    }
    if (i < shape.length - 1) rows *= d;
  }
  const width = shape[shape.length - 1]!;
  if (width > MAX_TOP_K_WIDTH) {
    throw new ProtocolError(ErrorCode.Shape, `top-k tensor's last axis has ${width} entries; two-byte indices address at most ${MAX_TOP_K_WIDTH}`);
  }
  if (!Number.isSafeInteger(rows * width)) throw new ProtocolError(ErrorCode.Shape, `top-k tensor shape [${shape.join(',')}] has too many values`);
  return { rows, width };
}

function checkK(k: unknown, width: number): asserts k is number {
  if (typeof k !== 'number' || !Number.isInteger(k) || k < 1 || k > width) {
    throw new ProtocolError(ErrorCode.Value, `top-k tensor has k=${String(k)}; k must be an integer in [1, ${width}] (the last axis)`);
  }
}

const HOST_IS_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function swapPairs(bytes: Uint8Array): void {
  for (let i = 0; i + 1 < bytes.length; i += 2) {
    const a = bytes[i]!;
    bytes[i] = bytes[i + 1]!;
    bytes[i + 1] = a;
  }
}
