/**
 * FedAvg of LoRA adapters over real sockets: two language-model sites adapt one frozen base, a
 * coordinator on 127.0.0.1 runs the `fedavg` strategy, and each round every site continues from
 * the sample-weighted mean of what the sites uploaded (McMahan et al. 2017: Σ n_k·w_k / Σ n_k),
 * checked here against the uploads themselves; only the adapters travel, the base never changes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../client/backend.js';
import { toSequences } from '../../client/data/text.js';
import { createLoraModel } from '../../client/lm/lora.js';
import { createLanguageModel, flatWeights } from '../../client/lm/model.js';
import { referenceWindows, textParticipantData, type TextSite } from '../../client/lm/site.js';
import { BYTE_TOKENIZER, BYTE_VOCAB } from '../../client/lm/tokenizer.js';
import { runParticipant } from '../../client/participant.js';
import type { Share } from '../../client/procedures/index.js';
import { Coordinator } from '../../server/coordinator.js';
import type { SessionConfig } from '../../server/session-config.js';

const EN = ['A day for firm decisions!!!!!  Or is it?', 'A few hours grace before the madness begins again.', 'A gift of a flower will soon be made to you.', 'A fool and his money are soon parted.', 'A journey of a thousand miles begins with a single step.'];
const DE = ['Ein Mathematikprofessor trägt sein Fahrrad über den Universitätsplatz.', 'Aha, dann war ich also noch nicht essen gewesen.'];
const POSITIONS = 16;

function config(id: string, algorithm: string, ids: string[]): SessionConfig {
  return {
    id, algorithm, rounds: 2, participants: ids.map((p) => ({ id: p, token: `secret-${p}` })), minParticipants: ids.length, numClasses: BYTE_VOCAB,
    referenceSize: 0, referencePerRound: 0, temperature: 1, alpha: 1, uploadDtype: 'float32', roundTimeoutMs: 60_000, trainTimeoutMs: 60_000,
    onRoundFailure: 'stop', seed: 1, maxMessageBytes: 4 << 20,
  };
}

beforeAll(async () => {
  await selectBackend('wasm');
});

describe('FedAvg of LoRA adapters through the coordinator', () => {
  let coordinator: Coordinator;
  beforeAll(async () => {
    coordinator = await Coordinator.start();
  });
  afterAll(async () => coordinator.close());

  it('each round every site holds Σ n_k·A_k / Σ n_k of the uploaded adapters; the uploads are the adapters only; the base is untouched', async () => {
    const base = createLanguageModel(`transformer:d=16,l=1,h=2,ctx=${POSITIONS}`, 5);
    const baseBefore = flatWeights(base);
    const reference = referenceWindows([...EN, ...DE], POSITIONS);
    const sites: TextSite[] = [EN, DE].map((docs, i) => ({
      model: createLoraModel(base, { rank: 2, alpha: 4, targets: ['q', 'v'] }, 10 + i), tokenizer: BYTE_TOKENIZER,
      train: toSequences(docs, POSITIONS), reference, steps: 3, learningRate: 1e-2, seed: 20 + i,
    }));
    const [en, de] = sites as [TextSite, TextSite];
    // Different amounts of private text, so the weights are not ½ and ½.
    expect(en.train.count).not.toBe(de.train.count);
    const session = coordinator.createSession(config('lora-fedavg', 'fedavg', ['en', 'de']));
    const ended = new Promise((resolve) => session.once('end', resolve));
    const uploads: Record<string, Share[]> = { en: [], de: [] };
    const after: Record<string, Float32Array[]> = { en: [], de: [] };
    try {
      await Promise.all(['en', 'de'].map((name, i) => runParticipant({
        url: coordinator.url, session: 'lora-fedavg', token: `secret-${name}`, data: textParticipantData(sites[i]!), epochs: 1, batchSize: 4,
        uploadHook: { transform: (share) => (uploads[name]!.push(share), share) },
        onRound: () => void after[name]!.push(flatWeights(sites[i]!.model)),
      })));
      await ended;
      for (let round = 0; round < 2; round++) {
        const [a, b] = [uploads.en![round]!, uploads.de![round]!];
        expect(a.values).toHaveLength(sites[0]!.model.countParams());
        expect([a.sampleCount, b.sampleCount]).toEqual([en.train.count, de.train.count]);
        // The sites trained apart: their uploads differ.
        expect(a.values.some((x, k) => Math.abs(x - b.values[k]!) > 1e-6)).toBe(true);
        const n = a.sampleCount! + b.sampleCount!;
        for (const name of ['en', 'de']) {
          const got = after[name]![round]!;
          let worst = 0;
          got.forEach((x, k) => (worst = Math.max(worst, Math.abs(x - (a.sampleCount! * a.values[k]! + b.sampleCount! * b.values[k]!) / n))));
          expect(worst).toBeLessThan(1e-6);
        }
      }
      expect(Array.from(flatWeights(base))).toEqual(Array.from(baseBefore));
    } finally {
      for (const s of sites) s.model.dispose();
      base.dispose();
    }
  });

  it('refuses a language-model site in a session of class knowledge, naming what it takes part in', async () => {
    const base = createLanguageModel(`transformer:d=16,l=1,h=2,ctx=${POSITIONS}`, 5);
    const site: TextSite = {
      model: createLoraModel(base, { rank: 2, alpha: 4, targets: ['q'] }), tokenizer: BYTE_TOKENIZER,
      train: toSequences(EN, POSITIONS), reference: referenceWindows(EN, POSITIONS), steps: 1, learningRate: 1e-2, seed: 1,
    };
    coordinator.createSession(config('lora-fd', 'fd', ['en', 'de']));
    try {
      await expect(runParticipant({ url: coordinator.url, session: 'lora-fd', token: 'secret-en', data: textParticipantData(site), epochs: 1, batchSize: 4 }))
        .rejects.toThrow(/session lora-fd exchanges class-logits; this participant is a language-model site and takes part only in sessions of reference-token-predictions or weights/);
    } finally {
      site.model.dispose();
      base.dispose();
    }
  });
});
