/**
 * Building blocks of hostile envelopes for the protocol fuzzers: msgpack of any value (NaN,
 * ±Infinity, −0, own `__proto__` keys, binary), with raw bytes spliced in anywhere, and a seeded
 * pool of values of every wrong type and range. Deliberately not protocol/codec.ts's encoder,
 * which refuses what a hostile peer would send.
 */
import { Packr } from 'msgpackr';
import { SeededRandom } from '../../client/data/random.js';

const packr = new Packr({ useRecords: false, mapsAsObjects: true, encodeUndefinedAsNil: true });

/** Bytes written verbatim where a value goes: ext types, deep nesting, invalid bytes. */
export class Raw {
  constructor(readonly bytes: Uint8Array) {}
}

export function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

/** msgpack of any value, Raw pieces spliced in at any depth; own keys named __proto__ or constructor travel as keys. */
export function msgpack(value: unknown): Uint8Array {
  if (value instanceof Raw) return value.bytes;
  if (Array.isArray(value)) {
    const n = value.length;
    const head = n < 16 ? [0x90 | n] : n < 0x10000 ? [0xdc, n >> 8, n & 0xff] : [0xdd, n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
    return concat([new Uint8Array(head), ...value.map(msgpack)]);
  }
  if (typeof value === 'object' && value !== null && !(value instanceof Uint8Array)) {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined);
    const n = entries.length;
    const head = n < 16 ? [0x80 | n] : [0xde, n >> 8, n & 0xff];
    return concat([new Uint8Array(head), ...entries.flatMap(([k, v]) => [msgpack(k), msgpack(v)])]);
  }
  return new Uint8Array(packr.pack(value));
}

/** An object with an own property of any name, `__proto__` included (an object literal would set the prototype). */
export function withKey(base: Record<string, unknown>, key: string, value: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(base)) Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
  Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
  return out;
}

/** A seeded source of choices for a generator: the same seed gives the same cases, run after run. */
export class Dice {
  readonly random: SeededRandom;
  constructor(seed: number) {
    this.random = new SeededRandom(seed);
  }
  int(n: number): number {
    return this.random.int(n);
  }
  chance(p: number): boolean {
    return this.random.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }
}

/** `depth` nested arrays around 1, as raw msgpack (no recursion in the encoder). */
export function deepArray(depth: number): Raw {
  return new Raw(concat([new Uint8Array(depth).fill(0x91), new Uint8Array([0x01])]));
}

/** Values of the wrong type for any field: the fuzzers' common pool. */
export function wrongTypes(dice: Dice): unknown[] {
  return [
    null, true, false, 'text', '', 'x'.repeat(5_000 + dice.int(5_000)), -1, 0, -0, 1.5, Number.NaN, Number.POSITIVE_INFINITY,
    Number.NEGATIVE_INFINITY, 2 ** 53, -(2 ** 31), 2 ** 31 + 1, [], [1, 2, 3], {}, { a: 1 }, new Uint8Array(0), dice.bytes(1 + dice.int(64)),
    withKey({}, '__proto__', { polluted: true }), withKey({}, 'constructor', { prototype: { polluted: true } }), deepArray(20 + dice.int(100)),
  ];
}
