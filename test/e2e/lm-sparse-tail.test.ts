/**
 * sparseTail between real language-model sites: a coordinator on 127.0.0.1, real socket.io
 * participants training real tfjs Transformers on fortunes slices, top-k uploads and targets as
 * real msgpackr bytes. With `sparseTail: student` a participant keeps the support of each top-k
 * target and completes its remaining mass with its own distribution (client/losses/tokens.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../client/backend.js';
import { toSequences } from '../../client/data/text.js';
import { createLanguageModel } from '../../client/lm/model.js';
import { referenceWindows, textParticipantData, tokenizerIdentity, type TextSite } from '../../client/lm/site.js';
import { BYTE_TOKENIZER, BYTE_VOCAB } from '../../client/lm/tokenizer.js';
import { runParticipant } from '../../client/participant.js';
import { Coordinator } from '../../server/coordinator.js';
import { checkSessionConfig, type SessionConfig } from '../../server/session-config.js';

/** Cookies from Debian's fortunes-min (English) and fortunes-de. */
const SLICES: Record<string, string[]> = {
  en: ['A day for firm decisions!!!!!  Or is it?', 'A few hours grace before the madness begins again.', 'A gift of a flower will soon be made to you.'],
  de: ['Ein Mathematikprofessor trifft auf dem Uniplatz einen Kollegen und\nunterhält sich eine Weile mit ihm.', 'Anschließend fragt er: "Können Sie mir vielleicht sagen, aus welcher Richtung ich vorhin kam?"'],
};
const REFERENCE_TEXT = [SLICES.en![0]!, SLICES.de![0]!, SLICES.en![2]!, SLICES.de![1]!];
const POSITIONS = 16;
const MODEL = `transformer:d=16,l=1,h=2,ctx=${POSITIONS}`;

function site(language: string, seed: number): TextSite {
  return {
    model: createLanguageModel(MODEL, seed), tokenizer: BYTE_TOKENIZER,
    train: toSequences(SLICES[language]!, POSITIONS), reference: referenceWindows(REFERENCE_TEXT, POSITIONS),
    steps: 3, learningRate: 3e-3, seed,
  };
}

function sessionConfig(id: string, overrides: Partial<SessionConfig> = {}): SessionConfig {
  return {
    id, algorithm: 'dml', rounds: 2, participants: ['en', 'de'].map((p) => ({ id: p, token: `secret-${id}-${p}` })), minParticipants: 2,
    numClasses: BYTE_VOCAB, referenceSize: referenceWindows(REFERENCE_TEXT, POSITIONS).count, referencePerRound: 6, temperature: 2, alpha: 0.5,
    uploadDtype: 'float32', uploadTopK: 4, targetTopK: 4, roundTimeoutMs: 60_000, trainTimeoutMs: 60_000, onRoundFailure: 'stop', seed: 3, maxMessageBytes: 4 << 20,
    tokenizer: tokenizerIdentity(BYTE_TOKENIZER), positions: POSITIONS, ...overrides,
  };
}

beforeAll(async () => {
  await selectBackend('wasm');
});

describe('sparseTail in a session config', () => {
  it('refuses an unknown tail, and the student tail without top-k targets or without per-token knowledge', () => {
    const ok = sessionConfig('c', { sparseTail: 'student' });
    expect(() => checkSessionConfig(ok)).not.toThrow();
    expect(() => checkSessionConfig({ ...ok, sparseTail: 'even' as never })).toThrow(/sparseTail must be one of uniform, student \(got even\)/);
    expect(() => checkSessionConfig({ ...ok, targetTopK: undefined })).toThrow(/sparseTail "student" completes top-k targets of per-token knowledge: it needs targetTopK/);
    expect(() => checkSessionConfig({ ...ok, tokenizer: undefined, positions: undefined, numClasses: 10 })).toThrow(/sparseTail "student" .* a per-token session/);
  });

  it('defaults to the student tail for per-token sessions with top-k targets only', async () => {
    const coordinator = await Coordinator.start();
    try {
      expect(coordinator.createSession(sessionConfig('d-topk')).info.sparseTail).toBe('student');
      expect(coordinator.createSession(sessionConfig('d-dense', { targetTopK: undefined })).info.sparseTail).toBeUndefined();
      expect(coordinator.createSession(sessionConfig('d-uniform', { sparseTail: 'uniform' })).info.sparseTail).toBe('uniform');
      const classes = { ...sessionConfig('d-classes'), tokenizer: undefined, positions: undefined, numClasses: 10, referenceSize: 20 };
      expect(coordinator.createSession(classes).info.sparseTail).toBeUndefined();
    } finally {
      await coordinator.close();
    }
  });
});

describe('top-k targets completed by the learner, over real sockets', () => {
  let coordinator: Coordinator;
  beforeAll(async () => {
    coordinator = await Coordinator.start();
  });
  afterAll(async () => coordinator.close());

  /** Runs a 2-round session of two sites from fresh models (same seeds every time); returns the sites' weights after it. */
  async function weightsAfter(id: string, overrides: Partial<SessionConfig>): Promise<Float32Array[]> {
    const session = coordinator.createSession(sessionConfig(id, overrides));
    expect(session.info.sparseTail).toBe(overrides.sparseTail ?? 'student');
    const sites = [site('en', 1), site('de', 2)];
    const summaries = await Promise.all(['en', 'de'].map((language, i) =>
      runParticipant({ url: coordinator.url, session: id, token: `secret-${id}-${language}`, data: textParticipantData(sites[i]!), epochs: 1, batchSize: 4 })));
    for (const s of summaries) expect(s.rounds.map((r) => r.receivedTarget)).toEqual([true, true]);
    return sites.flatMap((s) => s.model.variables.map((v) => v.dataSync() as Float32Array));
  }

  it('the same session twice trains to the same weights; with the student tail (the default here) the targets teach something else', async () => {
    const uniform = await weightsAfter('tail-uniform-a', { sparseTail: 'uniform' });
    const again = await weightsAfter('tail-uniform-b', { sparseTail: 'uniform' });
    const student = await weightsAfter('tail-student', {});
    const gap = (a: Float32Array[], b: Float32Array[]) => Math.max(...a.map((v, i) => Math.max(...v.map((x, j) => Math.abs(x - b[i]![j]!)))));
    expect(gap(uniform, again)).toBe(0);
    expect(gap(uniform, student)).toBeGreaterThan(1e-6);
    for (const v of student) expect(v.every(Number.isFinite)).toBe(true);
  });
});
