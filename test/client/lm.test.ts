/**
 * Language models: the per-token losses against golden values (computed once in float64 by an
 * independent script: log-softmax by hand, KL(q ‖ p) summed over the vocabulary, mean over real
 * tokens, × T²), the byte tokenizer, the text loader and its splits, the Transformer and the GRU
 * on the wasm backend (shapes, causality, context limit, training that learns, no tensor leak),
 * bits per byte, sampling, and saving / loading with the tokenizer checked.
 */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../client/backend.js';
import { loadFortuneDomains, loadTextFiles, parseFortunes, splitDomains, toSequences } from '../../client/data/text.js';
import { continueBatch, generateText, pickToken } from '../../client/lm/generate.js';
import { createLanguageModel, parseLmSpec } from '../../client/lm/model.js';
import { BOS, BYTE_TOKENIZER, checkSameTokenizer, decodeTokens, encodeText } from '../../client/lm/tokenizer.js';
import { bitsPerByte, trainLanguageModel } from '../../client/lm/train.js';
import { SeededRandom } from '../../client/data/random.js';
import { createLossMethod, tokenCrossEntropy, tokenKdLoss } from '../../client/losses/index.js';
import { loadLanguageModel, saveLanguageModel } from '../../client/student-io/index.js';

/** Three cookies from Debian's fortunes-min (fortune-mod's "fortunes" file), the fortune file format. */
const FORTUNES_SLICE = `A day for firm decisions!!!!!  Or is it?
%
A few hours grace before the madness begins again.
%
A gift of a flower will soon be made to you.
%
A long-forgotten loved one will appear soon.  Buy the negatives at any price.
%
`;

const close = (a: number, b: number, rel = 1e-5) => expect(Math.abs(a - b)).toBeLessThanOrEqual(rel * Math.max(1, Math.abs(b)));

beforeAll(async () => {
  await selectBackend('wasm');
});

describe('per-token losses (golden values)', () => {
  // 3 tokens × vocab 3; the last token is padding (mask 0).
  const z = [[1, 2, 0.5], [0, -1, 3], [2, 2, 2]];
  const t = [[0.5, 1.5, -0.5], [1, 0, 1], [9, -9, 0]];
  const labels = [1, 2, 0];
  const mask = [1, 1, 0];
  const T = 2;

  it('token-ce: masked mean of −log p(target) over real tokens', () => {
    const v = tokenCrossEntropy(tf.tensor2d(z), tf.tensor1d(labels, 'int32'), tf.tensor1d(mask));
    close(v.dataSync()[0]!, 0.265126343932687);
  });

  it('token-kd: T² · mean over real tokens of KL(teacher ‖ student), not the reverse, padding ignored', () => {
    const q = tf.softmax(tf.div(tf.tensor2d(t), T)) as tf.Tensor2D;
    close(tokenKdLoss(tf.tensor2d(z), q, tf.tensor1d(mask), T).dataSync()[0]!, 0.5556899856849813);
    // KL(student ‖ teacher) would be 0.5221770185771153: the direction is pinned.
    expect(Math.abs(tokenKdLoss(tf.tensor2d(z), q, tf.tensor1d(mask), T).dataSync()[0]! - 0.5221770185771153)).toBeGreaterThan(0.01);
    // Whatever the padding row holds, the value is the same.
    const other = tf.tensor2d([...z.slice(0, 2), [-50, 7, 1]]);
    close(tokenKdLoss(other, q, tf.tensor1d(mask), T).dataSync()[0]!, 0.5556899856849813);
  });

  it('token-kd gradient: T·(softmax(z/T) − q)/M on real tokens, zero on padding, none into the teacher', () => {
    const q = tf.softmax(tf.div(tf.tensor2d(t), T)) as tf.Tensor2D;
    const g = tf.grad((x: tf.Tensor) => tokenKdLoss(x as tf.Tensor2D, q, tf.tensor1d(mask), T))(tf.tensor2d(z));
    const want = [-0.015439921989648608, -0.025456127802284345, 0.04089604979193304, -0.2194001035654629, -0.13307288955658036, 0.35247299312204317, 0, 0, 0];
    Array.from(g.dataSync()).forEach((v, i) => expect(v).toBeCloseTo(want[i]!, 6));
    const gq = tf.grad((x: tf.Tensor) => tokenKdLoss(tf.tensor2d(z), x as tf.Tensor2D, tf.tensor1d(mask), T))(q);
    expect(Array.from(gq.dataSync()).every((v) => v === 0)).toBe(true);
  });

  it('the registry: token-kd with alpha mixes α·token-ce + (1 − α)·soft; token terms refuse a batch without a mask', () => {
    const method = createLossMethod('token-kd', { temperature: T, alpha: 0.25 });
    const inputs = { student: { logits: tf.tensor2d(z), features: {} }, teacher: { logits: tf.tensor2d(t), features: {} }, labels: tf.tensor1d(labels, 'int32'), tokenMask: tf.tensor1d(mask) };
    close(method.compute(inputs).dataSync()[0]!, 0.4830490752469077);
    expect(() => createLossMethod('token-ce').compute({ ...inputs, tokenMask: undefined })).toThrow(/E_CONFIG: loss "token-ce" is a per-token term/);
    expect(() => createLossMethod('token-kd', { temprature: 2 })).toThrow(/E_CONFIG/);
  });
});

describe('byte tokenizer and text', () => {
  it('encodes any text as UTF-8 bytes and back; refuses a mismatched tokenizer by name', () => {
    const text = 'Grüße, ¿qué tal? 猫';
    const bytes = encodeText(text);
    expect(bytes.length).toBe(new TextEncoder().encode(text).length);
    expect(decodeTokens([BOS, ...bytes])).toBe(text);
    expect(() => decodeTokens([300])).toThrow(/E_VOCAB: token 300/);
    expect(() => checkSameTokenizer(BYTE_TOKENIZER, { ...BYTE_TOKENIZER, vocabSize: 258 }, 'participant p1')).toThrow(/E_TOKENIZER: participant p1 uses the tokenizer \{kind=bytes,encoding=utf-8,vocabSize=258,bos=256\}/);
    expect(() => checkSameTokenizer(BYTE_TOKENIZER, { ...BYTE_TOKENIZER }, 'x')).not.toThrow();
  });

  it('reads fortune files by language and users\' files; seeded, disjoint per-domain splits and a mixed held-out set', () => {
    const root = mkdtempSync(join(tmpdir(), 'codistill-fortunes-'));
    writeFileSync(join(root, 'fortunes'), FORTUNES_SLICE);
    mkdirSync(join(root, 'de'));
    writeFileSync(join(root, 'de', 'sprueche'), 'Eins.\n%\nZwei, drei.\n%\nVier für dich.\n');
    writeFileSync(join(root, 'de', 'sprueche.dat'), '\u0000binary index');
    expect(parseFortunes(FORTUNES_SLICE)).toHaveLength(4);
    const domains = loadFortuneDomains(['en', 'de'], root);
    expect(domains.map((d) => [d.name, d.documents.length])).toEqual([['en', 4], ['de', 3]]);
    expect(() => loadFortuneDomains(['it'], root)).toThrow(/E_DATA: no fortunes for "it" .* apt-get install fortunes-it/);
    writeFileSync(join(root, 'latin1.txt'), Buffer.from([0x47, 0x72, 0xfc, 0xdf, 0x65]));
    expect(() => loadTextFiles([join(root, 'latin1.txt')])).toThrow(/E_ENCODING: .*latin1.txt is not valid UTF-8/);
    writeFileSync(join(root, 'mine.txt'), 'First paragraph.\n\nSecond one.\n\n\nThird.');
    expect(loadTextFiles([join(root, 'mine.txt')])[0]).toMatchObject({ name: 'mine', documents: ['First paragraph.', 'Second one.', 'Third.'] });

    const a = splitDomains(domains, { heldOutFraction: 0.25, seed: 3 });
    const b = splitDomains(domains, { heldOutFraction: 0.25, seed: 3 });
    expect(a).toEqual(b);
    for (const [i, d] of a.domains.entries()) {
      expect(d.heldOut.length).toBeGreaterThanOrEqual(1);
      expect(d.heldOut.filter((x) => d.train.includes(x))).toEqual([]);
      expect([...d.train, ...d.heldOut].sort()).toEqual([...domains[i]!.documents].sort());
    }
    expect(a.mixedHeldOut).toEqual(a.domains.flatMap((d) => d.heldOut));
  });

  it('cuts documents into sequences where every byte is a target once; inputs are BOS or the previous byte', () => {
    const s = toSequences(['abcdefg', 'xy'], 4);
    expect(s.count).toBe(3);
    expect(s.bytes).toBe(9);
    expect(Array.from(s.inputs)).toEqual([BOS, 97, 98, 99, 100, 101, 102, 0, BOS, 120, 0, 0]);
    expect(Array.from(s.targets)).toEqual([97, 98, 99, 100, 101, 102, 103, 0, 120, 121, 0, 0]);
    expect(Array.from(s.mask)).toEqual([1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 0, 0]);
  });
});

describe('models on wasm', () => {
  it('parses names and refuses bad ones', () => {
    expect(parseLmSpec('transformer:d=128,l=2,h=4,ctx=64')).toMatchObject({ kind: 'transformer', d: 128, l: 2, h: 4, ctx: 64, vocab: 257 });
    expect(() => parseLmSpec('transformer:d=100,l=2,h=3,ctx=64')).toThrow(/not divisible/);
    expect(() => parseLmSpec('gru:d=64')).toThrow(/lacks l, ctx/);
    expect(() => parseLmSpec('lstm:d=64')).toThrow(/unknown language model/);
  });

  for (const name of ['transformer:d=32,l=2,h=4,ctx=16', 'gru:d=32,l=1,ctx=16']) {
    it(`${name}: logits [batch, positions, vocab], causal, context enforced`, () => {
      const model = createLanguageModel(name, 7);
      const a = tf.tensor2d([[BOS, 10, 20, 30, 40, 50]], undefined, 'int32');
      const b = tf.tensor2d([[BOS, 10, 20, 99, 40, 50]], undefined, 'int32');
      const la = model.logits(a);
      expect(la.shape).toEqual([1, 6, 257]);
      const da = la.arraySync()[0]!;
      const db = model.logits(b).arraySync()[0]!;
      // Positions before the changed token (index 3) see the same logits; position 3 and after do not.
      for (let p = 0; p < 3; p++) da[p]!.forEach((v, k) => expect(v).toBeCloseTo(db[p]![k]!, 5));
      expect(Math.max(...da[3]!.map((v, k) => Math.abs(v - db[3]![k]!)))).toBeGreaterThan(1e-4);
      expect(() => model.logits(tf.zeros([1, 17], 'int32'))).toThrow(/17 tokens is longer than the model's context \(16\)/);
      model.dispose();
    });
  }

  for (const name of ['transformer:d=32,l=2,h=4,ctx=16', 'gru:d=32,l=2,ctx=16']) {
    it(`${name}: incremental decoding gives the full pass's logits at every position, without leaking tensors`, () => {
      const model = createLanguageModel(name, 11);
      const rows = [[BOS, 5, 200, 31, 31, 7, 99, 0, 255, 64], [BOS, 65, 66, 67, 68, 69, 70, 71, 72, 73]];
      const full = model.logits(tf.tensor2d(rows, undefined, 'int32')).arraySync();
      const before = tf.memory().numTensors;
      const state = model.startDecoding(2);
      for (let p = 0; p < rows[0]!.length; p++) {
        const input = tf.tensor1d(rows.map((r) => r[p]!), 'int32');
        const logits = state.next(input);
        const step = logits.arraySync();
        tf.dispose([input, logits]);
        for (let b = 0; b < 2; b++) step[b]!.forEach((v, k) => expect(v).toBeCloseTo(full[b]![p]![k]!, 4));
      }
      expect(state.length).toBe(10);
      state.dispose();
      expect(tf.memory().numTensors).toBe(before);
      // Generation through the cache and through the full window agree (greedy): 6 + 10 ≤ ctx uses the cache, 6 + 12 does not.
      const cached = continueBatch(model, [rows[0]!.slice(0, 6)], { maxTokens: 10, temperature: 0, seed: 1 })[0]!;
      const windowed = continueBatch(model, [rows[0]!.slice(0, 6)], { maxTokens: 12, temperature: 0, seed: 1 })[0]!;
      expect(windowed.slice(0, 10)).toEqual(cached);
      model.dispose();
    });
  }

  it('all-zero weights give uniform predictions: exactly log2(257) bits per byte', () => {
    const model = createLanguageModel('transformer:d=16,l=1,h=2,ctx=8', 1);
    for (const v of model.variables) v.assign(tf.zerosLike(v));
    close(bitsPerByte(model, toSequences(['hello there', 'ok'], 8)), 8.005624549193879);
    model.dispose();
  });

  for (const name of ['transformer:d=32,l=2,h=4,ctx=32', 'gru:d=48,l=1,ctx=32']) {
    it(`${name} learns a text by teacher forcing (bits per byte fall far below uniform) without leaking tensors`, () => {
      const text = toSequences(parseFortunes(FORTUNES_SLICE), 32);
      const model = createLanguageModel(name, 3);
      const before = bitsPerByte(model, text);
      const counts: number[] = [];
      trainLanguageModel(model, text, { steps: 60, batchSize: 8, learningRate: 1e-2, seed: 1, loss: [{ name: 'token-ce', weight: 1 }], progressEvery: 20, onProgress: () => counts.push(tf.memory().numTensors) });
      const after = bitsPerByte(model, text);
      expect(before).toBeGreaterThan(7.5);
      expect(after).toBeLessThan(4.5);
      expect(new Set(counts).size).toBe(1);
      model.dispose();
    }, 120_000);
  }
});

describe('sampling, saving and loading', () => {
  it('greedy picks the likeliest byte; top-k = 1 is greedy; a seed repeats a sample; BOS is never written', () => {
    const logits = new Float32Array(257).fill(0);
    logits[65] = 3;
    logits[256] = 100;
    const random = new SeededRandom(1);
    expect(pickToken(logits, { temperature: 0 }, random)).toBe(65);
    expect(pickToken(logits, { temperature: 1, topK: 1 }, random)).toBe(65);
    const model = createLanguageModel('transformer:d=16,l=1,h=2,ctx=8', 2);
    const o = { maxTokens: 12, temperature: 1, topK: 0, seed: 9 };
    expect(generateText(model, 'ab', o)).toEqual(generateText(model, 'ab', o));
    expect(generateText(model, 'ab', { ...o, temperature: 0 }).tokens).toEqual(continueBatch(model, [[BOS, 97, 98]], { ...o, temperature: 0, topK: 1 })[0]);
    expect(generateText(model, 'ab', o).text.startsWith('ab')).toBe(true);
    expect(generateText(model, 'ab', o).tokens.every((x) => x < 256)).toBe(true);
    model.dispose();
  });

  it('a saved model loads with the same logits; a tokenizer mismatch, a damaged weight file and a classifier folder are refused', () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'codistill-lm-')), 'model');
    const model = createLanguageModel('gru:d=16,l=2,ctx=8', 4);
    const card = saveLanguageModel(dir, model, {
      backend: 'wasm',
      training: { method: 'token-ce', steps: 0, batchSize: 1, learningRate: 0.001, seed: 4, data: { source: 'test', trainBytes: 0 } },
      metrics: {},
    });
    expect(card.tokenizer).toEqual(BYTE_TOKENIZER);
    expect(card.model).toMatchObject({ architecture: 'gru:d=16,l=2,ctx=8', parameters: model.countParams(), context: 8 });
    const tokens = tf.tensor2d([[BOS, 1, 2, 3]], undefined, 'int32');
    const loaded = loadLanguageModel(dir);
    expect(Array.from(loaded.model.logits(tokens).dataSync())).toEqual(Array.from(model.logits(tokens).dataSync()));
    loaded.model.dispose();

    const modelJson = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8'));
    writeFileSync(join(dir, 'model.json'), JSON.stringify({ ...modelJson, tokenizer: { ...modelJson.tokenizer, vocabSize: 50257, kind: 'bpe' } }));
    expect(() => loadLanguageModel(dir)).toThrow(/E_MODEL: .*model.json uses the tokenizer \{kind=bpe,encoding=utf-8,vocabSize=50257,bos=256\}; expected/);
    writeFileSync(join(dir, 'model.json'), JSON.stringify(modelJson));
    const cardJson = JSON.parse(readFileSync(join(dir, 'card.json'), 'utf8'));
    writeFileSync(join(dir, 'card.json'), JSON.stringify({ ...cardJson, tokenizer: { ...cardJson.tokenizer, bos: 0 } }));
    expect(() => loadLanguageModel(dir)).toThrow(/E_CARD: .*card.json uses the tokenizer/);
    writeFileSync(join(dir, 'card.json'), JSON.stringify(cardJson));
    const weights = readFileSync(join(dir, 'group1-shard1of1.bin'));
    weights[10]! ^= 0xff;
    writeFileSync(join(dir, 'group1-shard1of1.bin'), weights);
    expect(() => loadLanguageModel(dir)).toThrow(/E_WEIGHTS: .* does not match the sha256/);
    writeFileSync(join(dir, 'model.json'), JSON.stringify({ format: 'layers-model', modelTopology: {} }));
    expect(() => loadLanguageModel(dir)).toThrow(/it is a classifier \(use codistill predict\)/);
    model.dispose();
  });
});
