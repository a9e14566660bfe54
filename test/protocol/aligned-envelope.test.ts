/**
 * encodeMessage writes a large float32 or float16 tensor's bytes at a multiple of 4 from the
 * envelope's start, so that the coordinator can read float32 uploads in place (uint8 is always
 * converted, so its bytes stay where msgpackr puts them). Asserted: the envelope decodes — with
 * our decoder, with msgpackr's defaults, and through every schema — to exactly what the plain
 * encoding decodes to; the bytes are aligned for every length of the fields before them (all four
 * paddings); small tensors keep the plain bytes; the size limit refuses nothing the plain encoding
 * would have let through; and readContribution reads in place only aligned bytes that make up most
 * of their buffer, with the same values as a copy.
 */
import { createHash } from 'node:crypto';
import { unpack } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { SeededRandom } from '../../client/data/random.js';
import {
  clientMessages,
  decodeEnvelope,
  decodeMessage,
  encodeEnvelope,
  encodeMessage,
  packTensor,
  PROTOCOL_VERSION,
  readContribution,
  serverMessages,
  unpackTensor,
  WIRE_DTYPES,
  type WireTensor,
} from '../../protocol/index.js';

function softmaxRows(random: SeededRandom, rows: number, classes: number): Float32Array {
  const v = new Float32Array(rows * classes);
  for (let r = 0; r < rows; r++) {
    let sum = 0;
    for (let k = 0; k < classes; k++) sum += v[r * classes + k] = 0.01 + random.next();
    for (let k = 0; k < classes; k++) v[r * classes + k]! /= sum;
  }
  return v;
}

const id = (random: SeededRandom) => 'p'.repeat(1 + random.int(40));
const V = PROTOCOL_VERSION as typeof PROTOCOL_VERSION;

/** A decoded message with each tensor's bytes replaced by their digest: toEqual on large byte arrays is slow. */
function digested(message: unknown): unknown {
  if (message instanceof Uint8Array) return `bytes ${message.byteLength} ${createHash('sha256').update(message).digest('hex')}`;
  if (Array.isArray(message)) return message.map(digested);
  if (typeof message === 'object' && message !== null) return Object.fromEntries(Object.entries(message).map(([k, v]) => [k, digested(v)]));
  return message;
}

/** Where a decoded tensor's bytes start, counted from the envelope's first byte. */
const dataOffset = (envelope: Uint8Array, tensor: WireTensor) => tensor.data.byteOffset - envelope.byteOffset;

describe('encodeMessage with aligned tensor bytes', () => {
  it('decodes to what the plain encoding decodes to, with the bytes aligned after fields of every length', () => {
    const random = new SeededRandom(31);
    const residues = new Set<number>();
    for (let trial = 0; trial < 400; trial++) {
      const dtype = WIRE_DTYPES[random.int(3)]!;
      const classes = 2 + random.int(12);
      const rows = 1 + random.int(trial % 10 === 0 ? 6000 : 400);
      const values = packTensor(softmaxRows(random, rows, classes), [rows, classes], dtype);
      const upload = {
        v: V, session: id(random), round: 1 + random.int(1_000_000), participant: id(random), kind: 'reference-predictions' as const, values,
        ...(random.next() < 0.5 ? { sampleCount: random.int(2 ** 31) } : {}),
        ...(random.next() < 0.5 ? { labelCounts: Array.from({ length: classes }, () => random.int(1000)) } : {}),
      };
      const aligned = encodeMessage(clientMessages.upload, upload, { maxBytes: 1 << 26 });
      const plain = encodeEnvelope(clientMessages.upload.parse(upload));
      const decoded = decodeEnvelope(aligned);
      expect(digested(decoded)).toEqual(digested(decodeEnvelope(plain)));
      expect(digested(unpack(aligned))).toEqual(digested(unpack(plain)));
      expect(digested(decodeMessage(clientMessages.upload, aligned))).toEqual(digested(decodeMessage(clientMessages.upload, plain)));
      if (values.data.byteLength >= 1024 && dtype !== 'uint8') {
        expect(dataOffset(aligned, decoded.values as WireTensor) % 4, `trial ${trial}`).toBe(0);
        residues.add(dataOffset(plain, decodeEnvelope(plain).values as WireTensor) % 4);
        expect(aligned.byteLength - plain.byteLength).toBeLessThanOrEqual(7);
      } else {
        expect(Array.from(aligned)).toEqual(Array.from(plain));
      }
    }
    // The plain encoding put the bytes at every residue mod 4, so every padding was needed and used.
    expect([...residues].sort()).toEqual([0, 1, 2, 3]);
  });

  it('aligns targets and pushes too, and leaves messages without a large tensor as they were', () => {
    const random = new SeededRandom(32);
    const target = {
      v: V, session: 's', round: 3, kind: 'class-logits' as const,
      target: packTensor(softmaxRows(random, 100, 10), [100, 10], 'float32'), counts: [1, 2, 3], contributors: 4,
    };
    const aligned = encodeMessage(serverMessages.target, target);
    expect(decodeMessage(serverMessages.target, aligned)).toEqual(decodeMessage(serverMessages.target, encodeEnvelope(serverMessages.target.parse(target))));
    expect(dataOffset(aligned, decodeEnvelope(aligned).target as WireTensor) % 4).toBe(0);
    const push = { v: V, session: 's', participant: 'p', shard: 0, step: 5, values: packTensor(softmaxRows(random, 300, 10), [300, 10], 'float16') };
    const pushed = encodeMessage(clientMessages.push, push);
    expect(dataOffset(pushed, decodeEnvelope(pushed).values as WireTensor) % 4).toBe(0);
    const none = { ...target, target: null };
    expect(Array.from(encodeMessage(serverMessages.target, none))).toEqual(Array.from(encodeEnvelope(serverMessages.target.parse(none))));
  });

  it('refuses nothing the plain encoding lets through the size limit, and still refuses what it refuses', () => {
    const random = new SeededRandom(33);
    for (let trial = 0; trial < 40; trial++) {
      const rows = 100 + random.int(100);
      const upload = {
        v: V, session: id(random), round: 1, participant: 'p', kind: 'reference-predictions' as const,
        values: packTensor(softmaxRows(random, rows, 10), [rows, 10], 'float32'),
      };
      const plain = encodeEnvelope(clientMessages.upload.parse(upload));
      const exact = { maxBytes: plain.byteLength };
      expect(decodeEnvelope(encodeMessage(clientMessages.upload, upload, exact), exact)).toEqual(decodeEnvelope(plain));
      expect(() => encodeMessage(clientMessages.upload, upload, { maxBytes: plain.byteLength - 1 })).toThrow(/^E_TOO_LARGE/);
    }
  });
});

describe('readContribution in place', () => {
  const rows = 300;
  const classes = 10;
  const expectation = { kind: 'reference-predictions' as const, round: 1, numClasses: classes, rows };
  const upload = (values: WireTensor) => ({ v: V, session: 's', round: 1, participant: 'p', kind: 'reference-predictions' as const, values });

  it('views aligned float32 bytes in place and copies anything else, with the same values', () => {
    const random = new SeededRandom(34);
    const predictions = softmaxRows(random, rows, classes);
    const envelope = encodeMessage(clientMessages.upload, upload(packTensor(predictions, [rows, classes], 'float32')));
    const fresh = new Uint8Array(envelope); // the envelope at the start of a buffer of its own, as a receiver gets it
    const inPlace = readContribution('p', decodeMessage(clientMessages.upload, fresh), expectation).values;
    expect(inPlace.buffer).toBe(fresh.buffer);
    expect(Array.from(inPlace)).toEqual(Array.from(predictions));

    for (const shift of [1, 2, 3]) {
      const host = new Uint8Array(envelope.byteLength + shift);
      host.set(envelope, shift);
      const copied = readContribution('p', decodeMessage(clientMessages.upload, host.subarray(shift)), expectation).values;
      expect(copied.buffer).not.toBe(host.buffer);
      expect(Array.from(copied)).toEqual(Array.from(predictions));
    }
    // Aligned but a small part of a large buffer: copied, so that the values do not keep it alive.
    const big = new Uint8Array(envelope.byteLength * 3);
    big.set(envelope, 0);
    const small = readContribution('p', decodeMessage(clientMessages.upload, big.subarray(0, envelope.byteLength)), expectation).values;
    expect(small.buffer).not.toBe(big.buffer);
    expect(Array.from(small)).toEqual(Array.from(predictions));
  });

  it('still refuses NaN in place, naming it, and never reads float16 or uint8 in place', () => {
    const random = new SeededRandom(35);
    const predictions = softmaxRows(random, rows, classes);
    predictions[123] = Number.NaN;
    const tensor: WireTensor = { dtype: 'float32', shape: [rows, classes], data: new Uint8Array(predictions.buffer) };
    expect(() => readContribution('p', { kind: 'reference-predictions', values: tensor }, expectation)).toThrow(
      'E_VALUE: reference-predictions for round 1: tensor value at index 123 is NaN; only finite values are accepted',
    );
    expect(() => unpackTensor(tensor, undefined, { inPlace: true })).toThrow('tensor value at index 123 is NaN');
    for (const dtype of ['float16', 'uint8'] as const) {
      const t = packTensor(softmaxRows(random, rows, classes), [rows, classes], dtype);
      expect(unpackTensor(t, undefined, { inPlace: true }).buffer).not.toBe(t.data.buffer);
    }
  });
});
