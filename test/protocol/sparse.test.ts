/**
 * The top-k sparse form of probabilities (protocol/sparse.ts): golden packing and decoding, the
 * uint8 / uint16 index widths, rank-3 per-token shapes, a round trip through real msgpackr
 * envelopes as an upload and a target, and every refusal with its code and sentence.
 */
import { describe, expect, it } from 'vitest';
import {
  clientMessages,
  decodeMessage,
  decodeTopKRows,
  encodeMessage,
  expandTopK,
  packTopK,
  PROTOCOL_VERSION,
  ProtocolError,
  readContribution,
  readTopKProbabilities,
  serverMessages,
  topKWireBytes,
  type KnowledgeExpectation,
  type TopKWireTensor,
} from '../../protocol/index.js';

const expectation: KnowledgeExpectation = { kind: 'reference-predictions', round: 4, numClasses: 5, rows: 2 };

/** Two rows of five classes; their top-2 and what the receiver makes of them, by hand. */
const ROWS = Float32Array.from([0.1, 0.6, 0.05, 0.2, 0.05, 0.3, 0.3, 0.1, 0.1, 0.2]);

function refusal(fn: () => unknown): ProtocolError {
  try {
    fn();
  } catch (error) {
    if (error instanceof ProtocolError) return error;
    throw error;
  }
  throw new Error('expected a ProtocolError, nothing was thrown');
}

function upload(values: TopKWireTensor) {
  return readContribution('p1', { kind: 'reference-predictions', values }, expectation);
}

describe('top-k packing and decoding (golden values)', () => {
  it('keeps the k largest per row, largest first, ties to the lower index, and spreads the rest uniformly', () => {
    const t = packTopK(ROWS, [2, 5], 2, 'float32');
    expect(t.k).toBe(2);
    expect(t.shape).toEqual([2, 5]);
    expect(Array.from(t.indices)).toEqual([1, 3, 0, 1]);
    expect(Array.from(new Float32Array(t.data.slice().buffer))).toEqual([0.6, 0.2, 0.3, 0.3].map(Math.fround));
    expect(topKWireBytes(t)).toBe(4 * 4 + 4);
    const dense = readTopKProbabilities(t, [2, 5]);
    // Row 0: remainder 1 − 0.8 = 0.2 over 3 entries; row 1: 1 − 0.6 = 0.4 over 3.
    const expected = [0.2 / 3, 0.6, 0.2 / 3, 0.2, 0.2 / 3, 0.3, 0.3, 0.4 / 3, 0.4 / 3, 0.4 / 3];
    dense.forEach((v, i) => expect(v).toBeCloseTo(expected[i]!, 6));
  });

  it('k equal to the last axis is the dense rows, reordered and put back', () => {
    const t = packTopK(ROWS, [2, 5], 5, 'float32');
    expect(Array.from(readTopKProbabilities(t))).toEqual(Array.from(ROWS));
  });

  it('packs uint8 values with the tensor\'s min and scale, and two-byte little-endian indices past 256 entries, over rank 3', () => {
    const width = 300;
    const shape = [2, 3, width];
    const values = new Float32Array(6 * width).fill(0.2 / (width - 3));
    for (let row = 0; row < 6; row++) {
      values[row * width + 257 + row] = 0.5;
      values[row * width + row] = 0.2;
      values[row * width + 100] = 0.1;
    }
    const t = packTopK(values, shape, 3, 'uint8');
    expect(t.indices.byteLength).toBe(6 * 3 * 2);
    expect([t.indices[0], t.indices[1]]).toEqual([257 & 0xff, 257 >> 8]);
    expect(t.data.byteLength).toBe(18);
    const sparse = decodeTopKRows(t, shape);
    expect(Array.from(sparse.indices.subarray(0, 3))).toEqual([257, 0, 100]);
    expect(Array.from(sparse.indices.subarray(15, 18))).toEqual([262, 5, 100]);
    const dense = expandTopK(sparse);
    // uint8 over [0.1, 0.5]: every level exact to within half a step of 0.4/255.
    expect(Math.abs(dense[257]! - 0.5)).toBeLessThanOrEqual(0.4 / 510 + 1e-7);
    // The remainder carries the three values' rounding, spread over the 297 other entries.
    expect(Math.abs(dense[1]! - (1 - 0.8) / (width - 3))).toBeLessThanOrEqual((3 * 0.4) / 510 / (width - 3));
    expect(() => readTopKProbabilities(t, shape)).not.toThrow();
  });

  it('travels in real msgpack envelopes, as an upload and as a target, and keeps its form', () => {
    const t = packTopK(ROWS, [2, 5], 2, 'float16');
    const envelope = encodeMessage(clientMessages.upload, {
      v: PROTOCOL_VERSION, session: 's', round: 4, participant: 'p1', kind: 'reference-predictions', values: t,
    });
    const received = decodeMessage(clientMessages.upload, envelope);
    expect('k' in received.values && received.values.k).toBe(2);
    const values = readContribution('p1', { kind: received.kind, values: received.values }, expectation).values;
    expect(values[1]).toBeCloseTo(0.6, 3);
    const target = encodeMessage(serverMessages.target, {
      v: PROTOCOL_VERSION, session: 's', round: 4, kind: 'reference-predictions', target: t, contributors: 3,
    });
    const back = decodeMessage(serverMessages.target, target).target as TopKWireTensor;
    expect(Array.from(readTopKProbabilities(back, [2, 5]))).toEqual(Array.from(values));
  });
});

describe('top-k refusals: each with its code and a sentence naming it', () => {
  const good = (): TopKWireTensor => packTopK(ROWS, [2, 5], 2, 'float32');
  const withValues = (values: number[]): TopKWireTensor => ({ ...good(), data: new Uint8Array(Float32Array.from(values).buffer) });

  it('an index outside the last axis', () => {
    const e = refusal(() => upload({ ...good(), indices: Uint8Array.from([1, 3, 0, 5]) }));
    expect(e.message).toBe('E_VALUE: reference-predictions for round 4: top-k row 1 names entry 5; the last axis has entries 0…4');
  });
  it('an index twice in a row', () => {
    const e = refusal(() => upload({ ...good(), indices: Uint8Array.from([1, 3, 2, 2]) }));
    expect(e.message).toBe("E_VALUE: reference-predictions for round 4: top-k row 1 names entry 2 twice; a row's k indices must be distinct");
  });
  it('k of 0, past the last axis, or not an integer', () => {
    for (const k of [0, 6, 1.5]) {
      const e = refusal(() => upload({ ...good(), k }));
      expect(e.code).toBe('E_VALUE');
      expect(e.message).toContain(`has k=${k}; k must be an integer in [1, 5]`);
    }
  });
  it('a probability outside [0, 1], and NaN', () => {
    expect(refusal(() => upload(withValues([0.6, 0.2, 1.2, 0.3]))).message).toContain('top-k row 1, entry 0 is 1.2');
    expect(refusal(() => upload(withValues([0.6, -0.1, 0.3, 0.3]))).message).toMatch(/top-k row 0, entry 3 is -0\.1.*must be probabilities in \[0, 1\]/);
    expect(refusal(() => upload(withValues([NaN, 0.2, 0.3, 0.3]))).message).toContain('entry 1 is NaN');
  });
  it('top-k values summing past 1 (the remaining mass would be negative)', () => {
    const e = refusal(() => upload(withValues([0.6, 0.2, 0.6, 0.41])));
    expect(e.message).toBe('E_VALUE: reference-predictions for round 4: top-k row 1: its 2 probabilities sum to 1.010000, past 1 (+0.0010); the remaining mass 1 − Σ cannot be negative');
  });
  it('k equal to the last axis with a row that does not sum to 1', () => {
    const t = packTopK(ROWS, [2, 5], 5, 'float32');
    const values = new Float32Array(t.data.slice().buffer);
    values[5] = 0;
    const e = refusal(() => upload({ ...t, data: new Uint8Array(values.buffer) }));
    expect(e.message).toContain('top-k row 1: k is the whole last axis (5) and its probabilities sum to 0.700000; they must sum to 1');
  });
  it('the wrong number of index or value bytes, and the wrong shape', () => {
    expect(refusal(() => upload({ ...good(), indices: new Uint8Array(3) })).message).toContain('needs 4 index bytes (uint8, the last axis has 5 entries); got 3');
    expect(refusal(() => upload({ ...good(), data: new Uint8Array(12) })).code).toBe('E_SHAPE');
    expect(refusal(() => upload({ ...good(), shape: [2, 6] })).message).toContain('expected [2,5]');
  });
  it('uint8 quantisation an honest sender of probabilities never uses', () => {
    const t = packTopK(ROWS, [2, 5], 2, 'uint8');
    const e = refusal(() => upload({ ...t, min: -1, scale: 2 / 255 }));
    expect(e.message).toMatch(/^E_VALUE: reference-predictions for round 4: uint8 quantisation min=-1/);
  });
  it('the top-k form for knowledge that is not probabilities', () => {
    const e = refusal(() =>
      readContribution('p1', { kind: 'reference-logits', values: good() }, { ...expectation, kind: 'reference-logits' }),
    );
    expect(e.message).toBe('E_SCHEMA: reference-logits for round 4: the top-k sparse form carries probabilities (reference-predictions, reference-token-predictions) only; reference-logits travels dense');
  });
  it('a last axis too wide for two-byte indices', () => {
    expect(refusal(() => packTopK(new Float32Array(70000), [1, 70000], 1, 'float32')).message).toContain('two-byte indices address at most 65536');
  });
});
