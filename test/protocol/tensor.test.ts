import { describe, it, expect } from 'vitest';
import { decodeEnvelope, encodeEnvelope } from '../../protocol/codec.js';
import { ProtocolError } from '../../protocol/errors.js';
import { packTensor, unpackTensor, wireBytes, WIRE_DTYPES, type WireDtype, type WireTensor } from '../../protocol/tensor.js';
import { SeededRandom } from '../../client/data/random.js';

/** Deterministic PRNG (mulberry32) so failures reproduce. */
/** Seeded uniform [0, 1): the project's own PRNG, so the fuzzed inputs repeat run to run. */
function rng(seed: number): () => number {
  const random = new SeededRandom(seed);
  return () => random.next();
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ProtocolError);
    return (error as ProtocolError).code;
  }
  throw new Error('expected a ProtocolError, nothing was thrown');
}

/** Copies bytes into a bigger buffer after `prefix` filler bytes and returns the view on them. */
function atOffset(bytes: Uint8Array, prefix: number): Buffer {
  const host = Buffer.alloc(bytes.byteLength + prefix + 3, 0xee);
  host.set(bytes, prefix);
  return host.subarray(prefix, prefix + bytes.byteLength);
}

/** The float16 bits of each value, read from the packed little-endian bytes. */
function halfBits(values: number[]): number[] {
  const t = packTensor(Float32Array.from(values), [values.length], 'float16');
  return Array.from({ length: values.length }, (_, i) => t.data[2 * i]! | (t.data[2 * i + 1]! << 8));
}

function halvesTensor(bits: number[]): WireTensor {
  const data = new Uint8Array(bits.length * 2);
  bits.forEach((h, i) => {
    data[2 * i] = h & 0xff;
    data[2 * i + 1] = h >>> 8;
  });
  return { dtype: 'float16', shape: [bits.length], data };
}

function sampleValues(n: number, seed: number): Float32Array {
  const next = rng(seed);
  return Float32Array.from({ length: n }, () => (next() - 0.5) * 20);
}

describe('packTensor → encodeEnvelope → decodeEnvelope → unpackTensor', () => {
  const shape = [7, 9];
  const values = sampleValues(63, 1);
  const tolerance: Record<WireDtype, (v: number) => number> = {
    float32: () => 0,
    float16: (v) => Math.abs(v) * 2 ** -11 + 2 ** -25, // half an ulp of binary16
    uint8: () => Infinity, // bounded separately below
  };

  for (const dtype of WIRE_DTYPES) {
    it(`round-trips ${dtype}, with the tensor bytes at every alignment inside the envelope`, () => {
      const tensor = packTensor(values, shape, dtype);
      const envelope = encodeEnvelope({ round: 3, tensor });
      const offsets = new Set<number>();
      for (let prefix = 0; prefix < 8; prefix++) {
        const decoded = decodeEnvelope(atOffset(envelope, prefix));
        const wire = decoded.tensor as WireTensor;
        expect(wire.data).toBeInstanceOf(Uint8Array);
        offsets.add(wire.data.byteOffset % 4);
        const out = unpackTensor(wire, shape);
        expect(out.length).toBe(values.length);
        values.forEach((v, i) => expect(Math.abs(out[i]! - v)).toBeLessThanOrEqual(tolerance[dtype](v)));
        if (dtype === 'uint8') {
          const maxError = Math.max(...values.map((v, i) => Math.abs(out[i]! - v)));
          expect(maxError).toBeLessThanOrEqual((tensor.scale! / 2) * (1 + 1e-6));
        }
      }
      expect(offsets.size).toBe(4); // the decoder really did hand out misaligned views
    });
  }

  it('unpacks a Buffer at an odd byteOffset directly', () => {
    for (const dtype of WIRE_DTYPES) {
      const t = packTensor(values, shape, dtype);
      const direct = unpackTensor(t);
      const shifted = unpackTensor({ ...t, data: atOffset(t.data, 1) });
      expect(Array.from(shifted)).toEqual(Array.from(direct));
    }
  });

  it('copies: changing the input after packing does not change the tensor', () => {
    const v = Float32Array.from([1, 2, 3]);
    const t = packTensor(v, [3], 'float32');
    v[0] = 99;
    expect(Array.from(unpackTensor(t))).toEqual([1, 2, 3]);
  });

  it('handles scalars and empty tensors', () => {
    for (const dtype of WIRE_DTYPES) {
      expect(Array.from(unpackTensor(packTensor(Float32Array.from([1.5]), [], dtype)))).toEqual([1.5]);
      const empty = packTensor(new Float32Array(0), [0, 10], dtype);
      expect(unpackTensor(empty, [0, 10]).length).toBe(0);
      expect(wireBytes(empty)).toBe(0);
    }
  });

  it('reports payload bytes', () => {
    expect(wireBytes(packTensor(values, shape, 'float32'))).toBe(63 * 4);
    expect(wireBytes(packTensor(values, shape, 'float16'))).toBe(63 * 2);
    expect(wireBytes(packTensor(values, shape, 'uint8'))).toBe(63);
  });

  it('writes float32 little-endian', () => {
    expect(Array.from(packTensor(Float32Array.from([1]), [1], 'float32').data)).toEqual([0x00, 0x00, 0x80, 0x3f]);
  });
});

describe('float16', () => {
  it('encodes golden values to their exact bit patterns', () => {
    const golden: [number, number][] = [
      [1, 0x3c00],
      [-2, 0xc000],
      [65504, 0x7bff], // largest finite half
      [65519, 0x7bff], // just below the rounding boundary to Inf
      [6.1035156e-5, 0x0400], // smallest normal, 2^-14
      [5.96e-8, 0x0001], // smallest subnormal, 2^-24 ≈ 5.9604645e-8
      [1023 * 2 ** -24, 0x03ff], // largest subnormal
      [1 / 3, 0x3555],
      [0, 0x0000],
      [-0, 0x8000],
      [0.1, 0x2e66],
      [2049, 0x6800], // tie between 2048 and 2050 → even mantissa (2048)
      [2051, 0x6802], // tie between 2050 and 2052 → even mantissa (2052)
      [2 ** -25, 0x0000], // tie between 0 and the smallest subnormal → 0
      [1.5 * 2 ** -24, 0x0002], // subnormal tie between 1 and 2 → 2
      [2 ** -26, 0x0000],
      [1023.5 * 2 ** -24, 0x0400], // subnormal tie rounds up and carries into the smallest normal
    ];
    expect(halfBits(golden.map(([v]) => v)).map((h) => h.toString(16))).toEqual(golden.map(([, h]) => h.toString(16)));
  });

  it('decodes golden bit patterns', () => {
    const out = unpackTensor(halvesTensor([0x3c00, 0xc000, 0x7bff, 0x0400, 0x0001, 0x3555, 0x8000, 0x03ff]));
    expect(Array.from(out)).toEqual([1, -2, 65504, 2 ** -14, 2 ** -24, 0.333251953125, -0, 1023 * 2 ** -24]);
    expect(Object.is(out[6], -0)).toBe(true);
  });

  it('round-trips every finite half exactly', () => {
    const finite: number[] = [];
    for (let h = 0; h < 0x10000; h++) if ((h & 0x7c00) !== 0x7c00) finite.push(h);
    const decoded = unpackTensor(halvesTensor(finite));
    const repacked = packTensor(decoded, [finite.length], 'float16');
    expect(Buffer.from(repacked.data).equals(Buffer.from(halvesTensor(finite).data))).toBe(true);
  });

  it('rounds random float32 values to the nearest half, ties to even (checked by search)', () => {
    // Reference: the sorted positive finite halves, searched for the nearest neighbour.
    const positives = unpackTensor(halvesTensor(Array.from({ length: 0x7c00 }, (_, h) => h)));
    const nearest = (x: number): number => {
      const a = Math.abs(x);
      let lo = 0;
      let hi = positives.length - 1;
      while (hi - lo > 1) {
        const mid = (lo + hi) >> 1;
        if (positives[mid]! <= a) lo = mid;
        else hi = mid;
      }
      const dLo = a - positives[lo]!;
      const dHi = positives[hi]! - a;
      const h = dLo < dHi ? lo : dHi < dLo ? hi : lo % 2 === 0 ? lo : hi;
      return (x < 0 || Object.is(x, -0) ? 0x8000 : 0) | h;
    };
    const next = rng(7);
    const xs: number[] = [];
    for (let i = 0; i < 20000; i++) {
      const h = Math.floor(next() * 0x7bff); // between two adjacent halves: midpoint or a random point
      const a = positives[h]!;
      const b = positives[h + 1]!;
      const x = Math.fround(i % 4 === 0 ? (a + b) / 2 : a + next() * (b - a));
      xs.push(next() < 0.5 ? -x : x);
    }
    const got = halfBits(xs);
    const wrong = xs.filter((x, i) => got[i] !== nearest(x)).map((x) => `${x} → ${halfBits([x])[0]!.toString(16)}, expected ${nearest(x).toString(16)}`);
    expect(wrong).toEqual([]);
  });

  it('refuses values beyond the float16 range, and NaN or ±Inf bits on receipt', () => {
    expect(codeOf(() => packTensor(Float32Array.from([0, 65520]), [2], 'float16'))).toBe('E_VALUE');
    expect(codeOf(() => packTensor(Float32Array.from([-1e6]), [1], 'float16'))).toBe('E_VALUE');
    for (const bits of [0x7c00, 0xfc00, 0x7e00, 0x7c01, 0xffff]) {
      expect(codeOf(() => unpackTensor(halvesTensor([0x3c00, bits])))).toBe('E_VALUE');
    }
  });
});

describe('uint8 quantisation', () => {
  it('stays within scale/2 of every value', () => {
    const next = rng(3);
    for (let trial = 0; trial < 50; trial++) {
      const spread = 10 ** (next() * 8 - 4);
      const offset = (next() - 0.5) * 1000;
      const values = Float32Array.from({ length: 1000 }, () => offset + (next() - 0.5) * spread);
      const t = packTensor(values, [1000], 'uint8');
      const min = Math.min(...values);
      expect(t.min).toBe(min);
      expect(t.scale).toBeCloseTo((Math.max(...values) - min) / 255, 12);
      const out = unpackTensor(t);
      // scale/2 from quantisation, plus half a float32 ulp from storing the result in a Float32Array.
      const over = Array.from(values).filter((v, i) => Math.abs(out[i]! - v) > t.scale! / 2 + Math.abs(v) * 2 ** -24);
      expect(over).toEqual([]);
    }
  });

  it('sends a constant tensor with scale 0, exactly', () => {
    const t = packTensor(new Float32Array(5).fill(-2.5), [5], 'uint8');
    expect(t.scale).toBe(0);
    expect(Array.from(unpackTensor(t))).toEqual([-2.5, -2.5, -2.5, -2.5, -2.5]);
  });

  it('keeps the extremes exact', () => {
    const out = unpackTensor(packTensor(Float32Array.from([-3, 0.25, 7]), [3], 'uint8'));
    expect(out[0]).toBe(-3);
    expect(out[2]).toBe(7);
  });
});

describe('packTensor errors', () => {
  const v = Float32Array.from([1, 2, 3, 4, 5, 6]);
  it('checks the shape and the value count', () => {
    expect(codeOf(() => packTensor(v, [2, 2], 'float32'))).toBe('E_SHAPE');
    expect(() => packTensor(v, [2, 2], 'float32')).toThrow('tensor has shape [2,2] (4 values) but 6 values were given');
    expect(codeOf(() => packTensor(v, [2, -3], 'float32'))).toBe('E_SHAPE');
    expect(codeOf(() => packTensor(v, [2, 3.5], 'float32'))).toBe('E_SHAPE');
  });
  it('names the first non-finite value', () => {
    for (const bad of [NaN, Infinity, -Infinity]) {
      const w = Float32Array.from([1, 2, bad, NaN]);
      for (const dtype of WIRE_DTYPES) {
        expect(codeOf(() => packTensor(w, [4], dtype))).toBe('E_VALUE');
        expect(() => packTensor(w, [4], dtype)).toThrow(`tensor value at index 2 is ${bad}`);
      }
    }
  });
  it('refuses an unknown dtype', () => {
    expect(codeOf(() => packTensor(v, [6], 'int32' as WireDtype))).toBe('E_DTYPE');
  });
});

describe('unpackTensor errors', () => {
  const good = (): WireTensor => packTensor(new Float32Array(4500), [500, 9], 'float32');

  it('refuses an unknown dtype', () => {
    expect(codeOf(() => unpackTensor({ ...good(), dtype: 'float64' as WireDtype }))).toBe('E_DTYPE');
    expect(codeOf(() => unpackTensor({ ...good(), dtype: undefined as unknown as WireDtype }))).toBe('E_DTYPE');
  });

  it('refuses malformed shapes', () => {
    for (const shape of [undefined, 'x', {}, [500, -9], [500, 4.5], [NaN], [Infinity], ['500', 9], [2 ** 53, 1], [null]]) {
      expect(codeOf(() => unpackTensor({ ...good(), shape: shape as number[] }))).toBe('E_SHAPE');
    }
    // A product past 2^53 is refused without allocating anything.
    expect(codeOf(() => unpackTensor({ ...good(), shape: [2 ** 30, 2 ** 30, 2 ** 30] }))).toBe('E_SHAPE');
  });

  it('names got vs expected when the byte length does not match the shape', () => {
    const t = { ...good(), data: new Uint8Array(18004) };
    expect(codeOf(() => unpackTensor(t))).toBe('E_SHAPE');
    expect(() => unpackTensor(t)).toThrow(
      'E_SHAPE: tensor has shape [500,9] (4500 values = 18000 bytes of float32) but carries 18004 bytes (4501 values)',
    );
    expect(() => unpackTensor({ ...t, data: new Uint8Array(18003) })).toThrow('not a whole number of 4-byte values');
    expect(() => unpackTensor({ ...good(), dtype: 'float16' })).toThrow('(4500 values = 9000 bytes of float16) but carries 18000 bytes');
  });

  it('names got vs expected when the shape is not the one expected', () => {
    expect(() => unpackTensor(good(), [500, 10])).toThrow('E_SHAPE: tensor has shape [500,9]; expected [500,10]');
    expect(codeOf(() => unpackTensor(good(), [4500]))).toBe('E_SHAPE');
    expect(unpackTensor(good(), [500, 9]).length).toBe(4500);
  });

  it('refuses NaN and ±Inf in float32 data', () => {
    for (const bad of [NaN, Infinity, -Infinity]) {
      const bytes = new Uint8Array(Float32Array.from([0, 1, bad]).buffer);
      expect(codeOf(() => unpackTensor({ dtype: 'float32', shape: [3], data: atOffset(bytes, 1) }))).toBe('E_VALUE');
      expect(() => unpackTensor({ dtype: 'float32', shape: [3], data: bytes })).toThrow('index 2');
    }
  });

  it('needs finite min and scale for uint8', () => {
    const t = packTensor(Float32Array.from([0, 1]), [2], 'uint8');
    expect(codeOf(() => unpackTensor({ ...t, min: undefined }))).toBe('E_SCHEMA');
    expect(codeOf(() => unpackTensor({ ...t, scale: undefined }))).toBe('E_SCHEMA');
    expect(codeOf(() => unpackTensor({ ...t, scale: '1' as unknown as number }))).toBe('E_SCHEMA');
    expect(codeOf(() => unpackTensor({ ...t, min: NaN }))).toBe('E_VALUE');
    expect(codeOf(() => unpackTensor({ ...t, scale: Infinity }))).toBe('E_VALUE');
    expect(codeOf(() => unpackTensor({ ...t, min: -Infinity }))).toBe('E_VALUE');
    expect(codeOf(() => unpackTensor({ ...t, scale: -1 }))).toBe('E_VALUE');
    // Finite min and scale whose decoded values overflow float32.
    expect(codeOf(() => unpackTensor({ ...t, min: 3e38, scale: 1e37 }))).toBe('E_VALUE');
  });

  it('needs binary data and an object', () => {
    expect(codeOf(() => unpackTensor({ ...good(), data: Array.from(good().data) as unknown as Uint8Array }))).toBe('E_SCHEMA');
    expect(codeOf(() => unpackTensor(null as unknown as WireTensor))).toBe('E_SCHEMA');
  });
});
