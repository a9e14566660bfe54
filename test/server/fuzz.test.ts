/**
 * The fuzz test of issue 4 ("Bad input"): a real coordinator on 127.0.0.1 takes ≥ 10,000
 * malformed or hostile messages from raw socket.io clients while three honest participants
 * (raw clients with canned predictions, no tfjs) run their rounds.
 *
 * Asserted: every hostile message sent with an ack is answered with a refusal envelope whose
 * code is an ErrorCode (never E_INTERNAL, never silence, never "ok"); the coordinator stays up
 * and serves a final honest round after the storm; every target an honest participant received
 * equals the leave-one-out mean recomputed from the honest uploads alone, and every round's
 * ensemble digest equals that of the honest mean — so neither acked nor ack-less hostile
 * messages changed anything.
 *
 * The generator is seeded per hostile connection, so the sequence of messages repeats run to
 * run; round numbers are drawn relative to the round the connection last saw, so which code a
 * stale-round message earns (say E_ROUND_CLOSED rather than E_VALUE) can vary with timing.
 */
import { createHash } from 'node:crypto';
import { io, type Socket } from 'socket.io-client';
import { afterAll, describe, expect, it } from 'vitest';
import { SeededRandom } from '../../client/data/random.js';
import {
  clientMessages,
  decodeEnvelope,
  decodeMessage,
  encodeMessage,
  ErrorCode,
  packTensor,
  PROTOCOL_VERSION,
  replyMessages,
  serverMessages,
  unpackTensor,
  type ServerMessage,
  type WireDtype,
} from '../../protocol/index.js';
import { Coordinator } from '../../server/coordinator.js';
import { concat, msgpack, Raw } from './hostile-msgpack.js';
import type { RoundRecord, SessionConfig } from '../../server/session.js';

const C = 10;
const R = 20;
const MAX_BYTES = 8 * 1024;
const SESSION = 'fuzz';
const SEED = 0x4f55_2a04;
/** Hostile messages per connection: h1 and h2 join (members of every round), h3 never joins. */
const STORM: Record<HostileId, number> = { h1: 4_200, h2: 4_000, h3: 2_000 };
/** Messages in flight per hostile connection before it waits for their acks. */
const BATCH = 150;
const ACK_TIMEOUT_MS = 20_000;
/** The storm stops sending past this, and the count assertion then fails: bounded in time as in count. */
const STORM_TIME_LIMIT_MS = 45_000;

const HONEST = [
  { id: 'a', dtype: 'float32' },
  { id: 'b', dtype: 'float16' },
  { id: 'c', dtype: 'uint8' },
] as const satisfies ReadonlyArray<{ id: string; dtype: WireDtype }>;
type HostileId = 'h1' | 'h2' | 'h3';
const HOSTILE: readonly HostileId[] = ['h1', 'h2', 'h3'];
const JOINED_HOSTILE: ReadonlySet<HostileId> = new Set(['h1', 'h2']);

const ERROR_CODES: ReadonlySet<string> = new Set(Object.values(ErrorCode));
const KNOWN_EVENTS = ['join', 'upload', 'report', 'push', 'pull'] as const;
type KnownEvent = (typeof KNOWN_EVENTS)[number];
/** Names the coordinator does not listen to: the server's own events, near misses, prototype keys, socket.io's "error". */
const UNKNOWN_EVENTS: ReadonlyArray<string | number> = [
  'round', 'target', 'end', 'round-failed', 'ack', 'joined', 'JOIN', 'Upload', 'upload ', ' join', 'uploads', '',
  'constructor', '__proto__', 'toString', 'hasOwnProperty', 'error', 'connection', 'x'.repeat(300), 'pull\u0000', 42, 0,
];

function config(overrides: Partial<SessionConfig> = {}): SessionConfig {
  return {
    id: SESSION, algorithm: 'dml', rounds: 1_000, minParticipants: 3, minToStart: 5, numClasses: C, referenceSize: R,
    referencePerRound: R, temperature: 2, alpha: 0.5, uploadDtype: 'float32',
    // h1 and h2 are members of every round and never upload validly: each round during the storm
    // aggregates the honest three at this deadline.
    roundTimeoutMs: 1_500, trainTimeoutMs: 20_000, onRoundFailure: 'continue', seed: 7, maxMessageBytes: MAX_BYTES,
    participants: [...HONEST.map((h) => h.id), ...HOSTILE].map((id) => ({ id, token: `token-${id}` })),
    ...overrides,
  };
}

// ---- msgpack building blocks ---------------------------------------------------------------

// Raw, concat and msgpack: test/server/hostile-msgpack.ts, shared with the protocol-2 fuzzers.

const u64 = (hi: number, lo: number) => new Raw(new Uint8Array([0xcf, hi >>> 24, (hi >>> 16) & 255, (hi >>> 8) & 255, hi & 255, lo >>> 24, (lo >>> 16) & 255, (lo >>> 8) & 255, lo & 255]));
const i64Min = new Raw(new Uint8Array([0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0]));
const ext = (...bytes: number[]) => new Raw(new Uint8Array(bytes));
/** msgpackr's extensions (and some it does not know): timestamps, typed arrays, errors, regexps, sets, clones, bigints. */
const EXT_VALUES: readonly Raw[] = [
  ext(0xd6, 0xff, 0, 0, 0, 1), // timestamp → Date
  ext(0xc7, 9, 0x74, 7, 0, 0, 0x80, 0x7f, 0, 0, 0xc0, 0x7f), // Float32Array [Inf, NaN]
  ext(0xc7, 5, 0x74, 8, 0, 0, 0, 0), // Float64Array of a wrong length
  ext(0xc7, 3, 0x74, 99, 5, 6), // unknown typed-array code
  ext(0xc7, 3, 0x74, 16, 5, 6), // ArrayBuffer
  ext(0xc7, 3, 0x74, 17, 5, 6), // DataView
  ext(0xd4, 0x65, 0, ...msgpack(['constructor', 'x'])), // Error ext naming a prototype key
  ext(0xd4, 0x65, 0, ...msgpack(['__proto__', 'x'])),
  ext(0xd4, 0x65, 0, ...msgpack(['AggregateError', 'x', null, 5])),
  ext(0xd4, 0x65, 0, 0xc0),
  ext(0xd4, 0x78, 0, ...msgpack(['(a+)+$', 'g'])), // RegExp
  ext(0xd4, 0x78, 0, ...msgpack(['(', ''])), // invalid RegExp
  ext(0xd4, 0x73, 0, ...msgpack([1, 2, 3])), // Set
  ext(0xd4, 0x73, 0, 0x05), // Set of a number
  ext(0xd6, 0x70, 0, 0, 0, 1), // structured-clone pointer
  ext(0xd6, 0x69, 0, 0, 0, 1, 0x90), // structured-clone id
  ext(0xd4, 0x42, 0x05), // BigInt ext
  ext(0xd4, 0x01, 0x00), // unknown ext type
  ext(0xd4, 0x00, 0x00), // msgpackr's undefined
  ext(0xd6, 0x62, 0xff, 0xff, 0xff, 0xff), // bundled strings with a bogus size
  ext(0xd6, 0x62, 0, 0, 0, 10),
];
/** Byte strings that are not valid msgpack, or claim more than they hold. */
const INVALID_MSGPACK: readonly number[][] = [
  [0xc1],
  [0x81, 0xa1, 0x76, 0xc1],
  [0x8f, 0xa1, 0x76, 0x01],
  [0x81, 0xa1, 0x76, 0xd9, 0xff, 0x61],
  [0xdb, 0x7f, 0xff, 0xff, 0xff, 0x61],
  [0xdf, 0x7f, 0xff, 0xff, 0xff, 0xa1, 0x61],
  [0x81, 0xa1, 0x76, 0xdd, 0x7f, 0xff, 0xff, 0xff],
  [0x81, 0x91, 0x01, 0x02], // array as a map key
  [0x81, 0x81, 0xa1, 0x61, 0x01, 0x02], // map as a map key
  [0x81, 0xc4, 0x01, 0x61, 0x02], // bin as a map key
  [0x81, 0xa1, 0x76, 0xc7, 0x05, 0x01, 0x00], // truncated ext
  [0x82, 0xa1, 0x76, 0x01],
  [0xc4, 0xff],
];

// ---- the hostile message generator -----------------------------------------------------------

interface HostileMessage {
  category: string;
  event: string | number;
  args: unknown[];
  ack: boolean;
}

interface Replayable {
  event: 'upload' | 'report';
  bytes: Uint8Array;
}

/** What a hostile connection knows when it builds a message. */
interface HostileContext {
  self: HostileId;
  /** The latest round number it has seen broadcast (1 before any). */
  round(): number;
  /** Envelopes the honest participants sent, captured for replay. */
  replays: readonly Replayable[];
}

class HostileGenerator {
  private readonly random: SeededRandom;

  constructor(seed: number, private readonly ctx: HostileContext) {
    this.random = new SeededRandom(seed);
  }

  private int(n: number): number {
    return this.random.int(n);
  }
  private chance(p: number): boolean {
    return this.random.next() < p;
  }
  private pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  private bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }

  /** Soft predictions on the simplex: valid on their own, so each message below breaks one thing on purpose. */
  private simplex(rows = R, classes = C): Float32Array {
    const v = new Float32Array(rows * classes);
    for (let r = 0; r < rows; r++) {
      let sum = 0;
      for (let k = 0; k < classes; k++) sum += v[r * classes + k] = 0.05 + this.random.next();
      for (let k = 0; k < classes; k++) v[r * classes + k]! /= sum;
    }
    return v;
  }

  private past(): number {
    const r = this.ctx.round();
    return r > 1 ? 1 + this.int(r - 1) : this.future();
  }
  private future(): number {
    return this.ctx.round() + 1_000 + this.int(100_000);
  }

  /** A well-formed message of this connection's own (an upload valid in full for h1 and h2): never sent as it is. */
  private header(event: KnownEvent): Record<string, unknown> {
    const base = { v: PROTOCOL_VERSION, session: SESSION };
    const { self } = this.ctx;
    switch (event) {
      case 'join':
        return { ...base, role: 'participant' };
      case 'upload':
        return { ...base, round: this.ctx.round(), participant: self, kind: 'reference-predictions', values: packTensor(this.simplex(), [R, C], 'float32') };
      case 'report':
        // A round far ahead: a report whose metrics a mutation happens to leave valid (a Date or a
        // nested map decodes to an object zod reads as {}) must still be refused.
        return { ...base, round: this.future(), participant: self, metrics: { accuracy: 0.5, loss: 1.2, trainSamples: 100, trainMs: 30 } };
      case 'push':
        return { ...base, participant: self, shard: 0, step: 20, values: packTensor(this.simplex(4), [4, C], 'float32') };
      case 'pull':
        return { ...base, participant: self, shard: 0 };
    }
  }

  /**
   * A message for `event` that is refused for a reason independent of timing (a round far in the
   * future, someone else's id): the base for byte flips and extra arguments, where a valid
   * message could otherwise survive by chance.
   */
  private refusedAnyway(event: KnownEvent): Record<string, unknown> {
    const m = this.header(event);
    if (event === 'join') return { ...m, session: 'elsewhere' };
    if (event === 'upload' || event === 'report') return { ...m, round: this.future(), participant: 'a' };
    return m; // push and pull: always refused by a synchronous session
  }

  /**
   * A field the event's schema has. Only those: zod drops unknown keys, so breaking a field the
   * schema does not know would leave a valid message.
   */
  private field(message: Record<string, unknown>): string {
    return this.pick(Object.keys(message));
  }

  private upload(values: unknown, extra: Record<string, unknown> = {}): Record<string, unknown> {
    return { ...this.header('upload'), values, ...extra };
  }

  private tensor(dtype: WireDtype, values = this.simplex()): Record<string, unknown> {
    return { ...packTensor(values, [R, C], dtype) };
  }

  private readonly categories: ReadonlyArray<[string, number, () => Pick<HostileMessage, 'event' | 'args'>]> = [
    ['random bytes', 6, () => ({ event: this.anyEvent(), args: [this.bytes(1 + this.int(600))] })],
    ['invalid msgpack', 5, () => {
      const template = this.pick(INVALID_MSGPACK);
      return { event: this.anyEvent(), args: [concat([new Uint8Array(template), this.chance(0.5) ? this.bytes(this.int(8)) : new Uint8Array(0)])] };
    }],
    ['byte flips', 4, () => {
      const event = this.pick(KNOWN_EVENTS);
      const bytes = msgpack(this.refusedAnyway(event));
      for (let n = 1 + this.int(3); n > 0; n--) bytes[this.int(bytes.length)] = this.int(256);
      return { event, args: [bytes] };
    }],
    ['truncated envelope', 6, () => {
      const event = this.pick(KNOWN_EVENTS);
      const bytes = msgpack(this.header(event)); // valid in full: only its truncation is sent
      return { event, args: [bytes.subarray(0, 1 + this.int(bytes.length - 1))] };
    }],
    ['trailing bytes', 3, () => {
      const event = this.pick(KNOWN_EVENTS);
      return { event, args: [concat([msgpack(this.header(event)), this.bytes(1 + this.int(8))])] };
    }],
    ['not a map', 3, () => ({
      event: this.pick(KNOWN_EVENTS),
      args: [msgpack(this.pick<unknown>([[1, 2], 'upload', 42, null, true, 1.5, new Uint8Array(10), [this.header('upload')], -1]))],
    })],
    ['deep nesting', 1, () => {
      // As deep as the size limit allows, so msgpackr's recursive reader may overflow the stack.
      const event = this.pick(KNOWN_EVENTS);
      const m = this.header(event);
      const depth = 1_000 + this.int(MAX_BYTES - msgpack(m).length - 1_100);
      const inner = this.chance(0.5)
        ? concat([new Uint8Array(depth).fill(0x91), new Uint8Array([0x01])]) // [[[…1…]]]
        : concat([...Array.from({ length: Math.floor(depth / 3) }, () => new Uint8Array([0x81, 0xa1, 0x61])), new Uint8Array([0x01])]); // {a:{a:…1}}
      return { event, args: [msgpack({ ...m, [this.field(m)]: new Raw(inner) })] };
    }],
    ['msgpack extensions', 4, () => {
      const event = this.pick(KNOWN_EVENTS);
      const m = this.header(event);
      const value = this.pick(EXT_VALUES);
      if (event === 'upload' && this.chance(0.3)) return { event, args: [msgpack({ ...m, values: { ...this.tensor('float32'), data: value } })] };
      return { event, args: [msgpack({ ...m, [this.field(m)]: value })] };
    }],
    ['64-bit integers', 2, () => {
      const event = this.pick(KNOWN_EVENTS);
      const big = this.pick([u64(0x8000_0000, 0), u64(0xffff_ffff, 0xffff_ffff), u64(0x0020_0000, 1), i64Min]);
      const m = this.header(event);
      if (event === 'upload' && this.chance(0.3)) return { event, args: [msgpack(this.upload({ ...this.tensor('float32'), shape: [big, C] }))] };
      return { event, args: [msgpack({ ...m, [this.field(m)]: big })] };
    }],
    ['non-binary payload', 6, () => ({
      event: this.anyEvent(),
      args: [this.pick<unknown>([
        'hello', '\x81\xa1v\x01', 42, -0.5, Number.MAX_SAFE_INTEGER, true, null, {}, [], [1, 2, 3],
        { v: 1, session: SESSION, role: 'participant' }, // a join as a JSON object, not an envelope
        this.upload(this.tensor('float32')), // an upload as an object, its tensor bytes a binary attachment
        { data: new Uint8Array([0x81, 0xa1, 0x76, 0x01]) },
        [msgpack(this.header('join'))], // an envelope inside an array
        'x'.repeat(2_000 + this.int(4_000)),
      ])],
    })],
    ['argument count', 3, () => {
      const event = this.pick(KNOWN_EVENTS);
      const envelope = msgpack(this.refusedAnyway(event));
      return { event, args: this.pick<unknown[]>([[], [envelope, envelope], [envelope, 'extra'], [envelope, 1, { a: 2 }], [null, envelope]]) };
    }],
    ['unknown event', 5, () => ({
      event: this.pick(UNKNOWN_EVENTS),
      args: this.pick<unknown[]>([[msgpack(this.header('upload'))], [msgpack(this.header('join'))], [this.bytes(16)], [], ['text']]),
    })],
    ['oversized', 3, () => {
      const event = this.pick(KNOWN_EVENTS);
      const over = MAX_BYTES + 1 + this.int(256);
      if (this.chance(0.5)) return { event, args: [this.bytes(over)] };
      const m = msgpack(this.header(event));
      // A valid envelope padded just past the session limit with one more string field.
      const pad = 'p'.repeat(over - m.length - 8);
      const bytes = msgpack({ ...this.header(event), pad });
      return { event, args: [bytes.length > MAX_BYTES ? bytes : concat([bytes, this.bytes(MAX_BYTES + 1 - bytes.length)])] };
    }],
    ['protocol version', 6, () => {
      const event = this.pick(KNOWN_EVENTS);
      const v = this.pick<unknown>([0, PROTOCOL_VERSION - 1, PROTOCOL_VERSION + 1, -1, 1.5, 1.0000001, '1', 'v1', null, true, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53, [1], { v: 1 }, new Uint8Array([1]), 'z'.repeat(5_000), u64(0x8000_0000, 1), undefined]);
      return { event, args: [msgpack({ ...this.header(event), v })] };
    }],
    ['session id', 4, () => {
      const event = this.pick(KNOWN_EVENTS);
      const session = this.pick<unknown>(['other', 'FUZZ', 'fuzz ', 'fuzz/../other', '', 'f'.repeat(129), 'f'.repeat(128), 'fuzz\u0000', 42, null, undefined, ['fuzz'], { id: 'fuzz' }]);
      return { event, args: [msgpack({ ...this.header(event), session })] };
    }],
    ['impersonation', 6, () => {
      const event = this.pick(['upload', 'report', 'push', 'pull'] as const);
      const others = ['a', 'b', 'c', 'x', 'admin', 'coordinator', ...HOSTILE.filter((h) => h !== this.ctx.self)];
      const participant = this.pick<unknown>([...others, '', `${this.ctx.self} `, 'A', 'a'.repeat(200), 'a/b', 7, null, undefined]);
      return { event, args: [msgpack({ ...this.header(event), participant })] };
    }],
    ['round number', 6, () => {
      const event = this.pick(['upload', 'report'] as const);
      const round = this.pick<unknown>([this.past(), this.future(), this.future(), 0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '1', null, undefined, 1_000_001, 2 ** 31, -(2 ** 31)]);
      return { event, args: [msgpack({ ...this.header(event), round })] };
    }],
    ['missing or mistyped fields', 6, () => {
      const event = this.pick(KNOWN_EVENTS);
      const m = this.header(event);
      const keys = Object.keys(m).filter((k) => k !== 'v'); // v is its own category
      const key = this.pick(keys);
      const value = this.pick<unknown>([undefined, null, 'text', 3, -3, true, [], {}, new Uint8Array(4), [1, 2], { values: 1 }]);
      // Always wrong: the replacement has another type than the field it replaces.
      if (typeof value === typeof m[key] && !(value === null || Array.isArray(value) || value instanceof Uint8Array)) {
        return { event, args: [msgpack({ ...m, [key]: value === 3 ? 'three' : Number.NaN })] };
      }
      return { event, args: [msgpack({ ...m, [key]: value })] };
    }],
    ['wrong kind', 3, () => {
      // Well-formed tensors of the kinds this dml session does not exchange, and kinds no one knows.
      const kind = this.pick(['reference-logits', 'class-logits', 'weights', 'logits', '', 'REFERENCE-PREDICTIONS']);
      const values = kind === 'weights' ? { ...packTensor(this.simplex(1, 50), [50], 'float32') }
        : kind === 'class-logits' ? { ...packTensor(this.simplex(C, C), [C, C], 'float32') } : this.tensor('float32');
      return { event: 'upload', args: [msgpack(this.upload(values, { kind, sampleCount: 10, labelCounts: new Array<number>(C).fill(3) }))] };
    }],
    ['dtype', 4, () => {
      const t = this.tensor(this.pick(['float32', 'float16', 'uint8'] as const));
      const dtype = this.pick<unknown>(['float64', 'int32', 'int8', 'bfloat16', '', 'FLOAT32', 'float32 ', 7, null, undefined, ['float32']]);
      // A known dtype on another dtype's bytes: a byte count that cannot match the shape.
      const swapped = t.dtype === 'float32' ? this.pick(['float16', 'uint8']) : 'float32';
      return { event: 'upload', args: [msgpack(this.upload(this.chance(0.6) ? { ...t, dtype } : { ...t, dtype: swapped }))] };
    }],
    ['shape', 6, () => {
      const t = this.tensor('float32');
      const data = t.data as Uint8Array;
      const variants: Array<Record<string, unknown>> = [
        { ...t, shape: [C, R] }, { ...t, shape: [R, C - 1] }, { ...t, shape: [R * C] }, { ...t, shape: [] }, { ...t, shape: [R, C, 1] },
        { ...t, shape: [-R, -C] }, { ...t, shape: [R + 0.5, C] }, { ...t, shape: [2 ** 31, 2 ** 31] }, { ...t, shape: new Array<number>(9).fill(1) },
        { ...t, shape: [R - 1, C], data: data.subarray(0, (R - 1) * C * 4) }, { ...t, shape: [0, C], data: new Uint8Array(0) },
        { ...t, data: data.subarray(0, data.length - 1 - this.int(40)) }, { ...t, data: concat([data, this.bytes(1 + this.int(40))]) },
        { ...t, shape: 'R,C' }, { ...t, shape: { 0: R, 1: C } }, { ...t, shape: [String(R), C] },
      ];
      return { event: 'upload', args: [msgpack(this.upload(this.pick(variants)))] };
    }],
    ['NaN and ±Inf', 5, () => {
      if (this.chance(0.3)) {
        // float16 bits of ±Inf or NaN.
        const t = this.tensor('float16');
        const data = new Uint8Array(t.data as Uint8Array);
        const i = this.int(R * C);
        const bits = this.pick([0x7c00, 0xfc00, 0x7e00, 0x7c01, 0xffff]);
        data[2 * i] = bits & 0xff;
        data[2 * i + 1] = bits >> 8;
        return { event: 'upload', args: [msgpack(this.upload({ ...t, data }))] };
      }
      const values = this.simplex();
      for (let n = 1 + this.int(3); n > 0; n--) {
        values[this.int(values.length)] = this.pick([Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]);
      }
      const data = new Uint8Array(values.buffer);
      if (this.chance(0.3)) {
        // NaN with a payload and the sign bit set: not the canonical quiet NaN.
        const i = this.int(R * C) * 4;
        data.set([0x01, 0x00, 0x80, 0xff], i);
      }
      return { event: 'upload', args: [msgpack(this.upload({ dtype: 'float32', shape: [R, C], data }))] };
    }],
    ['off the simplex', 5, () => {
      const values = this.simplex();
      const row = this.int(R);
      const variant = this.int(5);
      if (variant === 0) values[row * C + this.int(C)] = -0.25 - this.random.next(); // negative probability
      else if (variant === 1) for (let k = 0; k < C; k++) values[row * C + k]! *= 1.5; // row sums to 1.5
      else if (variant === 2) for (let i = 0; i < values.length; i++) values[i] = 10 * values[i]! - 3; // logits
      else if (variant === 3) values.fill(0); // all zero
      else values[row * C + this.int(C)] = 1.5; // above 1
      const dtype = this.pick(['float32', 'float32', 'float16', 'uint8'] as const);
      return { event: 'upload', args: [msgpack(this.upload(this.tensor(dtype, values)))] };
    }],
    ['negative or bad counts', 4, () => {
      const extra = this.pick<Record<string, unknown>>([
        { sampleCount: -1 }, { sampleCount: -(2 ** 31) }, { sampleCount: 2.5 }, { sampleCount: Number.NaN }, { sampleCount: 2 ** 31 + 1 },
        { sampleCount: '10' }, { labelCounts: [-1, ...new Array<number>(C - 1).fill(1)] }, { labelCounts: new Array<number>(C).fill(0.5) },
        { labelCounts: new Array<number>(C + 1).fill(1) }, { labelCounts: new Array<number>(C - 1).fill(1) }, { labelCounts: [] },
        { labelCounts: 'many' }, { labelCounts: new Array<unknown>(C).fill('1') }, { labelCounts: new Array<number>(C).fill(Number.POSITIVE_INFINITY) },
      ]);
      return { event: 'upload', args: [msgpack(this.upload(this.tensor('float32'), extra))] };
    }],
    ['uint8 min and scale', 5, () => {
      const t = this.tensor('uint8');
      const variants: Array<Record<string, unknown>> = [
        { ...t, min: undefined }, { ...t, scale: undefined }, { ...t, min: Number.NaN }, { ...t, scale: Number.NaN },
        { ...t, min: Number.POSITIVE_INFINITY }, { ...t, scale: Number.NEGATIVE_INFINITY }, { ...t, scale: -(t.scale as number) },
        { ...t, min: 3e38, scale: 1e37 }, // finite, but min + q·scale overflows float32
        { ...t, min: -1e30, scale: 1e28 },
        { ...t, min: 0.5 }, // every probability ≥ 0.5: rows far above 1
        { ...t, min: '0', scale: '0.01' }, { ...t, min: null }, { ...t, scale: 1e308 * 10 },
      ];
      return { event: 'upload', args: [msgpack(this.upload(this.pick(variants)))] };
    }],
    ['replayed honest envelope', 5, () => {
      const replays = this.ctx.replays;
      if (replays.length === 0) return { event: 'upload', args: [msgpack(this.refusedAnyway('upload'))] };
      // Recent ones mostly: those are for the round still open.
      const pick = replays[Math.max(0, replays.length - 1 - this.int(Math.min(replays.length, 12)))]!;
      const event = this.chance(0.8) ? pick.event : pick.event === 'upload' ? 'report' : 'upload';
      return { event, args: [pick.bytes] };
    }],
    ['push or pull to a synchronous session', 4, () => {
      const event = this.pick(['push', 'pull'] as const);
      return { event, args: [msgpack(this.chance(0.7) ? this.header(event) : { ...this.header(event), shard: this.pick<unknown>([-1, 99, 1.5, 'zero']) })] };
    }],
    ['bad report', 4, () => {
      const metrics = this.pick<unknown>([
        { accuracy: 1.5 }, { accuracy: -0.1 }, { accuracy: Number.NaN }, { accuracy: '0.9' }, { loss: 'low' }, { trainSamples: -1 },
        { trainSamples: 1.5 }, { trainMs: -5 }, null, [], 'great',
      ]);
      return { event: 'report', args: [msgpack({ ...this.header('report'), metrics })] };
    }],
    ['bad join', 3, () => {
      const role = this.pick<unknown>(['admin', 'observer', 'PARTICIPANT', '', 7, null, ['participant'], { role: 'teacher' }]);
      return { event: 'join', args: [msgpack(this.chance(0.8) ? { ...this.header('join'), role } : { ...this.header('join'), role: undefined })] };
    }],
  ];
  private readonly totalWeight = this.categories.reduce((n, [, w]) => n + w, 0);

  private anyEvent(): string | number {
    return this.chance(0.85) ? this.pick(KNOWN_EVENTS) : this.pick(UNKNOWN_EVENTS);
  }

  next(): HostileMessage {
    let draw = this.int(this.totalWeight);
    for (const [category, weight, build] of this.categories) {
      if ((draw -= weight) < 0) return { category, ...build(), ack: this.chance(0.85) };
    }
    throw new Error('unreachable');
  }
}

// ---- participants ------------------------------------------------------------------------------

/** The reply an ack carried: an ErrorCode, or what else it was. */
function replyCode(args: unknown[]): string {
  if (args.length !== 1) return `NOT ONE ENVELOPE (${args.length} arguments)`;
  let message: Record<string, unknown>;
  try {
    message = decodeEnvelope(args[0]);
  } catch {
    return 'UNDECODABLE REPLY';
  }
  if (message.ok === true) return 'ok';
  const refused = replyMessages.refused.safeParse(message);
  if (!refused.success) return `INVALID REFUSAL (${refused.error.issues[0]?.message ?? '?'})`;
  // A refusal speaks about the input in codistill's words: never a decoder's or the engine's (issue 15).
  if (DECODER_INTERNALS.test(refused.data.error.message)) return `LEAKED INTERNALS (${refused.data.error.message.slice(0, 120)})`;
  return refused.data.error.code;
}

const DECODER_INTERNALS = /call stack|mapsAsObjects|msgpackr|Cannot read propert|is not iterable|Invalid regular expression|Unknown extension|Structured clone|Could not find typed array|Invalid property type/i;

/** socket.io-client emit with an ack that resolves with the ack's arguments, or a description of the silence. */
function emitWithAck(socket: Socket, event: string | number, args: unknown[]): Promise<unknown[] | 'NO ANSWER'> {
  return new Promise((resolve) => {
    socket.timeout(ACK_TIMEOUT_MS).emit(event as string, ...args, (error: Error | null, ...reply: unknown[]) => resolve(error ? 'NO ANSWER' : reply));
  });
}

function connect(url: string, token: string | undefined, v: unknown = PROTOCOL_VERSION): Socket {
  return io(url, { transports: ['websocket'], auth: token === undefined ? { v } : { v, token }, reconnection: false, forceNew: true });
}

function connected(socket: Socket): Promise<void> {
  return new Promise((resolve, reject) => {
    if (socket.connected) return resolve();
    socket.once('connect', () => resolve());
    socket.once('connect_error', reject);
  });
}

/** Canned predictions of one honest participant for one round: positive, normalised, different per (participant, round). */
function honestPredictions(index: number, round: number): Float32Array {
  const random = new SeededRandom(SEED + 1_000 * round + index);
  const v = new Float32Array(R * C);
  for (let r = 0; r < R; r++) {
    let sum = 0;
    for (let k = 0; k < C; k++) sum += v[r * C + k] = 0.02 + random.next() * (k === (r + index) % C ? 4 : 1);
    for (let k = 0; k < C; k++) v[r * C + k]! /= sum;
  }
  return v;
}

/** A raw honest participant: uploads canned predictions as each round opens, reports on each target, and replays its own envelopes. */
class HonestParticipant {
  readonly socket: Socket;
  /** Round → its predictions as the coordinator decodes them, for uploads the coordinator accepted. */
  readonly accepted = new Map<number, Float32Array>();
  /** Round → envelope bytes of its accepted upload and report: what the round's record may count as received. */
  readonly bytesUp = new Map<number, number>();
  readonly targets = new Map<number, ServerMessage<'target'>>();
  readonly failedRounds: number[] = [];
  /** Replies to this participant's own messages: first uploads, replays and reports, by kind and code. */
  readonly replies = new Map<string, number>();
  readonly pending = new Set<Promise<void>>();
  /** Set once the final round is in: rounds opened after it are left alone. */
  frozen = false;

  constructor(url: string, readonly index: number, readonly id: string, readonly dtype: WireDtype, private readonly replays: Replayable[]) {
    this.socket = connect(url, `token-${id}`);
    this.socket.on('round', (bytes: unknown) => this.onRound(decodeMessage(serverMessages.round, bytes)));
    this.socket.on('target', (bytes: unknown) => this.onTarget(decodeMessage(serverMessages.target, bytes)));
    this.socket.on('round-failed', (bytes: unknown) => this.failedRounds.push(decodeMessage(serverMessages['round-failed'], bytes).round));
  }

  async join(): Promise<void> {
    await connected(this.socket);
    const reply = await emitWithAck(this.socket, 'join', [encodeMessage(clientMessages.join, { v: PROTOCOL_VERSION, session: SESSION, role: 'participant' })]);
    expect(reply === 'NO ANSWER' ? reply : replyCode(reply), `${this.id} joins`).toBe('ok');
  }

  private track(what: string, event: string, envelope: Uint8Array, then?: (code: string) => void): void {
    const done = emitWithAck(this.socket, event, [envelope]).then((reply) => {
      const code = reply === 'NO ANSWER' ? reply : replyCode(reply);
      const key = `${what}: ${code}`;
      this.replies.set(key, (this.replies.get(key) ?? 0) + 1);
      then?.(code);
    });
    this.pending.add(done);
    void done.finally(() => this.pending.delete(done));
  }

  private onRound(round: ServerMessage<'round'>): void {
    if (this.frozen) return;
    const r = round.round;
    const values = packTensor(honestPredictions(this.index, r), [round.referenceIds.length, C], this.dtype);
    const envelope = encodeMessage(clientMessages.upload, {
      v: PROTOCOL_VERSION, session: SESSION, round: r, participant: this.id, kind: 'reference-predictions', values,
    }, { maxBytes: MAX_BYTES });
    const seen = unpackTensor(values); // what the coordinator will decode: float16 and uint8 are lossy
    this.track('upload', 'upload', envelope, (code) => {
      if (code !== 'ok') return;
      this.accepted.set(r, seen);
      this.bytesUp.set(r, (this.bytesUp.get(r) ?? 0) + envelope.byteLength);
    });
    // Replays of its own envelopes: the same upload again (idempotent, the first one stands) and
    // the previous round's (closed).
    this.track('upload replayed', 'upload', envelope);
    const previous = [...this.replays].reverse().find((e) => e.event === 'upload' && decodeEnvelope(e.bytes).participant === this.id);
    if (previous !== undefined) this.track('previous round upload replayed', 'upload', previous.bytes);
    this.replays.push({ event: 'upload', bytes: envelope });
  }

  private onTarget(target: ServerMessage<'target'>): void {
    this.targets.set(target.round, target);
    const envelope = encodeMessage(clientMessages.report, {
      v: PROTOCOL_VERSION, session: SESSION, round: target.round, participant: this.id, metrics: { accuracy: 0.5 + this.index / 10, trainSamples: 100 },
    });
    // The record counts a report once, whichever of the two identical envelopes it took.
    let counted = false;
    const count = (code: string) => {
      if (code !== 'ok' || counted) return;
      counted = true;
      this.bytesUp.set(target.round, (this.bytesUp.get(target.round) ?? 0) + envelope.byteLength);
    };
    this.track('report', 'report', envelope, count);
    this.track('report replayed', 'report', envelope, count);
    this.replays.push({ event: 'report', bytes: envelope });
  }
}

/** A hostile connection: sends its share of the storm in batches and keeps every ack. */
class HostileConnection {
  readonly socket: Socket;
  readonly generator: HostileGenerator;
  latestRound = 1;
  sent = 0;
  sentWithAck = 0;
  /** Ack'd messages by the code of their answer (or by what was wrong with the answer). */
  readonly codes = new Map<string, number>();
  /** category → code → count, for the table and the per-category expectations. */
  readonly byCategory = new Map<string, Map<string, number>>();
  readonly wrongAnswers: string[] = [];

  constructor(url: string, readonly id: HostileId, seed: number, replays: readonly Replayable[]) {
    this.socket = connect(url, `token-${id}`);
    this.socket.on('round', (bytes: unknown) => {
      this.latestRound = Math.max(this.latestRound, decodeMessage(serverMessages.round, bytes).round);
    });
    this.generator = new HostileGenerator(seed, { self: id, round: () => this.latestRound, replays });
  }

  async storm(count: number, deadline: number): Promise<void> {
    while (this.sent < count && Date.now() < deadline) {
      const batch: Promise<void>[] = [];
      for (let i = 0; i < BATCH && this.sent < count; i++, this.sent++) {
        const message = this.generator.next();
        if (!message.ack) {
          this.socket.emit(message.event as string, ...message.args);
          continue;
        }
        this.sentWithAck++;
        batch.push(emitWithAck(this.socket, message.event, message.args).then((reply) => this.record(message, reply)));
      }
      await Promise.all(batch);
    }
  }

  record(message: Pick<HostileMessage, 'category' | 'event'>, reply: unknown[] | 'NO ANSWER'): void {
    const code = reply === 'NO ANSWER' ? reply : replyCode(reply);
    this.codes.set(code, (this.codes.get(code) ?? 0) + 1);
    const row = this.byCategory.get(message.category) ?? new Map<string, number>();
    row.set(code, (row.get(code) ?? 0) + 1);
    this.byCategory.set(message.category, row);
    if (!ERROR_CODES.has(code) || code === ErrorCode.Internal) {
      if (this.wrongAnswers.length < 20) this.wrongAnswers.push(`${this.id} ${message.category} on ${JSON.stringify(String(message.event).slice(0, 20))}: ${code}`);
    }
  }
}

// ---- expectations --------------------------------------------------------------------------------

/** The honest leave-one-out mean, recomputed here: (Σ_{j≠i} p_j)/(n − 1) in float64, rounded to float32. */
function leaveOneOut(uploads: readonly Float32Array[], own: number): Float32Array {
  const out = new Float32Array(R * C);
  for (let i = 0; i < out.length; i++) {
    let sum = 0;
    uploads.forEach((u, j) => {
      if (j !== own) sum += u[i]!;
    });
    out[i] = sum / (uploads.length - 1);
  }
  return out;
}

function meanDigest(uploads: readonly Float32Array[]): string {
  const mean = new Float32Array(R * C);
  for (let i = 0; i < mean.length; i++) mean[i] = uploads.reduce((s, u) => s + u[i]!, 0) / uploads.length;
  return createHash('sha256').update(new Uint8Array(mean.buffer)).digest('hex');
}

/** Codes each category may earn besides the ones every message can (not joined, stale round, too large). */
const EXPECTED: Record<string, readonly string[]> = {
  'random bytes': ['E_MALFORMED', 'E_VERSION', 'E_SCHEMA'],
  'invalid msgpack': ['E_MALFORMED', 'E_VERSION', 'E_SCHEMA'],
  'byte flips': ['E_MALFORMED', 'E_VERSION', 'E_SCHEMA', 'E_SESSION', 'E_AUTH', 'E_DTYPE', 'E_SHAPE', 'E_VALUE', 'E_TOO_LARGE'],
  'truncated envelope': ['E_MALFORMED'],
  'trailing bytes': ['E_MALFORMED'],
  'not a map': ['E_MALFORMED'],
  'deep nesting': ['E_MALFORMED', 'E_VERSION', 'E_SCHEMA'],
  'msgpack extensions': ['E_MALFORMED', 'E_VERSION', 'E_SCHEMA', 'E_SESSION', 'E_AUTH', 'E_ROUND_CLOSED'],
  '64-bit integers': ['E_VERSION', 'E_SCHEMA'],
  'non-binary payload': ['E_MALFORMED', 'E_SCHEMA'],
  'argument count': ['E_MALFORMED'],
  'unknown event': ['E_SCHEMA'],
  oversized: ['E_TOO_LARGE'],
  'protocol version': ['E_VERSION'],
  'session id': ['E_SCHEMA', 'E_SESSION'],
  impersonation: ['E_SCHEMA', 'E_AUTH'],
  'round number': ['E_SCHEMA', 'E_ROUND_CLOSED'],
  'missing or mistyped fields': ['E_SCHEMA', 'E_VERSION'],
  'wrong kind': ['E_SCHEMA'],
  dtype: ['E_SCHEMA', 'E_SHAPE'],
  shape: ['E_SCHEMA', 'E_SHAPE'],
  'NaN and ±Inf': ['E_VALUE'],
  'off the simplex': ['E_VALUE'],
  'negative or bad counts': ['E_SCHEMA', 'E_SHAPE'],
  'uint8 min and scale': ['E_SCHEMA', 'E_VALUE'],
  'replayed honest envelope': ['E_AUTH', 'E_SCHEMA', 'E_ROUND_CLOSED'],
  'push or pull to a synchronous session': ['E_SCHEMA'],
  'bad report': ['E_SCHEMA'],
  'bad join': ['E_SCHEMA'],
};
/** h3 has not joined; a round may close between a message's making and its handling. */
const ALWAYS_POSSIBLE = ['E_NOT_JOINED', 'E_ROUND_CLOSED'];

// ---- the test ------------------------------------------------------------------------------------

describe('fuzzing the coordinator over real sockets', () => {
  let coordinator: Coordinator | undefined;
  const sockets: Socket[] = [];
  afterAll(async () => {
    for (const s of sockets) s.close();
    await coordinator?.close();
  });

  it('answers ≥ 10,000 hostile messages with error codes, stays up, and leaves every honest aggregate as it was', async () => {
    const log: string[] = [];
    coordinator = await Coordinator.start({ maxMessageBytes: MAX_BYTES, rateLimit: 'off', log: (line) => log.push(line) });
    const session = coordinator.createSession(config());
    // A second session, never started: its name and its participant are targets for confusion.
    coordinator.createSession(config({ id: 'other', participants: [{ id: 'x', token: 'token-x' }], minToStart: 1, minParticipants: 1 }));
    const records: RoundRecord[] = [];
    session.on('round', (r) => records.push(r));

    // The handshake refuses strangers before any message: a few attempts, their codes counted apart.
    const handshakes = new Map<string, number>();
    for (const [token, v] of [[undefined, PROTOCOL_VERSION], ['', PROTOCOL_VERSION], ['nope', PROTOCOL_VERSION], ['token-a ', PROTOCOL_VERSION], ['t'.repeat(10_000), PROTOCOL_VERSION], ['token-a', 0], ['token-a', '1'], ['token-a', null], [42, PROTOCOL_VERSION], [{ token: 'token-a' }, PROTOCOL_VERSION]] as const) {
      const socket = io(coordinator.url, { transports: ['websocket'], auth: { v, token }, reconnection: false, forceNew: true });
      sockets.push(socket);
      const code = await connected(socket).then(() => 'CONNECTED', (error: { data?: { code?: string } }) => error.data?.code ?? 'NO CODE');
      handshakes.set(code, (handshakes.get(code) ?? 0) + 1);
      socket.close();
    }
    expect([...handshakes.keys()].every((code) => ERROR_CODES.has(code)), JSON.stringify([...handshakes])).toBe(true);

    const replays: Replayable[] = [];
    const hostile = HOSTILE.map((id, i) => new HostileConnection(coordinator!.url, id, SEED + i, replays));
    sockets.push(...hostile.map((h) => h.socket));
    await Promise.all(hostile.map((h) => connected(h.socket)));
    // h1 and h2 join first, so that they are members of round 1 and of every round after.
    for (const h of hostile.filter((h) => JOINED_HOSTILE.has(h.id))) {
      const reply = await emitWithAck(h.socket, 'join', [encodeMessage(clientMessages.join, { v: PROTOCOL_VERSION, session: SESSION, role: 'participant' })]);
      expect(reply === 'NO ANSWER' ? reply : replyCode(reply)).toBe('ok');
    }
    const honest = HONEST.map((h, i) => new HonestParticipant(coordinator!.url, i, h.id, h.dtype, replays));
    sockets.push(...honest.map((p) => p.socket));
    await Promise.all(honest.map((p) => p.join()));

    // The storm.
    const started = Date.now();
    await Promise.all(hostile.map((h) => h.storm(STORM[h.id], started + STORM_TIME_LIMIT_MS)));
    // Ack'd messages after the ack-less ones on each connection: those ahead of them have been handled.
    for (const h of hostile) {
      const drain = { category: 'random bytes', event: 'upload' };
      h.record(drain, await emitWithAck(h.socket, 'upload', [new Uint8Array([0xc1])]));
      h.sentWithAck++;
      h.sent++;
    }
    const stormMs = Date.now() - started;
    const stormEnd = Date.now();
    const roundsDuringStorm = records.filter((r) => r.closedAt <= stormEnd);

    // Still connected (no hostile message got its connection dropped), and no message, with or
    // without an ack, got h3 into the session.
    expect(hostile.map((h) => h.socket.connected)).toEqual([true, true, true]);
    expect(session.connected.sort()).toEqual(['a', 'b', 'c', 'h1', 'h2']);

    // After the storm the hostile leave; a round opened after the storm must complete with the honest three.
    for (const h of hostile) h.socket.close();
    const final = await new Promise<RoundRecord>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no honest round completed after the storm')), 30_000);
      const check = (r: RoundRecord) => {
        if (r.openedAt >= stormEnd && r.failure === undefined && Object.keys(r.reports).length === HONEST.length) {
          clearTimeout(timer);
          session.off('round', check);
          resolve(r);
        }
      };
      session.on('round', check);
    });
    for (const p of honest) p.frozen = true;
    await Promise.all(honest.flatMap((p) => [...p.pending]));
    expect(session.ended).toBe(false);

    // ---- the figures ----
    const sent = hostile.reduce((n, h) => n + h.sent, 0);
    const sentWithAck = hostile.reduce((n, h) => n + h.sentWithAck, 0);
    const codes = new Map<string, number>();
    const byCategory = new Map<string, Map<string, number>>();
    for (const h of hostile) {
      for (const [code, n] of h.codes) codes.set(code, (codes.get(code) ?? 0) + n);
      for (const [category, row] of h.byCategory) {
        const total = byCategory.get(category) ?? new Map<string, number>();
        for (const [code, n] of row) total.set(code, (total.get(code) ?? 0) + n);
        byCategory.set(category, total);
      }
    }
    const answered = [...codes.values()].reduce((a, b) => a + b, 0);
    const lines = [
      `fuzz: ${sent} hostile messages (${sentWithAck} with an ack, ${sent - sentWithAck} without) in ${stormMs} ms (${Math.round(sent / (stormMs / 1000))}/s); ` +
        `${roundsDuringStorm.length} rounds closed during the storm (${roundsDuringStorm.filter((r) => r.failure !== undefined).length} failed), final round ${final.round}`,
      'refusals by code:',
      ...[...codes].sort((x, y) => y[1] - x[1]).map(([code, n]) => `  ${code.padEnd(16)} ${String(n).padStart(6)}`),
      `  ${'total'.padEnd(16)} ${String(answered).padStart(6)}`,
      'by category:',
      ...[...byCategory].map(([category, row]) => `  ${category.padEnd(38)} ${[...row].map(([c, n]) => `${c} ${n}`).join(', ')}`),
      `handshakes refused: ${[...handshakes].map(([c, n]) => `${c} ${n}`).join(', ')}`,
      'honest replies:',
      ...honest.map((p) => `  ${p.id}: ${[...p.replies].map(([k, n]) => `${k} ×${n}`).join('; ')}`),
    ];
    console.log(lines.join('\n'));

    // ---- every ack'd hostile message was refused with an error code ----
    expect(sent).toBeGreaterThanOrEqual(10_000);
    expect(answered).toBe(sentWithAck);
    expect(hostile.flatMap((h) => h.wrongAnswers)).toEqual([]);
    expect(codes.get(ErrorCode.Internal) ?? 0).toBe(0);
    expect(log.filter((line) => line.includes('internal error'))).toEqual([]);
    const misfiled = [...byCategory].flatMap(([category, row]) =>
      [...row.keys()].filter((code) => ![...(EXPECTED[category] ?? []), ...ALWAYS_POSSIBLE].includes(code)).map((code) => `${category}: ${code} ×${row.get(code)}`));
    expect(misfiled).toEqual([]);

    // ---- honest participants: their own messages answered as an honest peer expects ----
    for (const p of honest) {
      for (const key of p.replies.keys()) {
        expect(key, p.id).toMatch(/^(upload|upload replayed|report|report replayed): (ok|E_ROUND_CLOSED)$|^previous round upload replayed: E_ROUND_CLOSED$/);
      }
    }

    // ---- no honest aggregate changed ----
    const aggregated = records.filter((r) => r.failure === undefined && r.round <= final.round);
    expect(aggregated.length).toBeGreaterThanOrEqual(2); // at least one during the storm, and the final one
    let compared = 0;
    let exact = 0;
    let maxDiff = 0;
    for (const record of records.filter((r) => r.round <= final.round)) {
      expect(record.contributors.filter((p) => !HONEST.some((h) => h.id === p)), `round ${record.round} contributors`).toEqual([]);
      expect(Object.keys(record.reports).filter((p) => !HONEST.some((h) => h.id === p)), `round ${record.round} reports`).toEqual([]);
      if (record.failure !== undefined) {
        expect(record.failure.code).toBe(ErrorCode.RoundClosed);
        continue;
      }
      expect([...record.contributors].sort(), `round ${record.round}`).toEqual(HONEST.map((h) => h.id));
      const uploads = honest.map((p) => p.accepted.get(record.round));
      expect(uploads.every((u) => u !== undefined), `round ${record.round}: every honest upload accepted`).toBe(true);
      const honestUploads = uploads as Float32Array[];
      expect(record.ensembleDigest, `round ${record.round} ensemble`).toBe(meanDigest(honestUploads));
      // Bytes the round took in: exactly the honest uploads and reports, so the session accepted no other message.
      expect(record.bytesUp, `round ${record.round} bytes received`).toBe(honest.reduce((n, p) => n + (p.bytesUp.get(record.round) ?? 0), 0));
      honest.forEach((p, i) => {
        const target = p.targets.get(record.round);
        expect(target, `${p.id}'s target for round ${record.round}`).toBeDefined();
        expect(target!.contributors).toBe(HONEST.length);
        const received = unpackTensor(target!.target!, [R, C]);
        const expected = leaveOneOut(honestUploads, i);
        for (let j = 0; j < expected.length; j++) {
          const diff = Math.abs(received[j]! - expected[j]!);
          maxDiff = Math.max(maxDiff, diff);
          if (diff === 0) exact++;
          compared++;
        }
      });
    }
    // Targets for rounds that never closed (none expected up to the final one) would be unchecked.
    for (const p of honest) {
      for (const round of p.targets.keys()) expect(aggregated.some((r) => r.round === round), `${p.id}'s target for round ${round}`).toBe(true);
    }
    console.log(`honest targets: ${compared} values in ${aggregated.length} rounds × ${HONEST.length} participants; ${exact} bit-exact, max |Δ| = ${maxDiff}`);
    expect(maxDiff).toBeLessThanOrEqual(1e-7);
  });
});
