/**
 * Language models across sites: the per-token kind (reference-token-predictions) validated like
 * the class kind, a tokenizer mismatch refused at the join, and a real DML session on text — a
 * coordinator on 127.0.0.1, real socket.io participants training real tfjs Transformers on
 * embedded fortunes slices, real msgpackr envelopes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../client/backend.js';
import { toSequences } from '../../client/data/text.js';
import { createLanguageModel } from '../../client/lm/model.js';
import { referenceWindows, textParticipantData, tokenizerIdentity, type TextSite } from '../../client/lm/site.js';
import { BYTE_TOKENIZER, BYTE_VOCAB } from '../../client/lm/tokenizer.js';
import { runParticipant, type ParticipantSummary } from '../../client/participant.js';
import type { Share } from '../../client/procedures/index.js';
import {
  clientMessages,
  encodeMessage,
  packTensor,
  packTopK,
  PROTOCOL_VERSION,
  readContribution,
  readReply,
  replyMessages,
  unpackTensor,
  type KnowledgeExpectation,
} from '../../protocol/index.js';
import { Coordinator } from '../../server/coordinator.js';
import { checkSessionConfig, type SessionConfig } from '../../server/session-config.js';
import { RawParticipant, refusalCode, until } from '../server/raw-participant.js';

/** Cookies from Debian's fortunes-min (English), fortunes-de and fortunes-es: each site's private text is one language. */
const SLICES: Record<string, string[]> = {
  en: [
    'A day for firm decisions!!!!!  Or is it?',
    'A few hours grace before the madness begins again.',
    'A gift of a flower will soon be made to you.',
    'A long-forgotten loved one will appear soon.  Buy the negatives at any price.',
  ],
  de: [
    'Ein Mathematikprofessor trifft auf dem Uniplatz einen Kollegen und\nunterhält sich eine Weile mit ihm.',
    'Anschließend fragt er: "Können Sie mir vielleicht sagen, aus welcher Richtung ich vorhin kam?"',
    'Nachdem ihm der Kollege die gewünschte Auskunft erteilt hatte, meint\ner: "Aha, dann war ich also noch nicht essen gewesen."',
  ],
};
/** The shared reference text: a mix of the languages. */
const REFERENCE_TEXT = [SLICES.en![0]!, SLICES.de![0]!, SLICES.en![2]!, SLICES.de![1]!];

const POSITIONS = 16;
const MODEL = `transformer:d=16,l=1,h=2,ctx=${POSITIONS}`;
const TOKENIZER = tokenizerIdentity(BYTE_TOKENIZER);

function site(language: string, seed: number, tokenizer = BYTE_TOKENIZER): TextSite {
  return {
    model: createLanguageModel(MODEL, seed), tokenizer,
    train: toSequences(SLICES[language]!, POSITIONS), reference: referenceWindows(REFERENCE_TEXT, POSITIONS),
    steps: 3, learningRate: 3e-3, seed,
  };
}

function sessionConfig(id: string, ids: string[], overrides: Partial<SessionConfig> = {}): SessionConfig {
  return {
    id, algorithm: 'dml', rounds: 2, participants: ids.map((p) => ({ id: p, token: `secret-${p}` })), minParticipants: ids.length,
    numClasses: BYTE_VOCAB, referenceSize: referenceWindows(REFERENCE_TEXT, POSITIONS).count, referencePerRound: 6, temperature: 2, alpha: 0.5,
    uploadDtype: 'float32', roundTimeoutMs: 60_000, trainTimeoutMs: 60_000, onRoundFailure: 'stop', seed: 3, maxMessageBytes: 4 << 20,
    tokenizer: TOKENIZER, positions: POSITIONS, ...overrides,
  };
}

/** Per-token distributions [rows, positions, vocab] that differ by seed, so a wrong aggregate shows. */
function tokenDistributions(seed: number, rows: number, positions = POSITIONS, vocab = BYTE_VOCAB): Float32Array {
  const v = new Float32Array(rows * positions * vocab);
  for (let r = 0; r < rows * positions; r++) {
    let sum = 0;
    for (let k = 0; k < vocab; k++) sum += v[r * vocab + k] = 1 + ((seed * 7 + r * 3 + k * 11) % 13);
    for (let k = 0; k < vocab; k++) v[r * vocab + k]! /= sum;
  }
  return v;
}

beforeAll(async () => {
  await selectBackend('wasm');
});

describe('reference-token-predictions: every upload validated', () => {
  const e: KnowledgeExpectation = { kind: 'reference-token-predictions', round: 1, numClasses: 5, rows: 2, positions: 3 };
  const good = tokenDistributions(1, 2, 3, 5);
  const read = (values: ReturnType<typeof packTensor> | ReturnType<typeof packTopK>) => () => readContribution('p', { kind: 'reference-token-predictions', values }, e);

  it('accepts [rows, positions, vocab] on the simplex, dense and top-k', () => {
    expect(Array.from(read(packTensor(good, [2, 3, 5], 'float32'))().values)).toEqual(Array.from(good));
    expect(read(packTopK(good, [2, 3, 5], 2, 'float16'))().values).toHaveLength(30);
  });

  it('refuses a shape that is not the session\'s [rows, positions, vocab]', () => {
    expect(read(packTensor(good, [2, 15], 'float32'))).toThrow(/E_SHAPE/);
    expect(read(packTensor(good, [2, 5, 3], 'float32'))).toThrow(/E_SHAPE/);
    expect(() => readContribution('p', { kind: 'reference-token-predictions', values: packTensor(good, [2, 3, 5], 'float32') }, { ...e, positions: undefined })).toThrow(/needs the positions/);
  });

  it('refuses a position whose row is off the simplex, a value outside [0, 1], and NaN — naming the row', () => {
    const off = Float32Array.from(good);
    off[4 * 5 + 1]! += 0.1; // position row 4 (window 1, position 1)
    expect(read(packTensor(off, [2, 3, 5], 'float32'))).toThrow(/E_VALUE.*row 4 sums to 1\.1/);
    const negative = Float32Array.from(good);
    negative[2 * 5] = -0.5;
    negative[2 * 5 + 1]! += 0.5 + good[2 * 5]!;
    expect(read(packTensor(negative, [2, 3, 5], 'float32'))).toThrow(/E_VALUE.*row 2, class 0 is -0\.5/);
    const nan = Float32Array.from(good);
    nan[7] = NaN;
    // packTensor refuses NaN itself: a hostile sender writes the bytes by hand.
    expect(read({ dtype: 'float32', shape: [2, 3, 5], data: new Uint8Array(nan.buffer) })).toThrow(/E_VALUE.*NaN/);
  });

  it('refuses top-k indices out of range or repeated, and mass past 1', () => {
    const t = packTopK(good, [2, 3, 5], 2, 'float32');
    const indices = Uint8Array.from(t.indices);
    indices[0] = 9;
    expect(read({ ...t, indices })).toThrow(/E_VALUE.*top-k row 0 names entry 9; the last axis has entries 0…4/);
    const repeated = Uint8Array.from(t.indices);
    repeated[1] = repeated[0]!;
    expect(read({ ...t, indices: repeated })).toThrow(/E_VALUE.*top-k row 0 names entry \d twice/);
    const heavy = new Float32Array(12).fill(0.6);
    expect(read({ ...t, data: new Uint8Array(heavy.buffer) })).toThrow(/E_VALUE.*sum to 1\.2/);
  });
});

describe('a session of per-token knowledge: its config', () => {
  it('refuses a tokenizer without positions, a vocabulary that is not numClasses, an algorithm without per-token knowledge, secure aggregation', () => {
    const ok = sessionConfig('c', ['a', 'b']);
    expect(() => checkSessionConfig(ok)).not.toThrow();
    expect(() => checkSessionConfig({ ...ok, positions: undefined })).toThrow(/tokenizer and positions go together/);
    expect(() => checkSessionConfig({ ...ok, numClasses: 256 })).toThrow(/numClasses \(256\) must be the tokenizer's vocabulary \(257\)/);
    expect(() => checkSessionConfig({ ...ok, positions: 0 })).toThrow(/positions must be an integer in \[1, 65536\] \(got 0\)/);
    expect(() => checkSessionConfig({ ...ok, algorithm: 'fedmd' })).toThrow(/fedmd does not exchange per-token knowledge; with a tokenizer and positions choose dml/);
    expect(() => checkSessionConfig({ ...ok, secureAggregation: { threshold: 2 } })).toThrow(/secure aggregation of per-token knowledge is not supported/);
  });
});

describe('language models across sites, over real sockets', () => {
  let coordinator: Coordinator;
  beforeAll(async () => {
    coordinator = await Coordinator.start();
  });
  afterAll(async () => coordinator.close());

  it('refuses a participant whose tokenizer is not the session\'s, and one that names none, at the join (E_TOKENIZER)', async () => {
    coordinator.createSession(sessionConfig('lm-mismatch', ['a', 'b']));
    const other = { ...BYTE_TOKENIZER, bos: 0, description: 'BOS 0' };
    await expect(runParticipant({ url: coordinator.url, session: 'lm-mismatch', token: 'secret-a', data: textParticipantData(site('en', 1, other)), epochs: 1, batchSize: 4 }))
      .rejects.toThrow(/E_TOKENIZER: a's tokenizer \{kind=bytes, encoding=utf-8, vocabSize=257, bos=0\} is not session lm-mismatch's \{kind=bytes, encoding=utf-8, vocabSize=257, bos=256\}/);
    const raw = new RawParticipant(coordinator.url, 'b', 'secret-b');
    await raw.connected();
    const reply = await raw.send('join', encodeMessage(clientMessages.join, { v: PROTOCOL_VERSION, session: 'lm-mismatch', role: 'participant' }));
    expect(refusalCode(reply)).toBe('E_TOKENIZER');
    raw.close();
  });

  it('runs DML on text: each target is the leave-one-out mean of the others\' per-token uploads; a distiller LM learns from the ensemble', async () => {
    const ids = ['en', 'de', 'raw'];
    const config = sessionConfig('lm-dml', ids);
    config.participants.push({ id: 'global', token: 'secret-global', role: 'distiller' });
    const session = coordinator.createSession(config);
    const ended = new Promise((resolve) => session.once('end', resolve));
    // The hand-driven third participant uploads known distributions and reads its targets.
    const raw = new RawParticipant(coordinator.url, 'raw', 'secret-raw');
    await raw.connected();
    const joined = readReply(replyMessages.joined, await raw.send('join', encodeMessage(clientMessages.join, { v: PROTOCOL_VERSION, session: 'lm-dml', role: 'participant', tokenizer: TOKENIZER })));
    expect(joined.info).toMatchObject({ knowledge: 'reference-token-predictions', positions: POSITIONS, tokenizer: TOKENIZER, numClasses: BYTE_VOCAB });
    const uploads = new Map<string, Share[]>();
    const sites = [site('en', 1), site('de', 2)];
    const running: Promise<ParticipantSummary>[] = ['en', 'de'].map((language, i) =>
      runParticipant({
        url: coordinator.url, session: 'lm-dml', token: `secret-${language}`, data: textParticipantData(sites[i]!), epochs: 1, batchSize: 4,
        // Records what goes up, unchanged.
        uploadHook: { transform: (share) => (uploads.set(language, [...(uploads.get(language) ?? []), share]), share) },
      }));
    // One global LM, no private text: it learns from the ensemble of all three by token-KD alone.
    const global: TextSite = { ...site('en', 9), train: toSequences([], POSITIONS) };
    const before = global.model.variables.map((v) => v.dataSync().slice());
    const distilled = runParticipant({ url: coordinator.url, session: 'lm-dml', token: 'secret-global', role: 'distiller', data: textParticipantData(global), epochs: 1, batchSize: 4 });
    for (let round = 1; round <= 2; round++) {
      await until(() => raw.rounds.length >= round, `round ${round}`, 60_000);
      const rows = raw.rounds[round - 1]!.referenceIds.length;
      expect(rows).toBe(6);
      const mine = tokenDistributions(round, rows);
      expect(refusalCode(await raw.upload({ session: 'lm-dml', round, kind: 'reference-token-predictions', values: packTensor(mine, [rows, POSITIONS, BYTE_VOCAB], 'float32') }))).toBe('ok');
      await until(() => raw.targets.length >= round, `round ${round}'s target`, 60_000);
      const target = raw.targets[round - 1]!;
      expect(target.kind).toBe('reference-token-predictions');
      const got = unpackTensor(target.target!, [rows, POSITIONS, BYTE_VOCAB]);
      const en = uploads.get('en')![round - 1]!;
      const de = uploads.get('de')![round - 1]!;
      expect(en.shape).toEqual([rows, POSITIONS, BYTE_VOCAB]);
      let worst = 0;
      for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i]! - (en.values[i]! + de.values[i]!) / 2));
      expect(worst).toBeLessThan(1e-6);
      // The sites' own predictions differ (different text, different seeds): the mean is not one of them.
      expect(Math.abs(en.values[0]! - de.values[0]!)).toBeGreaterThan(1e-6);
      expect(refusalCode(await raw.send('report', encodeMessage(clientMessages.report, { v: PROTOCOL_VERSION, session: 'lm-dml', round, participant: 'raw', metrics: { loss: 1 } })))).toBe('ok');
    }
    const summaries = await Promise.all(running);
    await ended;
    raw.close();
    for (const summary of summaries) {
      expect(summary.rounds.map((r) => [r.round, r.receivedTarget])).toEqual([[1, true], [2, true]]);
      expect(summary.rounds.every((r) => r.train.steps === 3 && Number.isFinite(r.train.loss))).toBe(true);
    }
    expect(session.history.map((r) => r.contributors.sort())).toEqual([['de', 'en', 'raw'], ['de', 'en', 'raw']]);
    const distiller = await distilled;
    expect(distiller.rounds.map((r) => [r.round, r.receivedTarget, r.train.steps])).toEqual([[1, true, 3], [2, true, 3]]);
    expect(global.model.variables.some((v, i) => v.dataSync().some((x, j) => x !== before[i]![j]))).toBe(true);
    for (const s of [...sites, global]) s.model.dispose();
  });
});
