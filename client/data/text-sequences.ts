/**
 * Token sequences for teacher forcing, from documents in memory: the half of the text data that
 * runs anywhere — in a browser participant too — since it reads no file (client/data/text.ts
 * reads them, on Node).
 */
import { CodedError } from '../../protocol/errors.js';
import { BOS, encodeText } from '../lm/tokenizer.js';

export class TextDataError extends CodedError<'E_DATA' | 'E_ENCODING'> {
  override readonly name = 'TextDataError';
}

/** Token sequences [count, context], row-major, with a mask that is 0 on padding. */
export interface TokenSequences {
  count: number;
  context: number;
  /** What the model reads at each position: BOS or the previous byte. */
  inputs: Int32Array;
  /** What it must predict there: the next byte (0 on padding). */
  targets: Int32Array;
  mask: Float32Array;
  /** Bytes of text covered: the number of mask ones. */
  bytes: number;
}

/**
 * Documents as sequences for teacher forcing: each document's bytes are cut in chunks of
 * `context`; a chunk's inputs are BOS (first chunk) or the byte before it, then its own bytes
 * but the last; its targets are its bytes. Every byte of the text is a target exactly once, so
 * the masked mean cross-entropy over these sequences is the text's bits per byte (× 1/ln 2),
 * with at most `context` bytes of history.
 */
export function toSequences(documents: readonly string[], context: number): TokenSequences {
  return bytesToSequences(documents.map(encodeText), context);
}

/** toSequences for documents already in bytes (e.g. a teacher's samples, which need not be valid UTF-8). */
export function bytesToSequences(documents: readonly Uint8Array[], context: number): TokenSequences {
  if (!Number.isInteger(context) || context < 1) throw new TextDataError('E_DATA', `context must be a positive integer; got ${context}`);
  const chunks: Array<{ previous: number; bytes: Uint8Array }> = [];
  for (const bytes of documents) {
    for (let start = 0; start < bytes.length; start += context) {
      chunks.push({ previous: start === 0 ? BOS : bytes[start - 1]!, bytes: bytes.subarray(start, Math.min(bytes.length, start + context)) });
    }
  }
  const count = chunks.length;
  const inputs = new Int32Array(count * context);
  const targets = new Int32Array(count * context);
  const mask = new Float32Array(count * context);
  let total = 0;
  chunks.forEach((chunk, row) => {
    const base = row * context;
    inputs[base] = chunk.previous;
    for (let i = 0; i < chunk.bytes.length; i++) {
      if (i > 0) inputs[base + i] = chunk.bytes[i - 1]!;
      targets[base + i] = chunk.bytes[i]!;
      mask[base + i] = 1;
    }
    total += chunk.bytes.length;
  });
  return { count, context, inputs, targets, mask, bytes: total };
}

/** Rows `rows` of `s`, as a new TokenSequences (a batch). */
export function selectSequences(s: TokenSequences, rows: ArrayLike<number>): TokenSequences {
  const n = rows.length;
  const c = s.context;
  const inputs = new Int32Array(n * c);
  const targets = new Int32Array(n * c);
  const mask = new Float32Array(n * c);
  let bytes = 0;
  for (let i = 0; i < n; i++) {
    const r = rows[i]!;
    inputs.set(s.inputs.subarray(r * c, (r + 1) * c), i * c);
    targets.set(s.targets.subarray(r * c, (r + 1) * c), i * c);
    mask.set(s.mask.subarray(r * c, (r + 1) * c), i * c);
    for (let k = 0; k < c; k++) bytes += s.mask[r * c + k]!;
  }
  return { count: n, context: c, inputs, targets, mask, bytes };
}
