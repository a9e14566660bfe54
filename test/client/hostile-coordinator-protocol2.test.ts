/**
 * A real participant (client/participant.ts, a real tfjs student on MNIST) against a hostile
 * coordinator: a socket.io server started here that speaks the protocol's events but mutates one
 * message of a session per case — the join's answer, a round announcement (reference ids as
 * arrays and bitmaps), a target (dense and top-k; probabilities, per-class counts), the secure
 * aggregation steps (roster, routed shares, unmask request, sum), the end, a round failure, the
 * closing notice — or sends it out of turn, or not as binary. Cases come from a seeded generator
 * (the same cases every run).
 *
 * Asserted per case: the participant never throws anything unhandled; if its run stops, it stops
 * with a ProtocolError whose code says what was wrong (never E_INTERNAL, never a TypeError or a
 * WebCrypto error); a target that is not one an honest coordinator can send leaves the student's
 * weights exactly as they were; and a case that is valid by construction completes its session.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server, type Socket as ServerSocket } from 'socket.io';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../client/backend.js';
import { subset } from '../../client/data/dataset.js';
import { loadMnist, splitDataset } from '../../client/data/mnist.js';
import { createModel } from '../../client/models.js';
import { runParticipant } from '../../client/participant.js';
import { SecureParticipant } from '../../client/secure-round.js';
import { Student } from '../../client/student.js';
import {
  decodeEnvelope,
  encodeEnvelope,
  ErrorCode,
  encodeReferenceIds,
  packTensor,
  packTopK,
  PROTOCOL_VERSION,
  ProtocolError,
  type SessionInfo,
} from '../../protocol/index.js';
import { encodeKnowledge } from '../../protocol/secure/index.js';
import { concat, deepArray, Dice, msgpack, withKey, wrongTypes } from '../server/hostile-msgpack.js';

const SEED = 0x2c1_2002;
const CASES = Number(process.env.FUZZ_CASES ?? 160);
const C = 10;
const R = 20;
const ERROR_CODES: ReadonlySet<string> = new Set(Object.values(ErrorCode));

const split = splitDataset(loadMnist(), { test: 10, reference: R }, 3);
const train = subset(split.pool, Array.from({ length: 16 }, (_, i) => i));

const INFO: SessionInfo = {
  session: 'hostile', algorithm: 'dml', knowledge: 'reference-predictions', rounds: 1, numClasses: C, referenceSize: R,
  temperature: 3, alpha: 0.5, uploadDtype: 'float32', maxMessageBytes: 1 << 20,
};
const SECURE_INFO: SessionInfo = { ...INFO, secure: { threshold: 2, targets: 'all' } };

/** Rows on the simplex. */
function simplex(dice: Dice, rows: number, classes = C): Float32Array {
  const v = new Float32Array(rows * classes);
  for (let r = 0; r < rows; r++) {
    let sum = 0;
    for (let k = 0; k < classes; k++) sum += v[r * classes + k] = 0.02 + dice.random.next();
    for (let k = 0; k < classes; k++) v[r * classes + k]! /= sum;
  }
  return v;
}

const ALL_IDS = Array.from({ length: R }, (_, i) => i);
const env = (message: Record<string, unknown>) => encodeEnvelope({ v: PROTOCOL_VERSION, ...message });
const roundMessage = (extra: Record<string, unknown> = {}) => ({ v: PROTOCOL_VERSION, session: 'hostile', round: 1, knowledge: 'reference-predictions', referenceIds: encodeReferenceIds(ALL_IDS), temperature: 3, deadline: Date.now() + 60_000, ...extra });
const joinedMessage = (info: unknown = INFO) => ({ v: PROTOCOL_VERSION, ok: true, participant: 'p0', info, round: 0 });

/**
 * What the hostile coordinator does in one case. Each hook may emit anything; unset hooks act
 * as an honest coordinator would (answer ok, send the next message of the round). After the
 * report, or right after a hostile message that ends the script, a valid `end` follows.
 */
interface Script {
  category: string;
  event: string;
  info?: SessionInfo;
  /** The join's answer (bytes or anything at all). */
  joined?: unknown;
  /** The round announcement's arguments (sent alone, then the end). */
  round?: unknown[];
  /** Fields of the round announcement of a session that runs its whole round (another knowledge). */
  announce?: Record<string, unknown>;
  /** The run must stop with an error like this. */
  rejects?: RegExp;
  /** The target's arguments, given the upload. */
  target?: (upload: Record<string, unknown>) => unknown[];
  /** Secure steps: what to send instead of the honest roster, routed shares, unmask request or sum (the arguments of each emit). */
  secure?: Partial<Record<'roster' | 'routed' | 'unmask' | 'sum', (honest: Record<string, unknown>) => unknown[][]>>;
  /** Sent right after the join's answer, before anything else. */
  first?: Array<[string, unknown[]]>;
  /** The target is malformed: the student's weights must not change. */
  malformedTarget?: boolean;
  /** Valid by construction: the session must complete. */
  valid?: boolean;
  /** A line the participant must have logged (a refusal it survives). */
  logs?: RegExp;
}

/** The hostile coordinator: one socket.io server; each connection plays the script set for it. */
class HostileCoordinator {
  url = '';
  script: Script | undefined;
  private readonly http = createServer();
  private readonly io = new Server(this.http, { transports: ['websocket'], maxHttpBufferSize: 8 << 20 });

  async start(): Promise<void> {
    this.io.on('connection', (socket) => this.play(socket, this.script!));
    await new Promise<void>((resolve) => this.http.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.http.address() as AddressInfo).port}`;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.io.close(() => resolve()));
  }

  private play(socket: ServerSocket, script: Script): void {
    const info = script.info ?? INFO;
    const ok = env({ ok: true });
    const end = () => setTimeout(() => socket.emit('end', env({ session: 'hostile', reason: 'done', rounds: 1 })), 5);
    const emit = (event: string, args: unknown[]) => socket.emit(event, ...(args as [unknown]));
    // The secure side of a second member, q, so that rosters and routed shares are genuine.
    let q: SecureParticipant | undefined;
    const qSent: Record<string, Record<string, unknown>> = {};
    let roster: Record<string, unknown> | undefined;
    socket.on('join', (_bytes: unknown, ack: (reply: unknown) => void) => {
      ack(script.joined === undefined ? env(joinedMessage(info)) : script.joined);
      setTimeout(() => {
        for (const [event, args] of script.first ?? []) emit(event, args);
        emit('round', script.round ?? [encodeEnvelope(roundMessage(script.announce))]);
        if (script.joined !== undefined || script.first !== undefined || script.round !== undefined) end();
      }, 2);
    });
    socket.on('upload', (bytes: Uint8Array, ack: (reply: unknown) => void) => {
      ack(ok);
      const upload = decodeEnvelope(bytes);
      const target = script.target?.(upload) ?? [env({ session: 'hostile', round: 1, kind: 'reference-predictions', target: packTensor(simplex(new Dice(1), R), [R, C], 'float32'), contributors: 2 })];
      emit('target', target);
      if (script.target !== undefined) end();
    });
    socket.on('report', (_bytes: unknown, ack: (reply: unknown) => void) => {
      ack(ok);
      end();
    });
    const secureStep = (step: 'roster' | 'routed' | 'unmask' | 'sum', honest: Record<string, unknown>) => {
      const hostile = script.secure?.[step];
      for (const args of hostile === undefined ? [[env(honest)]] : hostile(honest)) emit(`secure-${step}`, args);
      if (hostile !== undefined) end();
    };
    socket.on('secure-keys', async (bytes: Uint8Array, ack: (reply: unknown) => void) => {
      ack(ok);
      const keys = decodeEnvelope(bytes);
      q = new SecureParticipant('q', info, async (event, message) => void (qSent[event] = message as Record<string, unknown>));
      await q.begin(decodeRound(), { values: simplex(new Dice(7), R), shape: [R, C] });
      const qKeys = qSent['secure-keys']!;
      roster = { session: 'hostile', round: 1, members: [{ participant: 'p0', cipherKey: keys.cipherKey, maskKey: keys.maskKey }, { participant: 'q', cipherKey: qKeys.cipherKey, maskKey: qKeys.maskKey }] };
      secureStep('roster', roster);
    });
    socket.on('secure-shares', async (_bytes: Uint8Array, ack: (reply: unknown) => void) => {
      ack(ok);
      await q!.roster({ v: PROTOCOL_VERSION, ...roster } as never);
      const share = (qSent['secure-shares']!.shares as Array<Record<string, unknown>>)[0]!;
      secureStep('routed', { session: 'hostile', round: 1, senders: ['p0', 'q'], shares: [{ from: 'q', nonce: share.nonce, ciphertext: share.ciphertext }] });
    });
    socket.on('secure-upload', (_bytes: Uint8Array, ack: (reply: unknown) => void) => {
      ack(ok);
      secureStep('unmask', { session: 'hostile', round: 1, uploaded: ['p0', 'q'] });
    });
    socket.on('secure-reveal', (_bytes: Uint8Array, ack: (reply: unknown) => void) => {
      ack(ok);
      // targets 'all', one contributor: the mean is q's probabilities, which a participant accepts.
      const words = encodeKnowledge('reference-predictions', simplex(new Dice(7), R), C);
      const sum = new Uint8Array(words.buffer.slice(0));
      secureStep('sum', { session: 'hostile', round: 1, sum, contributors: 1 });
    });
  }
}

function decodeRound() {
  return { ...roundMessage(), referenceIds: ALL_IDS } as never;
}

interface Outcome {
  logged: string[];
  settled: 'resolved' | 'rejected' | 'hung';
  error?: unknown;
  weightsChanged: boolean;
  rounds: number;
}

describe('a participant against a hostile coordinator speaking protocol 2', () => {
  const fake = new HostileCoordinator();
  let student: Student;
  const unhandled: unknown[] = [];
  const onUnhandled = (error: unknown) => void unhandled.push(error);
  beforeAll(async () => {
    await selectBackend();
    await fake.start();
    student = new Student(createModel({ name: 'mlp', inputShape: [28, 28, 1], numClasses: C, seed: 1 }), { sampleShape: [28, 28, 1], numClasses: C, learningRate: 1e-2, seed: 1 });
    process.on('unhandledRejection', onUnhandled);
    process.on('uncaughtException', onUnhandled);
  });
  afterAll(async () => {
    process.off('unhandledRejection', onUnhandled);
    process.off('uncaughtException', onUnhandled);
    student?.dispose();
    await fake.close();
  });

  const weights = () => student.model.getWeights().map((w) => Float32Array.from(w.dataSync()));
  const same = (a: Float32Array[], b: Float32Array[]) => a.every((w, i) => w.length === b[i]!.length && w.every((x, j) => Object.is(x, b[i]![j])));

  async function play(script: Script): Promise<Outcome> {
    fake.script = script;
    const before = weights();
    let rounds = 0;
    const logged: string[] = [];
    const run = runParticipant({
      log: (line) => logged.push(line),
      url: fake.url, session: 'hostile', token: 'any-token-0123456789', student, data: { train, reference: split.reference.x },
      epochs: 1, batchSize: 16, reconnect: { attempts: 0 }, requestTimeoutMs: 3_000, onRound: () => rounds++,
    });
    const outcome = await Promise.race([
      run.then(() => ({ settled: 'resolved' as const }), (error: unknown) => ({ settled: 'rejected' as const, error })),
      new Promise<{ settled: 'hung' }>((resolve) => setTimeout(() => resolve({ settled: 'hung' }), 8_000)),
    ]);
    return { ...outcome, weightsChanged: !same(before, weights()), rounds, logged };
  }

  /** Runs every case of a generator and checks the invariants; returns the table of outcomes. */
  async function fuzz(cases: Iterable<Script>): Promise<{ count: number; table: Map<string, number>; problems: string[] }> {
    const table = new Map<string, number>();
    const problems: string[] = [];
    let count = 0;
    for (const script of cases) {
      count++;
      const outcome = await play(script);
      const error = outcome.error;
      const code = outcome.settled !== 'rejected' ? outcome.settled : error instanceof ProtocolError ? error.code : `NOT CODED: ${(error as Error)?.constructor?.name}: ${String((error as Error)?.message ?? error).slice(0, 160)}`;
      const key = `${script.event}: ${script.category} → ${code}`;
      table.set(key, (table.get(key) ?? 0) + 1);
      const problem = (what: string) => problems.length < 40 && problems.push(`${script.event} ${script.category}: ${what}`);
      if (outcome.settled === 'hung') problem('the run neither ended nor failed');
      if (outcome.settled === 'rejected' && !(error instanceof ProtocolError && ERROR_CODES.has(error.code) && error.code !== ErrorCode.Internal)) problem(`stopped with ${code}`);
      if (script.malformedTarget === true && outcome.weightsChanged) problem(`trained on a malformed target (${code})`);
      if (script.valid === true && outcome.settled !== 'resolved') problem(`a valid session did not complete: ${code}`);
      if (script.rejects !== undefined && !(outcome.settled === 'rejected' && script.rejects.test(String((error as Error)?.message)))) problem(`did not stop with ${script.rejects}: ${code} ${String((error as Error)?.message ?? '').slice(0, 200)}`);
      if (script.logs !== undefined && !outcome.logged.some((line) => script.logs!.test(line))) problem(`logged nothing like ${script.logs} (${code})`);
      // A hostile message the run survived is one it refused or set aside, and said so.
      if (outcome.settled === 'resolved' && script.valid !== true && !outcome.logged.some((line) => /E_[A-Z_]+: |ignored/.test(line))) {
        problem(`went on without a word: ${outcome.logged.slice(-3).join(' | ')}`);
      }
    }
    expect(unhandled.map(String)).toEqual([]);
    return { count, table, problems };
  }

  function report(name: string, started: number, result: { count: number; table: Map<string, number> }): void {
    console.log([`${name}: ${result.count} cases in ${Date.now() - started} ms`, ...[...result.table].sort().map(([k, n]) => `  ${k} ×${n}`)].join('\n'));
  }

  it('a valid session completes, and the student learns from its target', async () => {
    const outcome = await play({ category: 'honest', event: 'none', valid: true });
    expect(outcome.settled).toBe('resolved');
    expect(outcome.weightsChanged).toBe(true);
    expect(outcome.rounds).toBe(1);
  });

  it('targets: dense and top-k, of every malformed kind, never trained on', { timeout: 120_000 }, async () => {
    const started = Date.now();
    const result = await fuzz(targetCases(new Dice(SEED + 1)));
    report('targets', started, result);
    expect(result.problems).toEqual([]);
  });

  it('class-knowledge targets (FedHKD, FD): counts, rows of classes no one holds, unbounded representations, soft parts off the simplex', { timeout: 60_000 }, async () => {
    const started = Date.now();
    const result = await fuzz(classTargetCases(new Dice(SEED + 6), student.representationWidth));
    report('class targets', started, result);
    expect(result.problems).toEqual([]);
  });

  it('round announcements, joins\' answers, and messages out of turn or not binary', { timeout: 120_000 }, async () => {
    const started = Date.now();
    const result = await fuzz([...roundCases(new Dice(SEED + 2)), ...joinedCases(new Dice(SEED + 3)), ...otherCases(new Dice(SEED + 4))]);
    report('rounds, joins, others', started, result);
    expect(result.problems).toEqual([]);
  });

  it('secure aggregation: rosters, routed shares, unmask requests and sums', { timeout: 120_000 }, async () => {
    const honest = await play({ category: 'honest', event: 'secure', info: SECURE_INFO, valid: true });
    expect(honest.settled).toBe('resolved');
    expect(honest.weightsChanged).toBe(true);
    const started = Date.now();
    const result = await fuzz(secureCases(new Dice(SEED + 5)));
    report('secure', started, result);
    expect(result.problems).toEqual([]);
  });
});

// ---- the cases ---------------------------------------------------------------------------------------

const targetEnvelope = (target: unknown, extra: Record<string, unknown> = {}) => msgpack({ v: PROTOCOL_VERSION, session: 'hostile', round: 1, kind: 'reference-predictions', target, contributors: 2, ...extra });

function* targetCases(d: Dice): Generator<Script> {
  for (let i = 0; i < CASES; i++) {
    const values = simplex(d, R);
    const dense = packTensor(values, [R, C], d.pick(['float32', 'float16', 'uint8'] as const));
    const topK = packTopK(values, [R, C], 3, 'float32');
    const v = values.slice();
    const row = d.int(R);
    const variant = d.int(16);
    let category: string;
    let target: unknown;
    switch (variant) {
      case 0: category = 'NaN or ±Inf'; v[d.int(v.length)] = d.pick([Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]); target = { dtype: 'float32', shape: [R, C], data: new Uint8Array(v.buffer) }; break;
      case 1: category = 'negative probability'; v[row * C] = -0.3; target = packTensor(v, [R, C], 'float32'); break;
      case 2: category = 'row sums past 1'; for (let k = 0; k < C; k++) v[row * C + k]! *= 3; target = packTensor(v, [R, C], 'float32'); break;
      case 3: category = 'logits, not probabilities'; for (let j = 0; j < v.length; j++) v[j] = 20 * v[j]! - 5; target = packTensor(v, [R, C], 'float32'); break;
      case 4: category = 'huge finite values'; v.fill(1e30); target = packTensor(v, [R, C], 'float32'); break;
      case 5: category = 'shape'; target = { ...dense, shape: d.pick<unknown>([[C, R], [R, C + 1], [R * C], [R, C, 1], [], [-R, C], [R + 0.5, C], [2 ** 31, 2 ** 31]]) }; break;
      case 6: category = 'data length'; target = { ...dense, data: d.pick([dense.data.subarray(1), concat([dense.data, new Uint8Array(3)]), new Uint8Array(0)]) }; break;
      case 7: category = 'dtype'; target = { ...dense, dtype: d.pick<unknown>(['float64', 'int8', '', 7, null]) }; break;
      case 8: category = 'uint8 min and scale'; target = { ...packTensor(values, [R, C], 'uint8'), ...d.pick<Record<string, unknown>>([{ min: -5 }, { scale: 1 }, { min: 3e38, scale: 1e37 }, { scale: -1 }, { min: Number.NaN }]) }; break;
      case 9: category = 'top-k: index out of range or repeated'; {
        const indices = topK.indices.slice();
        if (d.chance(0.5)) indices[d.int(indices.length)] = C + d.int(200);
        else indices[row * 3 + 1] = indices[row * 3]!;
        target = { ...topK, indices };
      } break;
      case 10: category = 'top-k: masses above 1'; target = { ...topK, data: new Uint8Array(new Float32Array(R * 3).fill(0.5).buffer) }; break;
      case 11: category = 'top-k: k'; target = { ...topK, k: d.pick<unknown>([0, C + 1, 1.5, -1, 65_537, '3']) }; break;
      case 12: category = 'top-k: indices bytes'; target = { ...topK, indices: d.pick<unknown>([topK.indices.subarray(1), new Uint8Array(0), 'i', null]) }; break;
      case 13: category = 'not a tensor'; target = d.pick(wrongTypes(d).filter((x) => x !== null)); break;
      case 14: category = 'a prototype key beside a fault'; target = withKey({ ...dense, shape: [R, C + 1] }, d.pick(['__proto__', 'constructor']), { k: 3, indices: topK.indices }); break;
      default: category = 'deep nesting'; target = { ...dense, shape: deepArray(40 + d.int(500)) }; break;
    }
    yield { category, event: 'target', target: () => [targetEnvelope(target)], malformedTarget: true };
  }
  // Far past the session's maxMessageBytes (and beyond any socket.io packet a coordinator sends): refused by size, unread.
  yield { category: 'a target of 20 MiB', event: 'target', target: () => [targetEnvelope({ dtype: 'float32', shape: [R, C], data: new Uint8Array(20 << 20) })], malformedTarget: true };
  // Valid by construction: a null target (no peers), a target for another round (ignored), a top-k target.
  for (let i = 0; i < 12; i++) {
    const values = simplex(d, R);
    const which = i % 3;
    if (which === 0) yield { category: 'null target', event: 'target', target: () => [targetEnvelope(null, { contributors: 0 })], valid: true };
    else if (which === 1) yield { category: 'target of another round', event: 'target', target: () => [targetEnvelope(packTensor(values, [R, C], 'float32'), { round: 7 })], malformedTarget: true };
    else yield { category: 'top-k target', event: 'target', target: () => [targetEnvelope(packTopK(values, [R, C], 2, 'uint8'))], valid: true };
  }
}

function* roundCases(d: Dice): Generator<Script> {
  for (let i = 0; i < CASES; i++) {
    const variant = d.int(10);
    let category: string;
    let round: Record<string, unknown>;
    switch (variant) {
      case 0: category = 'bitmap longer than the reference set'; round = roundMessage({ referenceIds: new Uint8Array(4 + d.int(100_000)).fill(0xff) }); break;
      case 1: category = 'bitmap naming a row past the set'; round = roundMessage({ referenceIds: Uint8Array.from([0xff, 0xff, 0x10 << d.int(4)]) }); break;
      case 2: category = 'ids repeated, negative, past the set or not integers'; round = roundMessage({ referenceIds: d.pick<unknown>([[1, 1], [-1], [R], [0.5], [2 ** 31], [Number.NaN], ['1'], Array.from({ length: R + 1 }, (_, j) => j)]) }); break;
      case 3: category = 'ids of the wrong type'; round = roundMessage({ referenceIds: d.pick(wrongTypes(d).filter((x) => !(x instanceof Uint8Array) && !Array.isArray(x))) }); break;
      case 4: category = 'another knowledge'; round = roundMessage({ knowledge: d.pick<unknown>(['weights', 'class-logits', 'reference-token-predictions', 'none', 'x', 7]) }); break;
      case 5: category = 'temperature'; round = roundMessage({ temperature: d.pick<unknown>([0, -1, Number.NaN, Number.POSITIVE_INFINITY, '3', null]) }); break;
      case 6: category = 'round number'; round = roundMessage({ round: d.pick<unknown>([0, -1, 1.5, 2 ** 40, Number.NaN, '1']) }); break;
      case 7: category = 'sampled'; round = roundMessage({ sampled: d.pick<unknown>(['false', 0, 1, null, [], {}]) }); break;
      case 8: category = 'version'; round = roundMessage({ v: d.pick<unknown>([PROTOCOL_VERSION - 1, PROTOCOL_VERSION + 1, String(PROTOCOL_VERSION), null]) }); break;
      default: category = 'a prototype key beside a fault'; round = withKey(roundMessage({ referenceIds: [R + 5] }), d.pick(['__proto__', 'constructor', 'toString']), { referenceIds: [0] }); break;
    }
    yield { category, event: 'round', round: [msgpack(round)] };
  }
  // Valid: a round this participant sits out (sampled: false, no ids), then the end.
  yield { category: 'sat out', event: 'round', round: [msgpack(roundMessage({ referenceIds: [], sampled: false }))], valid: true };
}

function* joinedCases(d: Dice): Generator<Script> {
  const fields: Array<[string, unknown[]]> = [
    ['numClasses', [0, 1, 9, 11, 100_001, 1.5, Number.NaN, '10']],
    ['referenceSize', [-1, 2 ** 32, 1.5, 10, 10_000_000]],
    ['maxMessageBytes', [0, -1, 1, 1.5, Number.NaN]],
    ['temperature', [0, -1, Number.POSITIVE_INFINITY, 1e6]],
    ['alpha', [-0.1, 1.1, Number.NaN]],
    ['uploadDtype', ['float64', '', null]],
    ['uploadTopK', [0, 11, 65_537, 1.5]],
    ['knowledge', ['x', null, 'reference-token-predictions']],
    ['algorithm', ['no-such-algorithm', 'x'.repeat(65), 'codistillation']],
    ['rounds', [0, -1, 1_000_001]],
    ['secure', [{ threshold: 1, targets: 'all' }, { threshold: 2, targets: 'some' }, 'yes']],
    ['async', [{ shards: 0, exchangeEvery: 1, burnInSteps: 0, stalenessMs: 1 }, { shards: 1, exchangeEvery: 0, burnInSteps: 0, stalenessMs: 1 }]],
    ['positions', [0, 65_537, -1]],
    ['tokenizer', [{ kind: 'x', encoding: 'y', vocabSize: 1, bos: 0 }, 'bytes']],
  ];
  for (let i = 0; i < Math.ceil(CASES / 2); i++) {
    const variant = d.int(5);
    if (variant < 3) {
      const [field, values] = d.pick(fields);
      yield { category: `info.${field}`, event: 'joined', joined: msgpack(joinedMessage({ ...INFO, [field]: d.pick(values) })) };
    } else if (variant === 3) {
      yield { category: 'answer not a joined reply', event: 'joined', joined: d.pick<unknown>([msgpack({ v: PROTOCOL_VERSION, ok: false, error: { code: 'E_NOPE', message: 'x' } }), msgpack({ v: PROTOCOL_VERSION, ok: 'yes' }), 'joined', null, 42, new Uint8Array([0xc1]), msgpack(joinedMessage(null))]) };
    } else {
      yield { category: 'participant id', event: 'joined', joined: msgpack({ ...joinedMessage(), participant: d.pick<unknown>(['', 'a/b', 'x'.repeat(129), 7, null]) }) };
    }
  }
}

function* otherCases(d: Dice): Generator<Script> {
  const events = ['round', 'target', 'round-failed', 'end', 'closing', 'secure-roster', 'secure-routed', 'secure-unmask', 'secure-sum'];
  for (let i = 0; i < Math.ceil(CASES / 2); i++) {
    const event = d.pick(events);
    const variant = d.int(6);
    let category: string;
    let args: unknown[];
    if (variant === 0) [category, args] = ['not binary', [d.pick<unknown>(['text', 42, null, true, { v: PROTOCOL_VERSION }, [1, 2]])]];
    else if (variant === 1) [category, args] = ['no argument', []];
    else if (variant === 2) [category, args] = ['truncated or trailing bytes', [d.chance(0.5) ? msgpack(roundMessage()).subarray(0, 5) : concat([msgpack(roundMessage()), new Uint8Array([1, 2])])]];
    else if (variant === 3) [category, args] = ['past the size limit', [msgpack({ ...roundMessage(), pad: 'p'.repeat(INFO.maxMessageBytes + 10) })]];
    else if (variant === 4) [category, args] = ['an envelope of another event', [msgpack(d.pick<Record<string, unknown>>([roundMessage(), { v: PROTOCOL_VERSION, session: 'hostile', reason: 'x', rounds: 1 }, { v: PROTOCOL_VERSION, session: 'hostile', round: 1, error: { code: 'E_WHAT', message: 'no' } }, { v: PROTOCOL_VERSION, ok: false, error: { code: 'E_REPLACED', message: 'replaced' } }]))]];
    else [category, args] = ['out of turn (before the round)', [msgpack(event === 'end' ? { v: PROTOCOL_VERSION, session: 'hostile', reason: 'r'.repeat(5_000), rounds: -1 } : { v: PROTOCOL_VERSION, session: 'hostile', round: 1, members: [], senders: [], shares: [], uploaded: ['p0'], sum: new Uint8Array(8), contributors: 1, error: { code: 'E_ROUND_CLOSED', message: 'x' } })]];
    yield { category, event, first: [[event, args]] };
  }
}

function* secureCases(d: Dice): Generator<Script> {
  const zero = new Uint8Array(32);
  const one = Uint8Array.from([1, ...new Array<number>(31).fill(0)]);
  for (let i = 0; i < CASES; i++) {
    const step = d.pick(['roster', 'routed', 'unmask', 'sum'] as const);
    const variant = d.int(6);
    let category = '';
    let mutate: (honest: Record<string, unknown>) => unknown[][];
    if (step === 'roster') {
      const options: Array<[string, (h: Record<string, unknown>) => unknown]> = [
        ['a member\'s key of a small order (all zeros, or 1)', (h) => ({ ...h, members: (h.members as Array<Record<string, unknown>>).map((m) => (m.participant === 'q' ? { ...m, [d.pick(['cipherKey', 'maskKey'])]: d.pick([zero, one]) } : m)) })],
        ['leaves this member out', (h) => ({ ...h, members: (h.members as unknown[]).slice(1) })],
        ['names a member twice', (h) => ({ ...h, members: [...(h.members as unknown[]), (h.members as unknown[])[1]] })],
        ['keys of the wrong length', (h) => ({ ...h, members: (h.members as Array<Record<string, unknown>>).map((m) => ({ ...m, maskKey: (m.maskKey as Uint8Array).subarray(1) })) })],
        ['gives this member other keys', (h) => ({ ...h, members: (h.members as Array<Record<string, unknown>>).map((m) => ({ ...m, maskKey: d.bytes(32) })) })],
        ['fewer members than the threshold, or none', (h) => ({ ...h, members: d.pick([[(h.members as unknown[])[0]], []]) })],
      ];
      const [name, f] = options[variant % options.length]!;
      category = name;
      mutate = (h) => [[msgpack(f(h) as Record<string, unknown>)]];
    } else if (step === 'routed') {
      const options: Array<[string, (h: Record<string, unknown>) => unknown]> = [
        ['a share that does not decrypt', (h) => ({ ...h, shares: (h.shares as Array<Record<string, unknown>>).map((s) => ({ ...s, ciphertext: d.bytes(80) })) })],
        ['a nonce altered', (h) => ({ ...h, shares: (h.shares as Array<Record<string, unknown>>).map((s) => ({ ...s, nonce: d.bytes(12) })) })],
        ['a sender not on the roster', (h) => ({ ...h, senders: ['p0', 'q', 'x'] })],
        ['this member not among the senders', (h) => ({ ...h, senders: ['q'] })],
        ['shares from a member twice, or none', (h) => ({ ...h, shares: d.pick([[], [...(h.shares as unknown[]), ...(h.shares as unknown[])]]) })],
        ['a share claimed by another', (h) => ({ ...h, shares: (h.shares as Array<Record<string, unknown>>).map((s) => ({ ...s, from: 'p0' })) })],
      ];
      const [name, f] = options[variant % options.length]!;
      category = name;
      mutate = (h) => [[msgpack(f(h) as Record<string, unknown>)]];
    } else if (step === 'unmask') {
      const options: Array<[string, (h: Record<string, unknown>) => unknown[][]]> = [
        ['uploaders not among the senders', (h) => [[msgpack({ ...h, uploaded: ['p0', 'x'] })]]],
        ['this member not among the uploaders', (h) => [[msgpack({ ...h, uploaded: ['q'] })]]],
        ['an uploader twice', (h) => [[msgpack({ ...h, uploaded: ['p0', 'p0', 'q'] })]]],
        ['fewer than the threshold', (h) => [[msgpack({ ...h, uploaded: ['p0'] })]]],
        // The honest request, then one naming other survivors: a member reveals for one set only.
        ['a second request for other survivors', (h) => [[msgpack(h)], [msgpack({ ...h, uploaded: ['p0'] })]]],
        ['for a round this member did not begin', (h) => [[msgpack({ ...h, round: 2 + d.int(5) })]]],
      ];
      const [name, f] = options[variant % options.length]!;
      category = name;
      mutate = f;
    } else {
      const options: Array<[string, (h: Record<string, unknown>) => unknown, Partial<Script>]> = [
        ['a sum of the wrong length', (h) => ({ ...h, sum: (h.sum as Uint8Array).subarray(4) }), { malformedTarget: true }],
        ['no contributors', (h) => ({ ...h, contributors: 0 }), { malformedTarget: true }],
        // Refused as a target, and the round learnt from the private data alone (logged): the run goes on.
        ['a sum no honest members could make', (h) => ({ ...h, sum: d.bytes((h.sum as Uint8Array).byteLength) }), { valid: true, logs: /E_VALUE: the secure sum of round 1 gives a target no honest members could have made/ }],
        ['contributors past the members', (h) => ({ ...h, contributors: d.pick([2 ** 31, 256, 3]) }), { valid: true, logs: /E_VALUE: the secure sum of round 1 gives a target no honest members could have made/ }],
        ['a sum for another round', (h) => ({ ...h, round: 2 }), { malformedTarget: true }],
        ['sum not binary', (h) => ({ ...h, sum: d.pick<unknown>(['sum', [1, 2], null]) }), { malformedTarget: true }],
      ];
      const [name, f, expectation] = options[variant % options.length]!;
      yield { category: name, event: 'secure-sum', info: SECURE_INFO, secure: { sum: (h) => [[msgpack({ v: PROTOCOL_VERSION, ...(f(h) as Record<string, unknown>) })]] }, ...expectation };
      continue;
    }
    yield { category, event: `secure-${step}`, info: SECURE_INFO, secure: { [step]: (h: Record<string, unknown>) => mutate({ v: PROTOCOL_VERSION, ...h }) } };
  }
}

const HKD_INFO: SessionInfo = { ...INFO, algorithm: 'fedhkd', knowledge: 'class-hyper-knowledge', referenceSize: 0 };
const FD_INFO: SessionInfo = { ...INFO, algorithm: 'fd', knowledge: 'class-logits', referenceSize: 0 };

/** FedHKD's and FD's targets: what the coordinator's class means could be, then each broken in one way. */
function* classTargetCases(d: Dice, D: number): Generator<Script> {
  const width = D + C;
  const hkd = (kind: string, target: unknown, counts: unknown, expectation: Partial<Script>): Script => ({
    category: kind, event: 'target', info: HKD_INFO, announce: { knowledge: 'class-hyper-knowledge', referenceIds: [] },
    target: () => [msgpack({ v: PROTOCOL_VERSION, session: 'hostile', round: 1, kind: 'class-hyper-knowledge', target, counts, contributors: 2 })], ...expectation,
  });
  for (let i = 0; i < Math.ceil(CASES / 4); i++) {
    const counts = Array.from({ length: C }, (_, c) => (c === 3 ? 0 : 1 + d.int(50)));
    const soft = simplex(d, C);
    const values = new Float32Array(C * width);
    for (let c = 0; c < C; c++) {
      if (counts[c] === 0) continue;
      for (let j = 0; j < D; j++) values[c * width + j] = d.random.next() * 3;
      values.set(soft.subarray(c * C, (c + 1) * C), c * width + D);
    }
    const v = values.slice();
    const held = d.pick([0, 1, 2, 4, 5]);
    switch (d.int(11)) {
      case 0: yield hkd('a valid target', packTensor(values, [C, width], 'float32'), counts, { valid: true }); break;
      case 1: yield hkd('counts missing or of another length', packTensor(values, [C, width], 'float32'), d.pick([undefined, counts.slice(1), [...counts, 1]]), { rejects: /^E_SHAPE: the class-hyper-knowledge target: counts has/ }); break;
      case 2: v[3 * width + d.int(width)] = 0.5; yield hkd('a row for a class no one holds', packTensor(v, [C, width], 'float32'), counts, { rejects: /^E_VALUE: .*class 3 has count 0 but its row holds/ }); break;
      case 3: v[held * width + d.int(D)] = d.pick([1e5, -1e6, 3e38]); yield hkd('a representation past its bound', packTensor(v, [C, width], 'float32'), counts, { rejects: /^E_VALUE: .*representation value/ }); break;
      case 4: { const at = held * width + D + d.int(C); v[at] = v[at]! + 0.5; } yield hkd('a soft part off the simplex', packTensor(v, [C, width], 'float32'), counts, { rejects: /^E_VALUE: .*soft prediction/ }); break;
      case 5: v[held * width] = Number.NaN; yield hkd('NaN', { dtype: 'float32', shape: [C, width], data: new Uint8Array(v.buffer) }, counts, { rejects: /^E_VALUE: the class-hyper-knowledge target: tensor value/ }); break;
      case 6: yield hkd('another width', packTensor(new Float32Array(C * (width + 1)), [C, width + 1], 'float32'), counts, { rejects: /^E_SHAPE/ }); break;
      case 7: yield hkd('the top-k form', packTopK(simplex(d, C, width), [C, width], 2, 'float32'), counts, { rejects: /^E_SCHEMA: the class-hyper-knowledge target: the top-k sparse form carries probabilities/ }); break;
      default: {
        // FD: per-class mean logits; counts are what its learner reads to pick the classes it is taught.
        const logits = packTensor(Float32Array.from({ length: C * C }, () => (d.random.next() - 0.5) * 8), [C, C], 'float32');
        const valid = d.chance(0.4);
        yield {
          category: valid ? 'FD: a valid target' : 'FD: counts missing or of another length', event: 'target', info: FD_INFO, announce: { knowledge: 'class-logits', referenceIds: [] },
          target: () => [msgpack({ v: PROTOCOL_VERSION, session: 'hostile', round: 1, kind: 'class-logits', target: logits, counts: valid ? counts : d.pick([undefined, counts.slice(2)]), contributors: 2 })],
          ...(valid ? { valid: true } : { rejects: /^E_SHAPE: the class-logits target: counts has/ }),
        };
      }
    }
  }
}
