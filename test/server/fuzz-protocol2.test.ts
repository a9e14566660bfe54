/**
 * The coordinator fuzzed on the wire surface protocol 2 added (fuzz.test.ts covers protocol 1's:
 * dense reference predictions, joins, reports): top-k sparse uploads, per-token knowledge
 * [rows, positions, vocab], class hyper-knowledge (FedHKD), participant sampling, asynchronous
 * pushes and pulls (co-distillation), and secure aggregation's keys, shares, masked uploads and
 * reveals — each in its own session of one real coordinator on 127.0.0.1, with honest raw
 * participants (real sockets, real msgpackr bytes, canned knowledge) beside one hostile member
 * that has a valid token and has joined, so that its messages reach past authentication into
 * every decoder.
 *
 * Every hostile message is a valid message of its event mutated in one structured way (a field
 * of the wrong type or range, NaN/±Inf/−0, giant arrays and strings, deep nesting, prototype keys,
 * sparse indices out of range or repeated, masses above 1, shapes that disagree with their data,
 * truncated or trailing bytes, events out of turn, …), drawn from a seeded generator: the cases
 * repeat run to run (which code a message earns may vary with timing: a round can close
 * between a message's making and its handling).
 *
 * Asserted: every hostile message sent with an ack is answered with a refusal whose code is an
 * ErrorCode other than E_INTERNAL (a case that is valid by construction, marked so, may be
 * answered ok); the log holds no internal error; every round completes or fails for a stated
 * reason, and every target an honest participant received equals the one recomputed here from
 * the honest uploads alone; the coordinator's heap does not grow past a bound after the storm.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { io, Manager, type Socket } from 'socket.io-client';
import { afterAll, describe, expect, it } from 'vitest';
import { SecureParticipant } from '../../client/secure-round.js';
import {
  clientMessages,
  decodeEnvelope,
  shardIds,
  decodeMessage,
  decodeTopKRows,
  encodeEnvelope,
  encodeMessage,
  ErrorCode,
  expandTopK,
  packTensor,
  packTopK,
  PROTOCOL_VERSION,
  readReply,
  replyMessages,
  serverMessages,
  unpackTensor,
  type ServerMessage,
  type SessionInfo,
  type TokenizerIdentity,
  type WireDtype,
} from '../../protocol/index.js';
import { Coordinator } from '../../server/coordinator.js';
import type { RoundRecord, SessionConfig } from '../../server/session-config.js';
import type { Session } from '../../server/session.js';
import { concat, deepArray, Dice, msgpack, withKey, wrongTypes } from './hostile-msgpack.js';
import { SecureRawParticipant } from './secure-participant.js';

const SEED = 0x2f0_2002;
/** Hostile messages per event type and session; the total is printed. */
const CASES = Number(process.env.FUZZ_CASES ?? 240);
const BATCH = 60;
const MAX_BYTES = 256 * 1024;
const ROUND_MS = 900;
const ERROR_CODES: ReadonlySet<string> = new Set(Object.values(ErrorCode));
const DECODER_INTERNALS = /call stack|mapsAsObjects|msgpackr|Cannot read propert|is not iterable|is not a function|Invalid regular expression|Unknown extension|Structured clone/i;

// ---- knowledge, canned and checkable ----------------------------------------------------------

/** Rows of probabilities on the simplex, different for every (seed, round). */
function simplex(dice: Dice, rows: number, classes: number, peaked = 1): Float32Array {
  const v = new Float32Array(rows * classes);
  for (let r = 0; r < rows; r++) {
    let sum = 0;
    for (let k = 0; k < classes; k++) sum += v[r * classes + k] = 0.02 + dice.random.next() * (k === r % classes ? 4 * peaked : 1);
    for (let k = 0; k < classes; k++) v[r * classes + k]! /= sum;
  }
  return v;
}

/** The leave-one-out mean (Σ_{j≠i} u_j)/(n − 1), in float64, rounded to float32 (DML's mean aggregator). */
function leaveOneOut(uploads: readonly Float32Array[], own: number): Float32Array {
  const out = new Float32Array(uploads[0]!.length);
  for (let i = 0; i < out.length; i++) {
    let sum = 0;
    uploads.forEach((u, j) => {
      if (j !== own) sum += u[i]!;
    });
    out[i] = sum / (uploads.length - 1);
  }
  return out;
}

/** FedHKD's class means Σ_k n_kc r_kc / Σ_k n_kc and their counts, computed here by hand. */
function classMeans(uploads: ReadonlyArray<{ values: Float32Array; labelCounts: number[] }>, classes: number, width: number) {
  const values = new Float32Array(classes * width);
  const counts = new Array<number>(classes).fill(0);
  for (let c = 0; c < classes; c++) {
    for (const u of uploads) counts[c]! += u.labelCounts[c]!;
    if (counts[c] === 0) continue;
    for (let j = 0; j < width; j++) {
      let sum = 0;
      for (const u of uploads) sum += u.labelCounts[c]! * u.values[c * width + j]!;
      values[c * width + j] = sum / counts[c]!;
    }
  }
  return { values, counts };
}

function maxDifference(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Number.POSITIVE_INFINITY;
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}

// ---- sockets --------------------------------------------------------------------------------

function connect(url: string, token: string): Socket {
  return io(url, { transports: ['websocket'], auth: { v: PROTOCOL_VERSION, token }, reconnection: false, forceNew: true });
}

function connected(socket: Socket): Promise<void> {
  return new Promise((resolve, reject) => {
    if (socket.connected) return resolve();
    socket.once('connect', () => resolve());
    socket.once('connect_error', reject);
  });
}

/** An emit with an ack: the ack's arguments, or 'NO ANSWER'. */
function emitWithAck(socket: Socket, event: string | number, args: unknown[], ms = 5_000): Promise<unknown[] | 'NO ANSWER'> {
  return new Promise((resolve) => {
    socket.timeout(ms).emit(event as string, ...args, (error: Error | null, ...reply: unknown[]) => resolve(error ? 'NO ANSWER' : reply));
  });
}

/** What an ack carried: 'ok', an ErrorCode, or what else was wrong with it. */
function replyCode(reply: unknown[] | 'NO ANSWER'): string {
  if (reply === 'NO ANSWER') return reply;
  if (reply.length !== 1) return `NOT ONE ENVELOPE (${reply.length} arguments)`;
  let message: Record<string, unknown>;
  try {
    message = decodeEnvelope(reply[0]);
  } catch {
    return 'UNDECODABLE REPLY';
  }
  if (message.ok === true) return 'ok';
  const refused = replyMessages.refused.safeParse(message);
  if (!refused.success) return `INVALID REFUSAL (${refused.error.issues[0]?.message ?? '?'})`;
  if (DECODER_INTERNALS.test(refused.data.error.message)) return `LEAKED INTERNALS (${refused.data.error.code}: ${refused.data.error.message.slice(0, 160)})`;
  return refused.data.error.code;
}

// ---- honest participants ----------------------------------------------------------------------

interface Upload {
  fields: Record<string, unknown>;
  /** The values as the coordinator decodes them (a top-k upload expanded; uint8 dequantised). */
  decoded: Float32Array;
  labelCounts?: number[];
}

/** A raw honest participant: uploads what `make` gives as each round opens (unless sampled out), reports on each target. */
class Honest {
  readonly socket: Socket;
  readonly accepted = new Map<number, Upload>();
  readonly targets = new Map<number, ServerMessage<'target'>>();
  readonly sitOut = new Set<number>();
  readonly codes = new Map<string, number>();
  info: SessionInfo | undefined;
  /** Awaited before each upload: lets a test have another member upload first. */
  gate: Promise<unknown> = Promise.resolve();

  constructor(
    url: string,
    readonly id: string,
    readonly session: string,
    private readonly make: (round: ServerMessage<'round'>) => Upload,
    private readonly joinFields: Record<string, unknown> = {},
  ) {
    this.socket = connect(url, `${session}-${id}`);
    this.socket.on('round', (bytes: unknown) => void this.onRound(decodeMessage(serverMessages.round, bytes)));
    this.socket.on('target', (bytes: unknown) => void this.onTarget(decodeMessage(serverMessages.target, bytes)));
  }

  private count(key: string): void {
    this.codes.set(key, (this.codes.get(key) ?? 0) + 1);
  }

  async join(): Promise<void> {
    await connected(this.socket);
    const reply = await emitWithAck(this.socket, 'join', [encodeMessage(clientMessages.join, { v: PROTOCOL_VERSION, session: this.session, role: 'participant', ...this.joinFields } as never)]);
    expect(replyCode(reply), `${this.session}/${this.id} joins`).toBe('ok');
    this.info = readReply(replyMessages.joined, (reply as unknown[])[0]).info;
  }

  private async onRound(round: ServerMessage<'round'>): Promise<void> {
    if (round.sampled === false) {
      this.sitOut.add(round.round);
      return;
    }
    await this.gate;
    const upload = this.make(round);
    const envelope = encodeMessage(clientMessages.upload, {
      v: PROTOCOL_VERSION, session: this.session, round: round.round, participant: this.id, ...upload.fields,
    } as never, { maxBytes: MAX_BYTES });
    const code = replyCode(await emitWithAck(this.socket, 'upload', [envelope]));
    this.count(`upload: ${code}`);
    if (code === 'ok') this.accepted.set(round.round, upload);
  }

  private async onTarget(target: ServerMessage<'target'>): Promise<void> {
    this.targets.set(target.round, target);
    const envelope = encodeMessage(clientMessages.report, { v: PROTOCOL_VERSION, session: this.session, round: target.round, participant: this.id, metrics: { accuracy: 0.5 } });
    this.count(`report: ${replyCode(await emitWithAck(this.socket, 'report', [envelope]))}`);
  }
}

// ---- the hostile member -----------------------------------------------------------------------

interface Case {
  category: string;
  event: string | number;
  args: unknown[];
  /** Valid by construction (a second join, a pull): may be answered ok. */
  mayAccept?: boolean;
}

/** A joined member with a valid token: what it sends is generated, and every answer kept. */
class Hostile {
  readonly socket: Socket;
  latestRound = 1;
  readonly byCategory = new Map<string, Map<string, number>>();
  readonly wrong: string[] = [];
  sent = 0;

  constructor(url: string, readonly id: string, readonly session: string) {
    this.socket = connect(url, `${session}-${id}`);
    this.socket.on('round', (bytes: unknown) => {
      this.latestRound = Math.max(this.latestRound, decodeMessage(serverMessages.round, bytes).round);
    });
    this.socket.on('disconnect', (reason) => this.wrong.push(`${session}: the hostile member was disconnected (${reason}) after ${this.sent} messages`));
  }

  async join(fields: Record<string, unknown> = {}): Promise<void> {
    await connected(this.socket);
    expect(replyCode(await emitWithAck(this.socket, 'join', [encodeEnvelope({ v: PROTOCOL_VERSION, session: this.session, role: 'participant', ...fields })]))).toBe('ok');
  }

  /** Sends every case with an ack, BATCH at a time, and files each answer. */
  async storm(cases: Iterable<Case>): Promise<void> {
    let batch: Promise<void>[] = [];
    for (const c of cases) {
      this.sent++;
      batch.push(emitWithAck(this.socket, c.event, c.args).then((reply) => this.file(c, replyCode(reply))));
      if (batch.length >= BATCH) {
        await Promise.all(batch);
        batch = [];
      }
    }
    await Promise.all(batch);
  }

  file(c: Case, code: string): void {
    const row = this.byCategory.get(`${String(c.event)}: ${c.category}`) ?? new Map<string, number>();
    row.set(code, (row.get(code) ?? 0) + 1);
    this.byCategory.set(`${String(c.event)}: ${c.category}`, row);
    const acceptable = ERROR_CODES.has(code) ? code !== ErrorCode.Internal : code === 'ok' && c.mayAccept === true;
    if (!acceptable && this.wrong.length < 30) this.wrong.push(`${this.session} ${String(c.event)} ${c.category}: ${code}${code === 'ok' ? ` ${describeCase(c)}` : ''}`);
  }
}

/** What an accepted case sent, for the failure message: its envelope decoded, binary as lengths. */
function describeCase(c: Case): string {
  try {
    return JSON.stringify(decodeEnvelope(c.args[0]), (_k, v: unknown) => (v instanceof Uint8Array ? `<${v.byteLength} bytes>` : typeof v === 'number' && !Number.isFinite(v) ? String(v) : v)).slice(0, 400);
  } catch (error) {
    return `(not an envelope: ${(error as Error).message})`;
  }
}

/** Hostile values for one field: the common pool minus what `valid` would accept. */
function invalidFor(dice: Dice, valid: (value: unknown) => boolean, extra: unknown[] = []): unknown {
  const pool = [...wrongTypes(dice), ...extra].filter((value) => !valid(value));
  return dice.pick(pool);
}

const isCount = (v: unknown) => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 2 ** 31;

/**
 * The mutations every event shares: bytes cut short or followed by more, not a map, not binary,
 * the wrong number of arguments, a prototype key beside a fault, nesting too deep, past the size
 * limit, another protocol version, another session, another participant.
 */
function envelopeCase(dice: Dice, event: string, valid: Record<string, unknown>, broken: Record<string, unknown>): Case {
  const bytes = msgpack(valid);
  const variant = dice.int(12);
  switch (variant) {
    case 0:
      return { category: 'truncated', event, args: [bytes.subarray(0, 1 + dice.int(bytes.length - 1))] };
    case 1:
      return { category: 'trailing bytes', event, args: [concat([bytes, dice.bytes(1 + dice.int(16))])] };
    case 2:
      return { category: 'not a map', event, args: [msgpack(dice.pick<unknown>([[valid], 'upload', 42, null, true, 1.5, new Uint8Array(8), -0]))] };
    case 3:
      return { category: 'not binary', event, args: [dice.pick<unknown>([valid, JSON.stringify({ ...valid, values: undefined }), 7, null, [bytes], { data: bytes }])] };
    case 4:
      return { category: 'argument count', event, args: dice.pick<unknown[]>([[], [bytes, bytes], [bytes, 'extra'], [null, bytes]]) };
    case 5: {
      // A prototype key (top level or in a nested map) beside a fault that must still be found.
      const key = dice.pick(['__proto__', 'constructor', 'prototype', 'hasOwnProperty', 'toString']);
      const pollution = dice.pick<unknown>([{ polluted: true }, { k: 3, indices: new Uint8Array(3) }, 'x', 1, null]);
      return { category: 'prototype keys', event, args: [msgpack(withKey(broken, key, pollution))] };
    }
    case 6: {
      const field = dice.pick(Object.keys(valid));
      return { category: 'deep nesting', event, args: [msgpack({ ...valid, [field]: deepArray(33 + dice.int(4_000)) })] };
    }
    case 7: {
      const pad = 'p'.repeat(MAX_BYTES + 1 - bytes.length + dice.int(64));
      return { category: 'past the size limit', event, args: [msgpack({ ...valid, pad })] };
    }
    case 8:
      return { category: 'protocol version', event, args: [msgpack({ ...valid, v: dice.pick<unknown>([PROTOCOL_VERSION - 1, PROTOCOL_VERSION + 1, 0, -0, PROTOCOL_VERSION + 1e-7, String(PROTOCOL_VERSION), null, Number.NaN, [PROTOCOL_VERSION]]) })] };
    case 9:
      return { category: 'session', event, args: [msgpack({ ...valid, session: dice.pick<unknown>(['other', '', 's'.repeat(129), 7, null, ['x']]) })] };
    case 10:
      return { category: 'byte flips in a broken message', event, args: [flip(dice, msgpack(broken))] };
    default:
      return { category: 'unknown field beside a fault', event, args: [msgpack({ ...broken, [dice.pick(['extra', 'x'.repeat(300), ''])]: dice.pick(wrongTypes(dice)) })] };
  }
}

function flip(dice: Dice, bytes: Uint8Array): Uint8Array {
  const out = bytes.slice();
  for (let n = 1 + dice.int(3); n > 0; n--) out[dice.int(out.length)] = dice.int(256);
  return out;
}

/** A message with one field replaced by a value of the wrong type or range. */
function fieldCase(dice: Dice, event: string, valid: Record<string, unknown>, rules: Record<string, (v: unknown) => boolean>): Case {
  const field = dice.pick(Object.keys(rules));
  const value = invalidFor(dice, rules[field]!);
  return { category: `field ${field}`, event, args: [msgpack(value === undefined ? { ...valid, [field]: undefined } : { ...valid, [field]: value })] };
}

/** Tensor mutations every kind shares (dense): dtype, shape, data, uint8 parameters, NaN/±Inf. */
function denseTensorCase(dice: Dice, t: Record<string, unknown>, values: Float32Array): { category: string; tensor: Record<string, unknown> } {
  const data = t.data as Uint8Array;
  const shape = t.shape as number[];
  switch (dice.int(8)) {
    case 0:
      return { category: 'dtype', tensor: { ...t, dtype: dice.pick<unknown>(['float64', 'int32', 'bfloat16', 'FLOAT32', '', 7, null, ['float32'], t.dtype === 'float32' ? 'float16' : 'float32']) } };
    case 1: {
      const wrong = dice.pick<unknown>([
        [...shape, 1], shape.slice(1), [shape[0]! + 1, ...shape.slice(1)], [...shape.slice(0, -1), shape.at(-1)! + 1], [], [-shape[0]!, ...shape.slice(1)],
        [shape[0]! + 0.5, ...shape.slice(1)], [2 ** 31, 2 ** 31], new Array<number>(9).fill(1), [String(shape[0]), ...shape.slice(1)], 'R,C', { 0: shape[0] },
        [shape.reduce((a, b) => a * b, 1)], [Number.NaN, ...shape.slice(1)], [-0, ...shape.slice(1)],
      ]);
      return { category: 'shape', tensor: { ...t, shape: wrong } };
    }
    case 2: {
      const wrong = dice.pick<unknown>([
        data.subarray(0, Math.max(0, data.length - 1 - dice.int(8))), concat([data, dice.bytes(1 + dice.int(8))]), new Uint8Array(0), 'bytes',
        Array.from(data.subarray(0, 16)), null, 7,
      ]);
      return { category: 'data length or type', tensor: { ...t, data: wrong } };
    }
    case 3: {
      const v = values.slice();
      for (let n = 1 + dice.int(3); n > 0; n--) v[dice.int(v.length)] = dice.pick([Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]);
      return { category: 'NaN and ±Inf', tensor: { dtype: 'float32', shape, data: new Uint8Array(v.buffer) } };
    }
    case 4: {
      // float16 bits of ±Inf or NaN.
      const packed = packTensor(values, shape, 'float16');
      const bits = dice.pick([0x7c00, 0xfc00, 0x7e00, 0xffff]);
      const i = dice.int(values.length);
      packed.data[2 * i] = bits & 0xff;
      packed.data[2 * i + 1] = bits >> 8;
      return { category: 'float16 NaN and ±Inf', tensor: { ...packed } };
    }
    case 5: {
      const packed = packTensor(values, shape, 'uint8');
      const wrong = dice.pick<Record<string, unknown>>([
        { min: undefined }, { scale: undefined }, { min: Number.NaN }, { scale: -0.01 }, { scale: Number.POSITIVE_INFINITY }, { min: 3e38, scale: 1e37 },
        { min: '0' }, { min: -1e30, scale: 1e28 },
      ]);
      return { category: 'uint8 min and scale', tensor: { ...packed, ...wrong } };
    }
    case 6:
      return { category: 'tensor field of the wrong type', tensor: { ...t, [dice.pick(['dtype', 'shape', 'data'])]: dice.pick(wrongTypes(dice).filter((v) => !(v instanceof Uint8Array))) } };
    default:
      return { category: 'tensor not a map', tensor: dice.pick<unknown>([null, [], 'tensor', 1, data]) as Record<string, unknown> };
  }
}

/** Probability mutations: off the simplex in every way a float32 row can be. */
function offSimplex(dice: Dice, values: Float32Array, width: number): { category: string; values: Float32Array } {
  const v = values.slice();
  const row = dice.int(v.length / width);
  switch (dice.int(5)) {
    case 0:
      v[row * width + dice.int(width)] = -0.2 - dice.random.next();
      return { category: 'negative probability', values: v };
    case 1:
      for (let k = 0; k < width; k++) v[row * width + k]! *= 1.5;
      return { category: 'row sums past 1', values: v };
    case 2:
      for (let i = 0; i < v.length; i++) v[i] = 10 * v[i]! - 3;
      return { category: 'logits, not probabilities', values: v };
    case 3:
      v.fill(0);
      return { category: 'all zero', values: v };
    default:
      v[row * width + dice.int(width)] = 1.5;
      return { category: 'probability above 1', values: v };
  }
}

// ---- the sessions -------------------------------------------------------------------------------

const base = (id: string, participants: string[], overrides: Partial<SessionConfig>): SessionConfig => ({
  id, algorithm: 'dml', rounds: 10_000, minParticipants: 2, numClasses: 10, referenceSize: 20, referencePerRound: 20, temperature: 2, alpha: 0.5,
  uploadDtype: 'float32', roundTimeoutMs: ROUND_MS, trainTimeoutMs: 10_000, onRoundFailure: 'continue', seed: 11, maxMessageBytes: MAX_BYTES,
  participants: participants.map((p) => ({ id: p, token: `${id}-${p}` })), ...overrides,
});

const TOKENIZER: TokenizerIdentity = { kind: 'fuzz', encoding: 'none', vocabSize: 8, bos: 0 };
const POSITIONS = 4;
const HKD = { classes: 4, representation: 3 };

/** One session of the storm: its config, its honest participants and the hostile member's cases. */
interface Arena {
  config: SessionConfig;
  honest: Honest[];
  hostile: Hostile;
  session?: Session;
  records: RoundRecord[];
  /** Cases for the hostile member now, by event. */
  cases: (dice: Dice) => Iterable<Case>;
  /** Checks one completed round against the honest uploads; returns the values compared. */
  check: (record: RoundRecord) => number;
}

function uploadRules(kindValid: string): Record<string, (v: unknown) => boolean> {
  return {
    round: () => false, participant: () => false, kind: (v) => v === kindValid, values: () => false,
    sampleCount: (v) => v === undefined || isCount(v),
  };
}

describe('fuzzing protocol 2 against a real coordinator', () => {
  let coordinator: Coordinator | undefined;
  const sockets: Socket[] = [];
  const closers: Array<() => Promise<void>> = [];
  afterAll(async () => {
    for (const s of sockets) s.close();
    await coordinator?.close();
    for (const close of closers) await close();
  });

  it('answers every mutated message with an error code and leaves every honest aggregate as the honest uploads make it', { timeout: 180_000 }, async () => {
    const log: string[] = [];
    coordinator = await Coordinator.start({ maxMessageBytes: MAX_BYTES, rateLimit: 'off', log: (line) => log.push(line) });
    const url = coordinator.url;
    const dice = (n: number) => new Dice(SEED + n);

    // ── top-k uploads, with sampling: 3 of a, b, c, h each round ──
    const sparse: Arena = {
      config: base('sparse', ['a', 'b', 'c', 'h'], { uploadTopK: 3, sampling: { count: 3 }, minToStart: 4 }),
      honest: [],
      hostile: new Hostile(url, 'h', 'sparse'),
      records: [],
      cases: function* (d) {
        for (let i = 0; i < CASES; i++) {
          // The round the member is in as the case is made: its messages meet the round collecting.
          const round = sparse.hostile.latestRound;
          const values = simplex(d, 20, 10, 2);
          const topK = packTopK(values, [20, 10], 3, d.pick<WireDtype>(['float32', 'float16', 'uint8']));
          const valid = { v: PROTOCOL_VERSION, session: 'sparse', round, participant: 'h', kind: 'reference-predictions', values: { ...topK } };
          const broken = { ...valid, values: { ...topK, k: 11 } };
          const r = d.int(10);
          if (r < 2) yield envelopeCase(d, 'upload', valid, broken);
          else if (r < 3) yield fieldCase(d, 'upload', valid, uploadRules('reference-predictions'));
          else {
            const { category, tensor } = topKCase(d, topK, values);
            yield { category, event: 'upload', args: [msgpack({ ...valid, values: tensor })] };
          }
        }
        // Events out of turn and of the wrong mode: a push, a pull, secure steps, a report before any target.
        yield* outOfTurn(d, 'sparse', sparse.hostile.latestRound);
      },
      check: (record) => checkLeaveOneOut(sparse, record, 10),
    };
    sparse.honest = ['a', 'b', 'c'].map((id, i) => new Honest(url, id, 'sparse', (round) => {
      const values = simplex(new Dice(SEED + 100 * round.round + i), round.referenceIds.length, 10, 2);
      const topK = packTopK(values, [round.referenceIds.length, 10], 3, (['float32', 'float16', 'uint8'] as const)[i]!);
      return { fields: { kind: 'reference-predictions', values: topK }, decoded: expandTopK(decodeTopKRows(topK)) };
    }));

    // ── per-token knowledge [rows, positions, vocab]; s joins and never sends anything ──
    const tokens: Arena = {
      config: base('tokens', ['a', 'b', 's', 'h'], { numClasses: TOKENIZER.vocabSize, referenceSize: 6, referencePerRound: 6, tokenizer: TOKENIZER, positions: POSITIONS, minToStart: 4 }),
      honest: [],
      hostile: new Hostile(url, 'h', 'tokens'),
      records: [],
      cases: function* (d) {
        const shape = [6, POSITIONS, TOKENIZER.vocabSize];
        for (let i = 0; i < CASES; i++) {
          const round = tokens.hostile.latestRound;
          const values = simplex(d, 6 * POSITIONS, TOKENIZER.vocabSize);
          const dense = packTensor(values, shape, 'float32');
          const valid = { v: PROTOCOL_VERSION, session: 'tokens', round, participant: 'h', kind: 'reference-token-predictions', values: { ...dense } };
          const broken = { ...valid, values: { ...dense, shape: [6, POSITIONS + 1, TOKENIZER.vocabSize] } };
          const r = d.int(12);
          if (r < 2) yield envelopeCase(d, 'upload', valid, broken);
          else if (r < 3) yield fieldCase(d, 'upload', valid, uploadRules('reference-token-predictions'));
          else if (r < 6) {
            const { category, tensor } = denseTensorCase(d, dense as unknown as Record<string, unknown>, values);
            yield { category, event: 'upload', args: [msgpack({ ...valid, values: tensor })] };
          } else if (r < 8) {
            const off = offSimplex(d, values, TOKENIZER.vocabSize);
            yield { category: `per token: ${off.category}`, event: 'upload', args: [msgpack({ ...valid, values: packTensor(off.values, shape, 'float32') })] };
          } else if (r < 10) {
            // Shapes that hold the same number of values but are not [rows, positions, vocab].
            const wrong = d.pick([[6 * POSITIONS, TOKENIZER.vocabSize], [6, TOKENIZER.vocabSize, POSITIONS], [POSITIONS, 6, TOKENIZER.vocabSize], [6, POSITIONS * TOKENIZER.vocabSize], [1, 6, POSITIONS, TOKENIZER.vocabSize]]);
            yield { category: 'per token: reshaped', event: 'upload', args: [msgpack({ ...valid, values: { ...dense, shape: wrong } })] };
          } else {
            const { category, tensor } = topKCase(d, packTopK(values, shape, 2, 'float32'), values);
            yield { category: `per token top-k: ${category}`, event: 'upload', args: [msgpack({ ...valid, values: tensor })] };
          }
        }
        // Joins: a second valid one (a rejoin), and tokenizers that are not the session's.
        for (let i = 0; i < 40; i++) {
          const tokenizer = d.pick<unknown>([
            TOKENIZER, { ...TOKENIZER, vocabSize: 9 }, { ...TOKENIZER, bos: 1 }, { ...TOKENIZER, kind: 'bytes' }, { ...TOKENIZER, vocabSize: 1 },
            { ...TOKENIZER, vocabSize: 2 ** 40 }, { ...TOKENIZER, vocabSize: Number.NaN }, undefined, null, 'fuzz', { ...TOKENIZER, kind: 'k'.repeat(65) },
          ]);
          yield ({ category: 'tokenizer', event: 'join', args: [msgpack({ v: PROTOCOL_VERSION, session: 'tokens', role: 'participant', tokenizer })], mayAccept: tokenizer === TOKENIZER });
        }
        yield* outOfTurn(d, 'tokens', tokens.hostile.latestRound);
      },
      check: (record) => checkLeaveOneOut(tokens, record, TOKENIZER.vocabSize),
    };
    tokens.honest = ['a', 'b'].map((id, i) => new Honest(url, id, 'tokens', (round) => {
      const values = simplex(new Dice(SEED + 200 * round.round + i), round.referenceIds.length * POSITIONS, TOKENIZER.vocabSize);
      return { fields: { kind: 'reference-token-predictions', values: packTensor(values, [round.referenceIds.length, POSITIONS, TOKENIZER.vocabSize], 'float32') }, decoded: values };
    }, { tokenizer: TOKENIZER }));

    // ── class hyper-knowledge (FedHKD): [classes, representation + classes] with counts ──
    const width = HKD.representation + HKD.classes;
    const hkdUpload = (d: Dice, holds: (c: number) => boolean) => {
      const labelCounts = Array.from({ length: HKD.classes }, (_, c) => (holds(c) ? 1 + d.int(20) : 0));
      const soft = simplex(d, HKD.classes, HKD.classes);
      const values = new Float32Array(HKD.classes * width);
      for (let c = 0; c < HKD.classes; c++) {
        if (labelCounts[c] === 0) continue;
        for (let j = 0; j < HKD.representation; j++) values[c * width + j] = (d.random.next() - 0.5) * 6;
        values.set(soft.subarray(c * HKD.classes, (c + 1) * HKD.classes), c * width + HKD.representation);
      }
      return { values, labelCounts, sampleCount: labelCounts.reduce((a, b) => a + b, 0) };
    };
    const hkd: Arena = {
      config: base('hkd', ['a', 'b', 'h'], { algorithm: 'fedhkd', numClasses: HKD.classes, referenceSize: 0, referencePerRound: 0, minToStart: 3 }),
      honest: [],
      hostile: new Hostile(url, 'h', 'hkd'),
      records: [],
      cases: function* (d) {
        for (let i = 0; i < CASES; i++) {
          const round = hkd.hostile.latestRound;
          const u = hkdUpload(d, (c) => c !== 2);
          const dense = packTensor(u.values, [HKD.classes, width], 'float32');
          const valid = { v: PROTOCOL_VERSION, session: 'hkd', round, participant: 'h', kind: 'class-hyper-knowledge', values: { ...dense }, labelCounts: u.labelCounts, sampleCount: u.sampleCount };
          const broken = { ...valid, sampleCount: u.sampleCount + 1 };
          const r = d.int(10);
          if (r < 2) yield envelopeCase(d, 'upload', valid, broken);
          else if (r < 3) {
            yield fieldCase(d, 'upload', valid, { ...uploadRules('class-hyper-knowledge'), sampleCount: () => false, labelCounts: () => false });
          } else if (r < 5) {
            const { category, tensor } = denseTensorCase(d, dense as unknown as Record<string, unknown>, u.values);
            yield { category, event: 'upload', args: [msgpack({ ...valid, values: tensor })] };
          } else {
            const { category, message } = classCase(d, valid, u.values, u.labelCounts);
            yield { category, event: 'upload', args: [msgpack(message)] };
          }
        }
        yield* outOfTurn(d, 'hkd', hkd.hostile.latestRound);
      },
      check: (record) => {
        const uploads = hkd.honest.map((p) => p.accepted.get(record.round));
        const contributing = uploads.filter((u): u is Upload => u !== undefined && record.contributors.includes(hkd.honest[uploads.indexOf(u)]!.id));
        expect(contributing.length, `hkd round ${record.round}: honest uploads`).toBe(record.contributors.length);
        const expected = classMeans(contributing.map((u) => ({ values: u.decoded, labelCounts: u.labelCounts! })), HKD.classes, width);
        let compared = 0;
        for (const p of hkd.honest) {
          const target = p.targets.get(record.round);
          if (target === undefined) continue;
          expect(target.counts, `${p.id}'s counts in round ${record.round}`).toEqual(expected.counts);
          expect(maxDifference(unpackTensor(target.target as never), expected.values), `${p.id}'s target in hkd round ${record.round}`).toBeLessThanOrEqual(1e-5);
          compared++;
        }
        return compared;
      },
    };
    hkd.honest = ['a', 'b'].map((id, i) => new Honest(url, id, 'hkd', (round) => {
      const u = hkdUpload(new Dice(SEED + 300 * round.round + i), (c) => (c + i) % 3 !== 0);
      return { fields: { kind: 'class-hyper-knowledge', values: packTensor(u.values, [HKD.classes, width], 'float32'), labelCounts: u.labelCounts, sampleCount: u.sampleCount }, decoded: u.values, labelCounts: u.labelCounts };
    }));

    const arenas = [sparse, tokens, hkd];
    for (const arena of arenas) {
      arena.session = coordinator.createSession(arena.config);
      arena.session.on('round', (r: RoundRecord) => arena.records.push(r));
      sockets.push(arena.hostile.socket, ...arena.honest.map((p) => p.socket));
    }
    // The silent member of the token session: joined, then nothing at all.
    const silent = connect(url, 'tokens-s');
    sockets.push(silent);
    await connected(silent);
    expect(replyCode(await emitWithAck(silent, 'join', [encodeMessage(clientMessages.join, { v: PROTOCOL_VERSION, session: 'tokens', role: 'participant', tokenizer: TOKENIZER })]))).toBe('ok');

    await Promise.all(arenas.map((a) => a.hostile.join(a === tokens ? { tokenizer: TOKENIZER } : {})));
    await Promise.all(arenas.flatMap((a) => a.honest.map((p) => p.join())));
    // FedHKD's row width is fixed by the session's first upload: the honest ones go first.
    await until(() => hkd.honest.every((p) => p.accepted.has(1)), 'the honest FedHKD uploads of round 1');
    gc();
    const heapBefore = process.memoryUsage().heapUsed;

    const started = Date.now();
    // Several waves, so that the storm meets rounds at every phase.
    for (let wave = 0; wave < 3; wave++) {
      await Promise.all(arenas.map((a, i) => a.hostile.storm(a.cases(dice(1_000 * wave + i)))));
      console.log(`wave ${wave}: ${arenas.map((a) => `${a.config.id} ${a.hostile.sent} sent, ${a.records.length} rounds`).join('; ')} (${Date.now() - started} ms)`);
      await new Promise((r) => setTimeout(r, ROUND_MS / 3));
    }
    const stormMs = Date.now() - started;
    const stormEnd = Date.now();

    // ---- figures ----
    const lines = [`fuzz-protocol2: ${arenas.reduce((n, a) => n + a.hostile.sent, 0)} hostile messages in ${stormMs} ms; `];
    for (const a of arenas) {
      lines.push(`${a.config.id}: ${a.hostile.sent} messages; ${a.records.length} rounds (${a.records.filter((r) => r.failure !== undefined).length} failed; first failures: ${a.records.filter((r) => r.failure !== undefined).slice(0, 2).map((r) => r.failure!.message).join(' | ')})`);
      for (const [category, row] of [...a.hostile.byCategory].sort()) lines.push(`  ${category.padEnd(52)} ${[...row].map(([c, n]) => `${c} ${n}`).join(', ')}`);
      for (const p of a.honest) lines.push(`  honest ${p.id}: ${[...p.codes].map(([k, n]) => `${k} ×${n}`).join('; ')}`);
    }
    console.log(lines.join('\n'));

    // A round opened after the storm completes in each session, with the honest participants.
    await Promise.all(arenas.map((a) => until(() => a.records.some((r) => r.openedAt >= stormEnd && r.failure === undefined), `a round of ${a.config.id} after the storm`, 20_000)));
    gc();
    const heapAfter = process.memoryUsage().heapUsed;
    console.log(`heap ${(heapBefore / 2 ** 20).toFixed(1)} → ${(heapAfter / 2 ** 20).toFixed(1)} MiB`);

    // ---- every hostile message refused with a code, nothing internal ----
    expect(arenas.flatMap((a) => a.hostile.wrong)).toEqual([]);
    expect(log.filter((line) => /internal error/i.test(line))).toEqual([]);
    expect(arenas.map((a) => a.hostile.socket.connected)).toEqual(arenas.map(() => true));

    // ---- every round: honest contributors only, honest targets as the honest uploads make them ----
    let compared = 0;
    for (const a of arenas) {
      const honestIds = new Set(a.honest.map((p) => p.id));
      expect(a.records.length, `${a.config.id} rounds`).toBeGreaterThanOrEqual(3);
      for (const record of a.records) {
        expect(record.contributors.filter((p) => !honestIds.has(p)), `${a.config.id} round ${record.round} contributors`).toEqual([]);
        expect(Object.keys(record.reports).filter((p) => !honestIds.has(p)), `${a.config.id} round ${record.round} reports`).toEqual([]);
        if (record.failure !== undefined) {
          // Only for want of a quorum (the honest uploads late under the storm), never for what the hostile member sent.
          expect(record.failure.code, `${a.config.id} round ${record.round}: ${record.failure.message}`).toBe(ErrorCode.RoundClosed);
          continue;
        }
        compared += a.check(record);
      }
      for (const p of a.honest) for (const round of p.targets.keys()) expect(a.records.some((r) => r.round === round && r.failure === undefined), `${p.id}'s target of ${a.config.id} round ${round}`).toBe(true);
    }
    expect(compared).toBeGreaterThan(10);
    // Sampling: the hostile member sat some rounds out, and then every upload of its was refused as not sampled.
    expect(sparse.records.some((r) => r.sampled !== undefined && !r.sampled.includes('h'))).toBe(true);
    // The storm keeps nothing: the heap after it is within a bound of the heap before (the envelopes were megabytes in all).
    expect(heapAfter - heapBefore).toBeLessThan(48 * 2 ** 20);
  });

  it('secure aggregation: keys, shares, masked uploads and reveals malformed or out of turn leave every sum as the honest members make it', { timeout: 120_000 }, async () => {
    const log: string[] = [];
    const secureCoordinator = await Coordinator.start({ maxMessageBytes: MAX_BYTES, rateLimit: 'off', log: (line) => log.push(line) });
    closers.push(() => secureCoordinator.close());
    const config = base('secure', ['a', 'b', 'c', 'h'], { minParticipants: 3, minToStart: 4, secureAggregation: { threshold: 3 }, trainTimeoutMs: 300 });
    // SecureRawParticipant's tokens are secret-<id>.
    config.participants = [...['a', 'b', 'c'].map((id) => ({ id, token: `secret-${id}` })), { id: 'h', token: 'secure-h' }];
    const session = secureCoordinator.createSession(config);
    const records: RoundRecord[] = [];
    session.on('round', (r: RoundRecord) => records.push(r));
    const knowledge = (i: number) => (round: number) => ({ values: simplex(new Dice(SEED + 400 * round + i), 20, 10) });
    const honest = ['a', 'b', 'c'].map((id, i) => new SecureRawParticipant(secureCoordinator.url, id, knowledge(i), { report: false }));
    const hostile = new Hostile(secureCoordinator.url, 'h', 'secure');
    sockets.push(hostile.socket, ...honest.map((p) => p.socket as unknown as Socket));
    const d = new Dice(SEED + 5);
    let info: SessionInfo | undefined;
    let own: SecureParticipant | undefined;
    const mode = (round: number) => round % 3; // 0: no keys; 1: keys, no shares; 2: keys and shares, no upload
    const send = async (event: string, message: Record<string, unknown>, round: number) => {
      const c: Case = { category: 'a valid step', event, args: [encodeMessage(clientMessages[event as 'secure-keys'], { v: PROTOCOL_VERSION, session: 'secure', round, participant: 'h', ...message } as never)], mayAccept: true };
      hostile.sent++;
      hostile.file(c, replyCode(await emitWithAck(hostile.socket, c.event, c.args)));
    };
    let chain: Promise<unknown> = Promise.resolve();
    const on = (event: string, handle: (bytes: unknown) => Promise<void>) =>
      hostile.socket.on(event, (bytes: unknown) => (chain = chain.then(() => handle(bytes)).catch((error: unknown) => hostile.wrong.push(`${event}: ${String(error)}`))));
    on('round', async (bytes) => {
      const round = decodeMessage(serverMessages.round, bytes);
      await hostile.storm(secureCases(d, 'keys', round.round, ['a', 'b', 'c', 'h']));
      if (mode(round.round) === 0) return;
      own = new SecureParticipant('h', info!, (event, message, r) => send(event, message as Record<string, unknown>, r));
      await own.begin(round, { values: simplex(d, round.referenceIds.length, 10), shape: [] });
    });
    on('secure-roster', async (bytes) => {
      const roster = decodeMessage(serverMessages['secure-roster'], bytes);
      await hostile.storm(secureCases(d, 'shares', roster.round, roster.members.map((m) => m.participant)));
      if (mode(roster.round) === 2) await own!.roster(roster);
    });
    on('secure-routed', async (bytes) => {
      const routed = decodeMessage(serverMessages['secure-routed'], bytes);
      // h is a sender that never uploads: the survivors reveal its mask-key shares, and the coordinator removes its pairwise masks.
      await hostile.storm(secureCases(d, 'upload', routed.round, routed.senders));
    });
    await Promise.all(honest.map((p) => p.join('secure')));
    await connected(hostile.socket);
    const joined = await emitWithAck(hostile.socket, 'join', [encodeMessage(clientMessages.join, { v: PROTOCOL_VERSION, session: 'secure', role: 'participant' })]);
    expect(replyCode(joined)).toBe('ok');
    info = readReply(replyMessages.joined, (joined as unknown[])[0]).info;
    await until(() => records.length >= 9, 'nine secure rounds', 90_000);
    await chain;

    const lines = [`secure: ${hostile.sent} messages; ${records.length} rounds (${records.filter((r) => r.failure !== undefined).length} failed)`];
    for (const [category, row] of [...hostile.byCategory].sort()) lines.push(`  ${category.padEnd(60)} ${[...row].map(([c, n]) => `${c} ${n}`).join(', ')}`);
    console.log(lines.join('\n'));
    expect(hostile.wrong).toEqual([]);
    expect(log.filter((line) => /internal error/i.test(line))).toEqual([]);
    // No honest member was broken by what the hostile one announced (a key of small order, before it was refused, broke every other member's agreement).
    expect(honest.flatMap((p) => p.errors.map(String))).toEqual([]);
    let compared = 0;
    for (const record of records) {
      if (record.failure !== undefined) {
        expect(record.failure.code, record.failure.message).toBe(ErrorCode.RoundClosed);
        continue;
      }
      expect(record.contributors, `secure round ${record.round} contributors`).toEqual(['a', 'b', 'c']);
      const uploads = [0, 1, 2].map((i) => knowledge(i)(record.round).values);
      honest.forEach((p, i) => {
        const at = p.sums.findIndex((sum) => sum.round === record.round);
        expect(at, `${p.id}'s sum of round ${record.round}`).toBeGreaterThanOrEqual(0);
        const target = p.secureTargets[at]!;
        // Fixed point: each value within n·2^−25 of the float sum, then divided by n − 1.
        expect(maxDifference(target.values, leaveOneOut(uploads, i)), `${p.id}'s target in secure round ${record.round}`).toBeLessThanOrEqual(1e-6);
        compared++;
      });
    }
    expect(compared).toBeGreaterThanOrEqual(9);
    // Every kind of step was met: h sat out the keys, sent keys but no shares, and sent shares but no upload.
    expect([0, 1, 2].every((m) => records.some((r) => r.failure === undefined && mode(r.round) === m))).toBe(true);
  });

  it('co-distillation: malformed pushes and pulls change no one\'s ensemble, and a checkpoint reported ahead does not end the session', { timeout: 60_000 }, async () => {
    const log: string[] = [];
    const asyncCoordinator = await Coordinator.start({ maxMessageBytes: MAX_BYTES, rateLimit: 'off', log: (line) => log.push(line) });
    closers.push(() => asyncCoordinator.close());
    const settings = { shards: 4, exchangeEvery: 1, burnInSteps: 0, stalenessMs: 600_000 };
    const session = asyncCoordinator.createSession(base('async', ['a', 'b', 'h'], { algorithm: 'codistillation', rounds: 5, minToStart: 3, trainTimeoutMs: 1_500, async: settings }));
    const rows = (shard: number) => shardIds(20, settings.shards, shard).length;
    const pushed = new Map<string, Float32Array>();
    const honest = ['a', 'b'].map((id) => connect(asyncCoordinator.url, `async-${id}`));
    const hostile = new Hostile(asyncCoordinator.url, 'h', 'async');
    sockets.push(hostile.socket, ...honest);
    await Promise.all(honest.map(connected));
    await hostile.join();
    const started = new Promise<void>((resolve) => honest[1]!.once('round', () => resolve()));
    for (const socket of honest) {
      expect(replyCode(await emitWithAck(socket, 'join', [encodeMessage(clientMessages.join, { v: PROTOCOL_VERSION, session: 'async', role: 'participant' })]))).toBe('ok');
    }
    await started;
    for (const [i, socket] of honest.entries()) {
      for (let shard = 0; shard < settings.shards; shard++) {
        const values = simplex(new Dice(SEED + 500 + 10 * i + shard), rows(shard), 10);
        pushed.set(`${i}/${shard}`, values);
        const envelope = encodeMessage(clientMessages.push, { v: PROTOCOL_VERSION, session: 'async', participant: ['a', 'b'][i]!, shard, step: 10, values: packTensor(values, [rows(shard), 10], 'float32') });
        expect(replyCode(await emitWithAck(socket, 'push', [envelope]))).toBe('ok');
      }
    }
    const d = new Dice(SEED + 6);
    const startedAt = Date.now();
    await hostile.storm(asyncCases(d, rows));
    const stormMs = Date.now() - startedAt;
    const lines = [`async: ${hostile.sent} messages in ${stormMs} ms`];
    for (const [category, row] of [...hostile.byCategory].sort()) lines.push(`  ${category.padEnd(60)} ${[...row].map(([c, n]) => `${c} ${n}`).join(', ')}`);
    console.log(lines.join('\n'));
    expect(hostile.wrong).toEqual([]);
    expect(log.filter((line) => /internal error/i.test(line))).toEqual([]);
    // Each honest participant's ensemble on every shard is the other's push alone, exactly.
    for (const [i, socket] of honest.entries()) {
      for (let shard = 0; shard < settings.shards; shard++) {
        const reply = await emitWithAck(socket, 'pull', [encodeMessage(clientMessages.pull, { v: PROTOCOL_VERSION, session: 'async', participant: ['a', 'b'][i]!, shard })]);
        const ensemble = readReply(replyMessages.ensemble, (reply as unknown[])[0]);
        expect(ensemble.contributors, `${['a', 'b'][i]}'s ensemble on shard ${shard}`).toBe(1);
        expect(maxDifference(unpackTensor(ensemble.target!), pushed.get(`${1 - i}/${shard}`)!)).toBe(0);
      }
    }
    // h reported checkpoint 5 (the last) during the storm: past the training deadline the session must still be running for a and b.
    await new Promise((r) => setTimeout(r, 2_000));
    expect(session.ended, 'a checkpoint reported ahead by one participant ended the session').toBe(false);
  });

  it('a packet past socket.io\'s limit closes that connection only; connections that never join or never authenticate hold up no round', { timeout: 60_000 }, async () => {
    const log: string[] = [];
    const limits = await Coordinator.start({ maxMessageBytes: 64 * 1024, rateLimit: 'off', admission: { unauthenticatedTimeoutMs: 1_000 }, log: (line) => log.push(line) });
    closers.push(() => limits.close());
    const idle = Array.from({ length: 40 }, (_, i) => `idle${i}`);
    const session = limits.createSession(base('limits', ['a', 'b', 'big', ...idle], { minParticipants: 2, minToStart: 3, roundTimeoutMs: 600, maxMessageBytes: 64 * 1024 }));
    const records: RoundRecord[] = [];
    session.on('round', (r: RoundRecord) => records.push(r));
    // 40 participants that authenticate and never join; 20 connections that never authenticate.
    const idlers = idle.map((id) => connect(limits.url, `limits-${id}`));
    sockets.push(...idlers);
    await Promise.all(idlers.map(connected));
    const strangers = Array.from({ length: 20 }, () => new Manager(limits.url, { transports: ['websocket'], reconnection: false }));
    let strangersClosed = 0;
    for (const m of strangers) {
      m.on('close', () => strangersClosed++);
      m.open();
    }
    const honest = ['a', 'b'].map((id, i) => new Honest(limits.url, id, 'limits', (round) => {
      const values = simplex(new Dice(SEED + 600 * round.round + i), round.referenceIds.length, 10);
      return { fields: { kind: 'reference-predictions', values: packTensor(values, [round.referenceIds.length, 10], 'float32') }, decoded: values };
    }));
    const big = connect(limits.url, 'limits-big');
    sockets.push(big, ...honest.map((p) => p.socket));
    await connected(big);
    expect(replyCode(await emitWithAck(big, 'join', [encodeMessage(clientMessages.join, { v: PROTOCOL_VERSION, session: 'limits', role: 'participant' })]))).toBe('ok');
    await Promise.all(honest.map((p) => p.join()));
    await until(() => records.length >= 1, 'a first round');
    // Past maxHttpBufferSize (the session limit plus socket.io's 64 KiB of headroom): socket.io closes the connection, with no answer.
    const closed = new Promise<string>((resolve) => big.once('disconnect', (reason) => resolve(reason)));
    const answer = emitWithAck(big, 'upload', [new Uint8Array(64 * 1024 + 64 * 1024 + 1_024)], 3_000);
    expect(await closed).toMatch(/transport (close|error)/);
    expect(await answer).toBe('NO ANSWER');
    const after = records.length;
    await until(() => records.length >= after + 3, 'three rounds after the packet', 20_000);
    await until(() => strangersClosed === strangers.length, 'the unauthenticated connections to be closed', 10_000);
    for (const record of records.slice(after)) {
      expect(record.failure, `round ${record.round}`).toBeUndefined();
      expect(record.contributors).toEqual(['a', 'b']);
      honest.forEach((p, i) => expect(maxDifference(unpackTensor(p.targets.get(record.round)!.target as never), p === honest[0] ? honest[1]!.accepted.get(record.round)!.decoded : honest[0]!.accepted.get(record.round)!.decoded), `${p.id} ${i}`).toBe(0));
    }
    expect(idlers.every((s) => s.connected)).toBe(true);
    expect(log.filter((line) => /internal error/i.test(line))).toEqual([]);
  });

  it('a member that uploads class rows of its own width first does not fix the session\'s width: the first round takes the width most members upload', { timeout: 30_000 }, async () => {
    const first = await Coordinator.start({ maxMessageBytes: MAX_BYTES, rateLimit: 'off' });
    closers.push(() => first.close());
    const session = first.createSession(base('first', ['a', 'b', 'h'], { algorithm: 'fedhkd', numClasses: HKD.classes, referenceSize: 0, referencePerRound: 0, minToStart: 3, roundTimeoutMs: 5_000 }));
    const records: RoundRecord[] = [];
    session.on('round', (r: RoundRecord) => records.push(r));
    const width = HKD.representation + HKD.classes;
    const rowsOf = (seed: number, w: number) => {
      const d = new Dice(seed);
      const labelCounts = Array.from({ length: HKD.classes }, () => 1 + d.int(9));
      const values = new Float32Array(HKD.classes * w);
      for (let c = 0; c < HKD.classes; c++) {
        for (let j = 0; j < w - HKD.classes; j++) values[c * w + j] = d.random.next();
        values.set(simplex(d, 1, HKD.classes), c * w + w - HKD.classes);
      }
      return { values, labelCounts, sampleCount: labelCounts.reduce((x, y) => x + y, 0) };
    };
    const hostile = new Hostile(first.url, 'h', 'first');
    let hostileFirst!: () => void;
    const gate = new Promise<void>((resolve) => (hostileFirst = resolve));
    const honest = ['a', 'b'].map((id, i) => {
      const p = new Honest(first.url, id, 'first', (round) => {
        const u = rowsOf(SEED + 700 * round.round + i, width);
        return { fields: { kind: 'class-hyper-knowledge', values: packTensor(u.values, [HKD.classes, width], 'float32'), labelCounts: u.labelCounts, sampleCount: u.sampleCount }, decoded: u.values, labelCounts: u.labelCounts };
      });
      p.gate = gate;
      return p;
    });
    sockets.push(hostile.socket, ...honest.map((p) => p.socket));
    const codes: string[] = [];
    hostile.socket.on('round', (bytes: unknown) => {
      const round = decodeMessage(serverMessages.round, bytes).round;
      // Valid FedHKD rows of another width (a representation two values wider), before anyone else's.
      const u = rowsOf(SEED + 800 + round, width + 2);
      const envelope = encodeMessage(clientMessages.upload, { v: PROTOCOL_VERSION, session: 'first', round, participant: 'h', kind: 'class-hyper-knowledge', values: packTensor(u.values, [HKD.classes, width + 2], 'float32'), labelCounts: u.labelCounts, sampleCount: u.sampleCount });
      void emitWithAck(hostile.socket, 'upload', [envelope]).then((reply) => {
        codes.push(replyCode(reply));
        hostileFirst();
      });
    });
    await Promise.all(honest.map((p) => p.join()));
    await hostile.join();
    await until(() => records.length >= 2, 'two rounds');
    // Round 1 took h's upload (any width is valid before a round has fixed one) and then left it out; round 2 refused it.
    expect(codes.slice(0, 2)).toEqual(['ok', ErrorCode.Shape]);
    for (const record of records.slice(0, 2)) {
      expect(record.failure).toBeUndefined();
      expect(record.contributors).toEqual(['a', 'b']);
      const expected = classMeans(honest.map((p) => ({ values: p.accepted.get(record.round)!.decoded, labelCounts: p.accepted.get(record.round)!.labelCounts! })), HKD.classes, width);
      for (const p of honest) expect(maxDifference(unpackTensor(p.targets.get(record.round)!.target as never), expected.values)).toBeLessThanOrEqual(1e-5);
    }
  });
});

// ---- mutations of the new forms ---------------------------------------------------------------------

/** Top-k structure: k, indices out of range or repeated, byte counts, masses above 1, values off [0, 1]. */
function topKCase(d: Dice, topK: ReturnType<typeof packTopK>, dense: Float32Array): { category: string; tensor: Record<string, unknown> } {
  const t = { ...topK } as Record<string, unknown>;
  const [rows, width] = [topK.shape.slice(0, -1).reduce((a, b) => a * b, 1), topK.shape.at(-1)!];
  const k = topK.k;
  const indices = topK.indices.slice();
  switch (d.int(9)) {
    case 0:
      return { category: 'top-k: k', tensor: { ...t, k: d.pick<unknown>([0, -1, 1.5, width + 1, 65_537, 2 ** 31, Number.NaN, Number.POSITIVE_INFINITY, '3', null, [3]]) } };
    case 1: {
      // An index past the last axis (every byte value past it when indices are one byte each).
      indices[d.int(indices.length)] = width + d.int(256 - width);
      return { category: 'top-k: index out of range', tensor: { ...t, indices } };
    }
    case 2: {
      const r = d.int(rows);
      indices[r * k + 1] = indices[r * k]!;
      return { category: 'top-k: index repeated in a row', tensor: { ...t, indices } };
    }
    case 3:
      return { category: 'top-k: index bytes', tensor: { ...t, indices: d.pick<unknown>([indices.subarray(1), concat([indices, new Uint8Array(1)]), new Uint8Array(0), concat([indices, indices]), 'idx', [0, 1, 2], null]) } };
    case 4: {
      // Masses past 1: each row's k values scaled up (float32, so the bytes are exact).
      const values = new Float32Array(rows * k);
      for (let i = 0; i < values.length; i++) values[i] = d.pick([0.6, 0.9, 1, 0.45]);
      return { category: 'top-k: masses above 1', tensor: { ...t, dtype: 'float32', data: new Uint8Array(values.buffer), min: undefined, scale: undefined } };
    }
    case 5: {
      const values = new Float32Array(rows * k).fill(0.1);
      values[d.int(values.length)] = d.pick([-0.5, 1.5, Number.NaN, Number.POSITIVE_INFINITY, -0.01, 1.01]);
      return { category: 'top-k: a value off [0, 1] or not finite', tensor: { ...t, dtype: 'float32', data: new Uint8Array(values.buffer), min: undefined, scale: undefined } };
    }
    case 6:
      return { category: 'top-k: shape', tensor: { ...t, shape: d.pick<unknown>([[rows, width + 1], [rows + 1, width], [rows * width], [rows, 65_537], [rows, width, 1], [], [rows, 0], [-rows, width]]) } };
    case 7: {
      // k = the whole last axis: the row must then sum to 1 as a dense one does.
      const values = new Float32Array(rows * width).fill(0.5 / width);
      const all = new Uint8Array(rows * width);
      for (let r = 0; r < rows; r++) for (let j = 0; j < width; j++) all[r * width + j] = j;
      return { category: 'top-k: k = width, rows short of 1', tensor: { ...t, k: width, dtype: 'float32', indices: all, data: new Uint8Array(values.buffer), min: undefined, scale: undefined } };
    }
    default: {
      // The k values of each row as a dense [rows, k] tensor, broken as any dense one is, then put back in the top-k form.
      const values = new Float32Array(rows * k);
      for (let r = 0; r < rows; r++) for (let i = 0; i < k; i++) values[r * k + i] = dense[r * width + topK.indices[r * k + i]!]!;
      const { category, tensor } = denseTensorCase(d, { dtype: topK.dtype, shape: [rows, k], data: topK.data, min: topK.min, scale: topK.scale }, values);
      if (tensor === null || typeof tensor !== 'object' || Array.isArray(tensor) || tensor instanceof Uint8Array) return { category: `top-k: ${category}`, tensor };
      // The dense shape back in place of [rows, k], unless the mutation was to the shape itself.
      const untouched = Array.isArray(tensor.shape) && tensor.shape.length === 2 && tensor.shape[0] === rows && tensor.shape[1] === k;
      return { category: `top-k: ${category}`, tensor: { ...tensor, shape: untouched ? topK.shape : tensor.shape, k, indices: topK.indices } };
    }
  }
}

/** Class-knowledge semantics: counts that disagree, rows for classes not held, unbounded or off-simplex values, widths that change. */
function classCase(d: Dice, valid: Record<string, unknown>, values: Float32Array, labelCounts: number[]): { category: string; message: Record<string, unknown> } {
  const width = HKD.representation + HKD.classes;
  const v = values.slice();
  const tensor = (x: Float32Array, shape = [HKD.classes, width]) => packTensor(x, shape, 'float32');
  const held = labelCounts.map((n, c) => (n > 0 ? c : -1)).filter((c) => c >= 0);
  const c = d.pick(held);
  switch (d.int(7)) {
    case 0:
      return { category: 'class: counts do not add up', message: { ...valid, sampleCount: (valid.sampleCount as number) + 1 + d.int(5) } };
    case 1:
      return { category: 'class: labelCounts length or type', message: { ...valid, labelCounts: d.pick<unknown>([labelCounts.slice(1), [...labelCounts, 0], [-1, ...labelCounts.slice(1)], labelCounts.map((n) => n + 0.5), new Array(100_001).fill(0), 'many', [null, 1, 2, 3]]) } };
    case 2:
      v[2 * width + d.int(width)] = 0.25; // class 2 is not held
      return { category: 'class: a row for a class not held', message: { ...valid, values: tensor(v) } };
    case 3:
      v[c * width + d.int(HKD.representation)] = d.pick([1e4 + 1, -1e5, 3e38]);
      return { category: 'class: representation past its bound', message: { ...valid, values: tensor(v) } };
    case 4: {
      const off = offSimplex(d, v.subarray(c * width + HKD.representation, (c + 1) * width), HKD.classes);
      v.set(off.values, c * width + HKD.representation);
      return { category: `class: soft prediction ${off.category}`, message: { ...valid, values: tensor(v) } };
    }
    case 5: {
      // Another width than the session's (fixed by the first upload).
      // (A row of 65,537 values, past MAX_CLASS_ROW_WIDTH, would be a packet past socket.io's own limit: its shape says so, its data does not.)
      const w = d.pick([width - 1, width + 1, HKD.classes, 1_000]);
      const x = new Float32Array(HKD.classes * w);
      if (d.chance(0.2)) return { category: 'class: a width past the bound', message: { ...valid, values: { ...tensor(values), shape: [HKD.classes, 65_537] } } };
      return { category: 'class: another width', message: { ...valid, values: tensor(x, [HKD.classes, w]) } };
    }
    default:
      return { category: 'class: top-k form', message: { ...valid, values: packTopK(simplex(d, HKD.classes, width), [HKD.classes, width], 2, 'float32') } };
  }
}

/** Messages of the wrong mode or step: a push and a pull to a synchronous session, secure steps without secure aggregation, a report before any target. */
function outOfTurn(d: Dice, session: string, round: number): Case[] {
  const cases: Case[] = [];
  const header = { v: PROTOCOL_VERSION, session, participant: 'h' };
  for (let i = 0; i < 40; i++) {
    const which = d.int(8);
    if (which === 0) cases.push({ category: 'push to a synchronous session', event: 'push', args: [msgpack({ ...header, shard: 0, step: 1, values: packTensor(new Float32Array(10).fill(0.1), [1, 10], 'float32') })] });
    else if (which === 1) cases.push({ category: 'pull from a synchronous session', event: 'pull', args: [msgpack({ ...header, shard: d.pick([0, 1, 2 ** 31]) })] });
    else if (which === 2) cases.push({ category: 'secure keys without secure aggregation', event: 'secure-keys', args: [msgpack({ ...header, round, cipherKey: new Uint8Array(32), maskKey: new Uint8Array(32) })] });
    else if (which === 3) cases.push({ category: 'secure reveal without secure aggregation', event: 'secure-reveal', args: [msgpack({ ...header, round, maskKeyShares: [], seedShares: [] })] });
    else if (which === 4) cases.push({ category: 'report for a round far ahead', event: 'report', args: [msgpack({ ...header, round: round + 1_000, metrics: { accuracy: 0.5 } })] });
    else if (which === 5) cases.push({ category: 'upload for a round that ended', event: 'upload', args: [msgpack({ ...header, round: Math.max(1, round - 1 - d.int(3)), kind: 'reference-predictions', values: packTensor(new Float32Array(10).fill(0.1), [1, 10], 'float32') })] });
    else if (which === 6) cases.push({ category: 'unknown event', event: d.pick<string | number>(['round', 'target', 'secure-sum', 'closing', 'Upload', '__proto__', 'constructor', 'x'.repeat(500), 0]), args: [msgpack(header)] });
    else cases.push({ category: 'report metrics', event: 'report', args: [msgpack({ ...header, round, metrics: d.pick<unknown>([{ accuracy: 1.5 }, { accuracy: Number.NaN }, { loss: 'low' }, { trainSamples: -1 }, { privacy: { epsilon: 1, delta: 0, rho: 1, releases: 1 } }, null, []]) })] });
  }
  return cases;
}

/** The honest leave-one-out targets of one round (DML's mean), against what each honest participant received. */
function checkLeaveOneOut(arena: Arena, record: RoundRecord, classes: number): number {
  const contributors = arena.honest.filter((p) => record.contributors.includes(p.id));
  expect(contributors.length, `${arena.config.id} round ${record.round}: honest contributors`).toBe(record.contributors.length);
  const uploads = contributors.map((p) => p.accepted.get(record.round)?.decoded);
  expect(uploads.every((u) => u !== undefined), `${arena.config.id} round ${record.round}: every contributor's upload accepted`).toBe(true);
  let compared = 0;
  contributors.forEach((p, i) => {
    const target = p.targets.get(record.round);
    if (target === undefined) return;
    const expected = contributors.length < 2 ? null : leaveOneOut(uploads as Float32Array[], i);
    if (expected === null) return expect(target.target).toBeNull();
    const received = unpackTensor(target.target as never);
    expect(received.length % classes).toBe(0);
    expect(maxDifference(received, expected), `${p.id}'s target in ${arena.config.id} round ${record.round}`).toBeLessThanOrEqual(1e-6);
    compared++;
  });
  return compared;
}

async function until(condition: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A full garbage collection, for the heap figures: --expose-gc turned on for this process, then gc() fetched from a new context. */
function gc(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

/** Secure steps malformed or out of turn, for the step the round is at; `members` are the roster (or the round's members). */
function* secureCases(d: Dice, step: 'keys' | 'shares' | 'upload', round: number, members: string[]): Generator<Case> {
  const header = { v: PROTOCOL_VERSION, session: 'secure', round, participant: 'h' };
  const key = () => d.bytes(32);
  const smallOrder = () => {
    const k = d.pick([new Uint8Array(32), Uint8Array.from([1, ...new Array<number>(31).fill(0)]), Uint8Array.from([0xec, ...new Array<number>(30).fill(0xff), 0x7f]), Uint8Array.from([0xee, ...new Array<number>(30).fill(0xff), 0xff])]);
    return k;
  };
  const share = (to: string, ciphertext = 80, nonce = 12) => ({ to, nonce: d.bytes(nonce), ciphertext: d.bytes(ciphertext) });
  const others = members.filter((m) => m !== 'h');
  for (let i = 0; i < 24; i++) {
    const any = d.int(4);
    if (any === 0) {
      // Steps that are never this one's (for the upload step: keys and shares, too late).
      const late = d.pick<Case>([
        { category: 'a plain upload in a secure session', event: 'upload', args: [msgpack({ ...header, kind: 'reference-predictions', values: packTensor(simplex(d, 20, 10), [20, 10], 'float32') })] },
        { category: 'a reveal before the unmask request', event: 'secure-reveal', args: [msgpack({ ...header, maskKeyShares: [], seedShares: others.map((of) => ({ of, share: d.bytes(32) })) })] },
        { category: 'a step for another round', event: d.pick(['secure-keys', 'secure-shares', 'secure-upload', 'secure-reveal']), args: [msgpack({ ...header, round: round + 1 + d.int(5), cipherKey: key(), maskKey: key(), shares: [], masked: new Uint8Array(800), maskKeyShares: [], seedShares: [] })] },
        { category: 'a step for another member', event: d.pick(['secure-keys', 'secure-upload']), args: [msgpack({ ...header, participant: d.pick(['a', 'b', 'x']), cipherKey: key(), maskKey: key(), masked: new Uint8Array(800) })] },
      ]);
      yield late;
      continue;
    }
    switch (step) {
      case 'keys': {
        const variant = d.int(5);
        if (variant === 0) yield { category: 'keys of small order', event: 'secure-keys', args: [msgpack({ ...header, cipherKey: d.chance(0.5) ? smallOrder() : key(), maskKey: smallOrder() })] };
        else if (variant === 1) yield { category: 'keys of small order', event: 'secure-keys', args: [msgpack({ ...header, cipherKey: smallOrder(), maskKey: key() })] };
        else if (variant === 2) yield { category: 'keys of the wrong length', event: 'secure-keys', args: [msgpack({ ...header, cipherKey: d.bytes(d.pick([0, 31, 33, 64, 1025])), maskKey: key() })] };
        else if (variant === 3) yield { category: 'keys not binary', event: 'secure-keys', args: [msgpack({ ...header, cipherKey: d.pick<unknown>(['k'.repeat(32), Array.from(key()), null, 7]), maskKey: key() })] };
        else yield { category: 'shares or an upload before the roster', event: d.pick(['secure-shares', 'secure-upload']), args: [msgpack({ ...header, shares: others.map((to) => share(to)), masked: new Uint8Array(800) })] };
        break;
      }
      case 'shares': {
        const variant = d.int(7);
        if (variant === 0) yield { category: 'a share to itself', event: 'secure-shares', args: [msgpack({ ...header, shares: [...others.map((to) => share(to)), share('h')] })] };
        else if (variant === 1) yield { category: 'a share to a stranger', event: 'secure-shares', args: [msgpack({ ...header, shares: [...others.slice(1).map((to) => share(to)), share(d.pick(['x', 'coordinator', 'A']))] })] };
        else if (variant === 2) yield { category: 'two shares to one member', event: 'secure-shares', args: [msgpack({ ...header, shares: [...others.map((to) => share(to)), share(others[0] ?? 'a')] })] };
        else if (variant === 3) yield { category: 'a member left out', event: 'secure-shares', args: [msgpack({ ...header, shares: others.slice(1).map((to) => share(to)) })] };
        else if (variant === 4) yield { category: 'ciphertext or nonce of the wrong length', event: 'secure-shares', args: [msgpack({ ...header, shares: others.map((to, j) => (j === 0 ? share(to, d.pick([0, 79, 81, 1025]), d.pick([12, 11, 65])) : share(to))) })] };
        else if (variant === 5) yield { category: 'more shares than a round has members', event: 'secure-shares', args: [msgpack({ ...header, shares: Array.from({ length: 256 }, (_, j) => share(`m${j}`)) })] };
        else yield { category: 'keys again, after the roster', event: 'secure-keys', args: [msgpack({ ...header, cipherKey: key(), maskKey: key() })] };
        break;
      }
      case 'upload': {
        const variant = d.int(4);
        const words = 20 * 10;
        if (variant === 0) yield { category: 'a masked upload of the wrong length', event: 'secure-upload', args: [msgpack({ ...header, masked: d.bytes(4 * words + d.pick([-4, 4, -1, 1, -4 * words])) })] };
        else if (variant === 1) yield { category: 'a masked upload not binary', event: 'secure-upload', args: [msgpack({ ...header, masked: d.pick<unknown>([Array.from({ length: words }, () => 0), 'masked', null]) })] };
        else if (variant === 2) yield { category: 'a masked upload past the size limit', event: 'secure-upload', args: [msgpack({ ...header, masked: new Uint8Array(MAX_BYTES + 4) })] };
        else yield { category: 'shares again, after routing', event: 'secure-shares', args: [msgpack({ ...header, shares: others.map((to) => share(to)) })] };
        break;
      }
    }
  }
}

/** Pushes and pulls of co-distillation, malformed (a valid pull may be answered ok); one report of the last checkpoint, ahead of time. */
function* asyncCases(d: Dice, rows: (shard: number) => number): Generator<Case> {
  const header = { v: PROTOCOL_VERSION, session: 'async', participant: 'h' };
  yield { category: 'the last checkpoint reported ahead', event: 'report', args: [msgpack({ ...header, round: 5, metrics: { accuracy: 0.9 } })], mayAccept: true };
  for (let i = 0; i < CASES; i++) {
    const shard = d.int(4);
    const values = simplex(d, rows(shard), 10);
    const dense = packTensor(values, [rows(shard), 10], 'float32');
    const valid = { ...header, shard, step: 20, values: { ...dense } };
    const r = d.int(10);
    if (r < 2) yield envelopeCase(d, 'push', valid, { ...valid, shard: 4 });
    else if (r < 3) yield fieldCase(d, 'push', valid, { shard: (v) => isCount(v) && (v as number) < 4, step: isCount, values: () => false, participant: () => false });
    else if (r < 5) {
      const { category, tensor } = denseTensorCase(d, dense as unknown as Record<string, unknown>, values);
      yield { category, event: 'push', args: [msgpack({ ...valid, values: tensor })] };
    } else if (r < 6) {
      const off = offSimplex(d, values, 10);
      yield { category: `push: ${off.category}`, event: 'push', args: [msgpack({ ...valid, values: packTensor(off.values, [rows(shard), 10], 'float32') })] };
    } else if (r < 7) {
      // Another shard's rows, or a shard that does not exist.
      yield { category: 'push: rows of another shard, or no such shard', event: 'push', args: [msgpack({ ...valid, shard: d.pick([4, 5, 2 ** 31, -1, 1.5]), values: { ...dense, shape: d.chance(0.5) ? [rows(shard) + 1, 10] : [rows(shard), 10] } })] };
    } else if (r < 8) {
      const { category, tensor } = topKCase(d, packTopK(values, [rows(shard), 10], 3, 'float32'), values);
      yield { category: `push ${category}`, event: 'push', args: [msgpack({ ...valid, values: tensor })] };
    } else if (r < 9) {
      yield { category: 'pull: a shard that does not exist, or no shard', event: 'pull', args: [msgpack({ ...header, shard: d.pick<unknown>([4, 99, -1, 1.5, 2 ** 31, '0', null, undefined]) })] };
    } else {
      yield { category: 'pull of a shard (valid)', event: 'pull', args: [msgpack({ ...header, shard })], mayAccept: true };
    }
  }
}
