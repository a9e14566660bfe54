import { describe, it, expect } from 'vitest';
import { DEFAULT_MAX_BYTES, decodeEnvelope, encodeEnvelope } from '../../protocol/codec.js';
import { ProtocolError } from '../../protocol/errors.js';
import { SeededRandom } from '../../client/data/random.js';

/** Seeded uniform [0, 1): the project's own PRNG, so the fuzzed inputs repeat run to run. */
function rng(seed: number): () => number {
  const random = new SeededRandom(seed);
  return () => random.next();
}

function errorOf(fn: () => unknown): ProtocolError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ProtocolError);
    return error as ProtocolError;
  }
  throw new Error('expected a ProtocolError, nothing was thrown');
}

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

describe('encodeEnvelope / decodeEnvelope', () => {
  const message = {
    v: 1,
    event: 'predictions',
    round: 7,
    ratio: 0.25,
    ok: true,
    none: null,
    ids: [1, 2, 3],
    nested: { name: 'ünïcode ✓', list: [{ a: 1 }, { b: [] }] },
    bytes: new Uint8Array([1, 2, 3]),
  };

  it('round-trips a message', () => {
    expect(decodeEnvelope(encodeEnvelope(message))).toEqual({ ...message, bytes: new Uint8Array([1, 2, 3]) });
  });

  it('writes Uint8Array as msgpack bin and decodes it as binary, not an array', () => {
    const encoded = encodeEnvelope({ b: new Uint8Array([1, 2, 3]) });
    expect(hex(encoded)).toContain('c403010203'); // bin8, length 3
    const view = Buffer.from([9, 9, 4, 5, 6]).subarray(2); // a view at an offset encodes only its bytes
    expect(hex(encodeEnvelope({ b: view }))).toContain('c403040506');
    const decoded = decodeEnvelope(encoded);
    expect(decoded.b).toBeInstanceOf(Uint8Array);
    expect(Array.from(decoded.b as Uint8Array)).toEqual([1, 2, 3]);
  });

  it('writes standard msgpack only: undefined properties are dropped, undefined items become nil', () => {
    const encoded = encodeEnvelope({ a: 1, gone: undefined, list: [undefined, 2] });
    expect(hex(encoded)).not.toContain('d40000'); // msgpackr's private "undefined" ext
    const decoded = decodeEnvelope(encoded);
    expect(decoded).toEqual({ a: 1, list: [null, 2] });
    expect('gone' in decoded).toBe(false);
  });

  it('accepts Buffer, Uint8Array and ArrayBuffer, at any offset', () => {
    const encoded = encodeEnvelope(message);
    const expected = decodeEnvelope(encoded);
    const host = Buffer.alloc(encoded.length + 5, 0xc1);
    host.set(encoded, 3);
    expect(decodeEnvelope(host.subarray(3, 3 + encoded.length))).toEqual(expected);
    expect(decodeEnvelope(new Uint8Array(encoded))).toEqual(expected);
    expect(decodeEnvelope(new Uint8Array(encoded).buffer)).toEqual(expected);
  });

  it('does not add properties to the caller\u2019s buffer', () => {
    const input = new Uint8Array(encodeEnvelope({ a: 1 }));
    decodeEnvelope(input);
    expect(Object.keys(input).filter((k) => !/^\d+$/.test(k))).toEqual([]);
  });

  it('refuses non-binary input', () => {
    for (const input of ['\x81\xa1a\x01', 42, null, undefined, [0x81, 0xa1, 0x61, 0x01], { a: 1 }, new Float32Array(4), new DataView(new ArrayBuffer(4))]) {
      expect(errorOf(() => decodeEnvelope(input)).code).toBe('E_MALFORMED');
    }
  });

  it('refuses empty, truncated and invalid msgpack', () => {
    expect(errorOf(() => decodeEnvelope(new Uint8Array(0))).code).toBe('E_MALFORMED');
    const encoded = encodeEnvelope(message);
    for (let n = 1; n < encoded.length; n++) {
      const error = errorOf(() => decodeEnvelope(encoded.subarray(0, n)));
      expect(error.code, `prefix of ${n} bytes`).toBe('E_MALFORMED');
    }
    expect(errorOf(() => decodeEnvelope(encoded.subarray(0, encoded.length - 1))).message).toContain('truncated');
    // A bin32 header claiming 4 GiB in a 6-byte input.
    expect(errorOf(() => decodeEnvelope(new Uint8Array([0x81, 0xa1, 0x61, 0xc6, 0xff, 0xff]))).code).toBe('E_MALFORMED');
    // Unknown extension type.
    expect(errorOf(() => decodeEnvelope(new Uint8Array([0x81, 0xa1, 0x61, 0xd4, 0x05, 0x00]))).code).toBe('E_MALFORMED');
    // msgpackr's structured-clone pointer extension is disabled.
    expect(errorOf(() => decodeEnvelope(new Uint8Array([0x81, 0xa1, 0x61, 0xd6, 0x70, 0, 0, 0, 1]))).code).toBe('E_MALFORMED');
    // Nesting deep enough to overflow the stack.
    const deep = new Uint8Array(200_000).fill(0x91);
    expect(errorOf(() => decodeEnvelope(deep)).code).toBe('E_MALFORMED');
  });

  it('refuses trailing bytes, quickly even after a large value', () => {
    const encoded = encodeEnvelope({ a: 1 });
    for (const tail of [[0x00], [0xc0], [0xc1], [0x81, 0xa1, 0x62, 0x02]]) {
      const error = errorOf(() => decodeEnvelope(Buffer.concat([encoded, Buffer.from(tail)])));
      expect(error.code).toBe('E_MALFORMED');
      expect(error.message).toContain(`${tail.length} trailing bytes`);
    }
    // msgpackr's unpack() would JSON.stringify the whole value into its error here (seconds of CPU).
    const big = Buffer.concat([encodeEnvelope({ data: new Uint8Array(15 * 2 ** 20) }), Buffer.from([0])]);
    const start = performance.now();
    expect(errorOf(() => decodeEnvelope(big)).code).toBe('E_MALFORMED');
    expect(performance.now() - start).toBeLessThan(1000);
  });

  it('refuses a top level that is not a map', () => {
    const tops: number[][] = [
      [0x92, 0x01, 0x02], // array
      [0x05], // int
      [0xc0], // nil
      [0xa1, 0x61], // string
      [0xc1], // reserved byte: msgpackr decodes it to a sentinel object
      [0xc4, 0x01, 0x00], // bin
      [0xd6, 0xff, 0, 0, 0, 0], // timestamp → Date
      [0xd4, 0x73, 0x00, 0x90], // msgpackr Set extension
    ];
    for (const bytes of tops) {
      const error = errorOf(() => decodeEnvelope(new Uint8Array(bytes)));
      expect(error.code, hex(new Uint8Array(bytes))).toBe('E_MALFORMED');
    }
  });

  it('renames a __proto__ key instead of setting the prototype', () => {
    const bytes = new Uint8Array([0x81, 0xa9, ...Buffer.from('__proto__'), 0x81, 0xa1, 0x78, 0x01]);
    const decoded = decodeEnvelope(bytes);
    expect(Object.getPrototypeOf(decoded)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).x).toBeUndefined();
  });

  it('refuses to encode a top level that is not a plain object, or a cycle', () => {
    expect(errorOf(() => encodeEnvelope([1, 2])).code).toBe('E_SCHEMA');
    expect(errorOf(() => encodeEnvelope(new Map([['a', 1]]))).code).toBe('E_SCHEMA');
    expect(errorOf(() => encodeEnvelope(new Uint8Array(2))).code).toBe('E_SCHEMA');
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(errorOf(() => encodeEnvelope(cyclic)).code).toBe('E_SCHEMA');
    expect(errorOf(() => encodeEnvelope({ huge: 2n ** 70n })).code).toBe('E_SCHEMA');
    expect(encodeEnvelope(Object.create(null) as object)).toBeInstanceOf(Uint8Array);
  });
});

describe('size limits', () => {
  it('defaults to 16 MiB', () => {
    expect(DEFAULT_MAX_BYTES).toBe(16 * 1024 * 1024);
  });

  it('refuses an oversize envelope before returning any bytes, naming size and limit', () => {
    const error = errorOf(() => encodeEnvelope({ data: new Uint8Array(20 * 2 ** 20 + 100_000) }));
    expect(error.code).toBe('E_TOO_LARGE');
    expect(error.message).toBe('E_TOO_LARGE: envelope of 20.1 MiB exceeds the session limit of 16 MiB');
    expect(errorOf(() => encodeEnvelope({ data: new Uint8Array(2000) }, { maxBytes: 1000 })).message).toBe(
      'E_TOO_LARGE: envelope of 2 KiB exceeds the session limit of 1000 bytes',
    );
  });

  it('shows exact byte counts when the rounded sizes would look equal', () => {
    const limit = 2 ** 20;
    const encoded = encodeEnvelope({ d: new Uint8Array(limit) }, { maxBytes: 2 * limit });
    expect(errorOf(() => decodeEnvelope(encoded, { maxBytes: limit })).message).toBe(
      `E_TOO_LARGE: envelope of ${encoded.length} bytes exceeds the session limit of ${limit} bytes`,
    );
  });

  it('accepts an envelope of exactly the limit, both ways', () => {
    const encoded = encodeEnvelope({ d: new Uint8Array(100) });
    const limits = { maxBytes: encoded.length };
    expect(decodeEnvelope(encodeEnvelope({ d: new Uint8Array(100) }, limits), limits)).toEqual({ d: new Uint8Array(100) });
    expect(errorOf(() => encodeEnvelope({ d: new Uint8Array(101) }, limits)).code).toBe('E_TOO_LARGE');
  });

  it('checks an incoming size before decoding', () => {
    // Not msgpack at all: the size is what gets reported, so nothing was parsed.
    const garbage = new Uint8Array(2000).fill(0xc1);
    expect(errorOf(() => decodeEnvelope(garbage, { maxBytes: 1999 })).code).toBe('E_TOO_LARGE');
    expect(errorOf(() => decodeEnvelope(garbage.buffer, { maxBytes: 1999 })).code).toBe('E_TOO_LARGE');
    expect(errorOf(() => decodeEnvelope(garbage, { maxBytes: 2000 })).code).toBe('E_MALFORMED');
  });

  it('refuses nonsense limits', () => {
    expect(errorOf(() => encodeEnvelope({}, { maxBytes: NaN })).code).toBe('E_INTERNAL');
    expect(errorOf(() => decodeEnvelope(new Uint8Array([0x80]), { maxBytes: 0 })).code).toBe('E_INTERNAL');
  });
});

describe('random input', () => {
  it('never throws anything but ProtocolError, and only returns plain objects', () => {
    const next = rng(42);
    const valid = encodeEnvelope({ v: 1, round: 3, data: new Uint8Array([1, 2, 3, 4]), nested: { a: [1.5, 'x', null, true] } });
    let decoded = 0;
    for (let i = 0; i < 5000; i++) {
      let bytes: Uint8Array;
      if (i % 2 === 0) {
        bytes = Uint8Array.from({ length: Math.floor(next() * 48) }, () => Math.floor(next() * 256));
        if (next() < 0.5 && bytes.length > 0) bytes[0] = 0x80 | (bytes[0]! & 0x0f); // start like a fixmap
      } else {
        bytes = new Uint8Array(valid); // mutate a valid envelope
        const flips = 1 + Math.floor(next() * 4);
        for (let f = 0; f < flips; f++) bytes[Math.floor(next() * bytes.length)] = Math.floor(next() * 256);
        if (next() < 0.3) bytes = bytes.subarray(0, Math.floor(next() * bytes.length));
      }
      try {
        const value = decodeEnvelope(bytes);
        expect(Object.getPrototypeOf(value) === Object.prototype || Object.getPrototypeOf(value) === null).toBe(true);
        decoded++;
      } catch (error) {
        if (!(error instanceof ProtocolError)) throw new Error(`input ${hex(bytes)} threw ${String(error)}`);
      }
    }
    expect(decoded).toBeGreaterThan(0);
  });
});
