/**
 * Issue 15, defect 4 (the envelope part): whatever bytes arrive, decodeEnvelope answers with a
 * codistill error code and a sentence about the input — never msgpackr's own words (its advice on
 * mapsAsObjects, "Unknown extension", a TypeError from one of its extension readers) and never
 * "Maximum call stack size exceeded". Fuzzed: random msgpack built from every type the format has
 * (extensions, non-string keys, the reserved byte, deep nesting), then cut, padded or flipped.
 */
import { describe, expect, it } from 'vitest';
import { SeededRandom } from '../../client/data/random.js';
import { decodeEnvelope, ErrorCode, ProtocolError } from '../../protocol/index.js';

const CODES: ReadonlySet<string> = new Set(Object.values(ErrorCode));
/** Words that come from msgpackr or the engine, not from codistill. */
const INTERNALS = /call stack|mapsAsObjects|msgpackr|Cannot read|not iterable|regular expression|Unknown extension|Structured clone|Expected string|typed array|Invalid property|undefined|TypeError|RangeError|record/i;

function outcome(bytes: Uint8Array): string {
  try {
    decodeEnvelope(bytes);
    return 'ok';
  } catch (error) {
    expect(error, 'only ProtocolErrors escape').toBeInstanceOf(ProtocolError);
    return (error as ProtocolError).message;
  }
}

function expectWorded(message: string, what: string): void {
  if (message === 'ok') return;
  const code = message.slice(0, message.indexOf(':'));
  expect(CODES.has(code), `${what}: ${message}`).toBe(true);
  expect(code, `${what}: ${message}`).not.toBe('E_INTERNAL');
  expect(message, what).not.toMatch(INTERNALS);
  expect(message.length, what).toBeLessThan(400);
}

/** A random msgpack value of any type the format has, `depth` levels deep at most. */
function randomValue(random: SeededRandom, depth: number): number[] {
  const pick = random.int(depth > 0 ? 14 : 10);
  switch (pick) {
    case 0: return [random.int(0x80)];
    case 1: return [0xe0 + random.int(32)];
    case 2: return [[0xc0, 0xc2, 0xc3, 0xc1][random.int(4)]!];
    case 3: return [0xcb, ...Array.from({ length: 8 }, () => random.int(256))];
    case 4: {
      const s = Array.from({ length: random.int(8) }, () => 0x61 + random.int(26));
      return [0xa0 | s.length, ...s];
    }
    case 5: return [0xc4, 3, 1, 2, 3];
    case 6: return [0xcf, ...Array.from({ length: 8 }, () => random.int(256))];
    case 7: { // an extension of any type, fixext or ext8
      const type = random.int(256);
      if (random.next() < 0.5) return [0xd4 + random.int(5), type, ...Array.from({ length: 16 }, () => random.int(256))].slice(0, 2 + [1, 2, 4, 8, 16][random.int(5)]!);
      const len = random.int(6);
      return [0xc7, len, type, ...Array.from({ length: len }, () => random.int(256))];
    }
    case 8: return [0xd4, [0x65, 0x78, 0x73, 0x42, 0x74, 0x62, 0x70, 0x69, 0x00, 0xff][random.int(10)]!, random.int(256)];
    case 9: return [0xa1, 0x76];
    case 10: case 11: { // an array
      const n = random.int(4);
      return [0x90 | n, ...Array.from({ length: n }, () => randomValue(random, depth - 1)).flat()];
    }
    default: { // a map, its keys mostly strings
      const n = random.int(4);
      const entries = Array.from({ length: n }, () => [...(random.next() < 0.7 ? [0xa1, 0x61 + random.int(26)] : randomValue(random, depth - 1)), ...randomValue(random, depth - 1)]);
      return [0x80 | n, ...entries.flat()];
    }
  }
}

describe('decodeEnvelope answers every input in its own words', () => {
  it('refuses deep nesting and non-string map keys by name, not with a stack overflow or msgpackr advice', () => {
    const deep = new Uint8Array([0x81, 0xa1, 0x76, ...new Array<number>(6000).fill(0x91), 0x01]);
    expect(outcome(deep)).toBe('E_MALFORMED: the envelope nests maps and arrays more than 32 deep (byte 34); codistill\'s own nest a few levels deep');
    const deepMaps = new Uint8Array([0x81, 0xa1, 0x76, ...Array.from({ length: 3000 }, () => [0x81, 0xa1, 0x61]).flat(), 0x01]);
    expect(outcome(deepMaps)).toMatch(/^E_MALFORMED: the envelope nests maps and arrays more than 32 deep/);
    expect(outcome(new Uint8Array([0x81, 0x91, 0x01, 0x02]))).toBe('E_MALFORMED: map keys must be strings; the key at byte 1 is an array');
    expect(outcome(new Uint8Array([0x81, 0x81, 0xa1, 0x61, 0x01, 0x02]))).toBe('E_MALFORMED: map keys must be strings; the key at byte 1 is a map');
    expect(outcome(new Uint8Array([0x81, 0xa1, 0x76, 0xd4, 0x78, 0x00]))).toBe(
      'E_MALFORMED: byte 3 starts a msgpack extension (type 120); codistill envelopes hold only maps, arrays, strings, binary, numbers, booleans and nil',
    );
  });

  it('never leaks decoder internals, over 20,000 random and damaged envelopes', () => {
    const random = new SeededRandom(0x15_04);
    let refused = 0;
    for (let i = 0; i < 20_000; i++) {
      let bytes = [0x82, 0xa1, 0x76, 0x01, 0xa1, 0x78, ...randomValue(random, 1 + random.int(5))];
      const damage = random.int(4);
      if (damage === 1) bytes = bytes.slice(0, 1 + random.int(bytes.length - 1));
      if (damage === 2) bytes.push(...Array.from({ length: 1 + random.int(4) }, () => random.int(256)));
      if (damage === 3) bytes[random.int(bytes.length)] = random.int(256);
      const message = outcome(new Uint8Array(bytes));
      expectWorded(message, `#${i} ${Buffer.from(bytes).toString('hex').slice(0, 80)}`);
      if (message !== 'ok') refused++;
    }
    expect(refused).toBeGreaterThan(5_000);
  });
});
