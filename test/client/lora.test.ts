/**
 * LoRA students (client/lm/lora.ts) on the wasm backend: the adapted model is the base at
 * initialisation (B = 0); with A and B set, it computes the base whose kernels are
 * W + (α/r)·A·B merged by hand (plain loops here, not the library's merge); a training step moves
 * only the adapters; merge-and-export gives a plain model with the same outputs; adapters are saved
 * beside the base's digest and refused on another base.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../client/backend.js';
import { parseFortunes, toSequences } from '../../client/data/text.js';
import { createLoraModel, loraLayers, mergeLora } from '../../client/lm/lora.js';
import { createLanguageModel, flatWeights, type LanguageModel } from '../../client/lm/model.js';
import { BOS } from '../../client/lm/tokenizer.js';
import { trainLanguageModel } from '../../client/lm/train.js';
import { languageModelDigest, loadLanguageModel, loadLoraAdapters, saveLanguageModel, saveLoraAdapters } from '../../client/student-io/lm-store.js';

const SPEC = 'transformer:d=8,l=2,h=2,ctx=8';
const TOKENS = [[BOS, 72, 101, 108, 108, 111, 33, 10], [BOS, 0, 255, 31, 7, 7, 200, 64]];
const FORTUNES_SLICE = 'A day for firm decisions!!!!!  Or is it?\n%\nA few hours grace before the madness begins again.\n%\nA gift of a flower will soon be made to you.\n%\n';

const logitsOf = (model: LanguageModel) => tf.tidy(() => model.logits(tf.tensor2d(TOKENS, undefined, 'int32'))).arraySync() as number[][][];
const maxAbsDiff = (a: number[][][], b: number[][][]) => Math.max(...a.flat(2).map((v, i) => Math.abs(v - b.flat(2)[i]!)));
const values = (model: LanguageModel) => new Map(model.weights.map(([name, v]) => [name, Array.from(v.dataSync())]));

beforeAll(async () => {
  await selectBackend('wasm');
});

describe('LoRA on the causal Transformer', () => {
  it('chooses the layers by short name; refuses unknown ones, a bad rank and a GRU base', () => {
    expect(loraLayers({ rank: 2, alpha: 4, targets: ['v', 'q'] })).toEqual(['attn/query', 'attn/value']);
    expect(loraLayers({ rank: 2, alpha: 4, targets: ['all'] })).toEqual(['attn/query', 'attn/key', 'attn/value', 'attn/out', 'mlp/in', 'mlp/out']);
    expect(() => loraLayers({ rank: 2, alpha: 4, targets: ['q', 'head'] })).toThrow(/E_CONFIG: LoRA targets "head" are not linear layers; choose from q, k, v, o, mlp-in, mlp-out, all/);
    const base = createLanguageModel(SPEC, 1);
    const gru = createLanguageModel('gru:d=8,l=1,ctx=8', 1);
    try {
      expect(() => createLoraModel(base, { rank: 0, alpha: 1, targets: ['q'] })).toThrow(/rank must be an integer ≥ 1 \(got 0\)/);
      expect(() => createLoraModel(gru, { rank: 2, alpha: 1, targets: ['q'] })).toThrow(/LoRA adapts a Transformer's linear layers; the base is a gru/);
      // q and v of 2 blocks, rank 2: A [8, 2] and B [2, 8] each — 4 adapters × 32 parameters.
      const lora = createLoraModel(base, { rank: 2, alpha: 4, targets: ['q', 'v'] });
      expect(lora.weights.map(([n, v]) => `${n}[${v.shape.join(',')}]`)).toEqual([
        'block0/attn/query/lora_a[8,2]', 'block0/attn/query/lora_b[2,8]', 'block0/attn/value/lora_a[8,2]', 'block0/attn/value/lora_b[2,8]',
        'block1/attn/query/lora_a[8,2]', 'block1/attn/query/lora_b[2,8]', 'block1/attn/value/lora_a[8,2]', 'block1/attn/value/lora_b[2,8]',
      ]);
      expect(lora.countParams()).toBe(128);
      expect(lora.variables.some((v) => base.variables.includes(v))).toBe(false);
      // all linear layers: per block q, k, v, o (8→8), mlp-in (8→32), mlp-out (32→8) at rank 2.
      const all = createLoraModel(base, { rank: 2, alpha: 4, targets: ['all'] });
      expect(all.countParams()).toBe(2 * (4 * 2 * (8 + 8) + 2 * 2 * (8 + 32)));
      lora.dispose();
      all.dispose();
    } finally {
      base.dispose();
      gru.dispose();
    }
  });

  it('equals the base at initialisation (B = 0), in the full pass and in incremental decoding', () => {
    const base = createLanguageModel(SPEC, 3);
    const lora = createLoraModel(base, { rank: 4, alpha: 8, targets: ['all'] }, 5);
    try {
      const std = Math.sqrt(lora.weights.filter(([n]) => n === 'block0/mlp/in/lora_a').flatMap(([, v]) => Array.from(v.dataSync())).reduce((a, x) => a + x * x, 0) / (8 * 4));
      expect(std).toBeGreaterThan(0.1); // A is random (σ = 1/√(3·8) ≈ 0.2), B zero
      for (const [name, v] of lora.weights) if (name.endsWith('lora_b')) expect(v.dataSync().every((x) => x === 0)).toBe(true);
      expect(maxAbsDiff(logitsOf(lora), logitsOf(base))).toBe(0);
      const state = lora.startDecoding(2);
      const full = logitsOf(base);
      for (let p = 0; p < TOKENS[0]!.length; p++) {
        const step = state.next(tf.tensor1d(TOKENS.map((row) => row[p]!), 'int32'));
        const rows = step.arraySync();
        step.dispose();
        rows.forEach((row, r) => row.forEach((v, k) => expect(v).toBeCloseTo(full[r]![p]![k]!, 4)));
      }
      state.dispose();
    } finally {
      lora.dispose();
      base.dispose();
    }
  });

  it('with A and B set, equals the base with W + (α/r)·A·B merged by hand; mergeLora and its saved copy give the same outputs', () => {
    const rank = 2;
    const alpha = 3;
    const base = createLanguageModel(SPEC, 4);
    const lora = createLoraModel(base, { rank, alpha, targets: ['q', 'v', 'mlp-out'] }, 6);
    // A[i][k] = sin(i + 2k + offset)/2, B[k][j] = cos(3k − j + offset)/3: non-zero, different per layer.
    let offset = 0;
    for (const [, adapter] of lora.adapters) {
      offset++;
      const [inputs] = adapter.a.shape;
      const outputs = adapter.b.shape[1];
      const a = Array.from({ length: inputs }, (_, i) => Array.from({ length: rank }, (_, k) => Math.sin(i + 2 * k + offset) / 2));
      const b = Array.from({ length: rank }, (_, k) => Array.from({ length: outputs }, (_, j) => Math.cos(3 * k - j + offset) / 3));
      (adapter.a as tf.Variable).assign(tf.tensor2d(a));
      (adapter.b as tf.Variable).assign(tf.tensor2d(b));
    }
    // The hand merge, in float64 loops: W'[i][j] = W[i][j] + (α/r)·Σ_k A[i][k]·B[k][j].
    const byHand = createLanguageModel(SPEC, 4);
    const merged = mergeLora(lora);
    const dir = mkdtempSync(join(tmpdir(), 'codistill-lora-merged-'));
    try {
      for (const [name, v] of byHand.weights) {
        const adapter = lora.adapters.get(name.replace(/\/kernel$/, ''));
        if (adapter === undefined || !name.endsWith('/kernel')) continue;
        const w = v.arraySync() as number[][];
        const a = adapter.a.arraySync();
        const b = adapter.b.arraySync();
        const out = w.map((row, i) => row.map((x, j) => x + (alpha / rank) * a[i]!.reduce((s, aik, k) => s + aik * b[k]![j]!, 0)));
        v.assign(tf.tensor2d(out));
      }
      const adapted = logitsOf(lora);
      expect(maxAbsDiff(adapted, logitsOf(base))).toBeGreaterThan(1e-3); // the adapters do change the outputs
      expect(maxAbsDiff(adapted, logitsOf(byHand))).toBeLessThan(1e-5);
      expect(maxAbsDiff(logitsOf(merged), adapted)).toBeLessThan(1e-5);
      expect(merged.countParams()).toBe(base.countParams());
      saveLanguageModel(dir, merged, { backend: 'wasm', training: { method: 'merged LoRA', steps: 0, batchSize: 1, learningRate: 0, seed: 0, data: { source: 'test', trainBytes: 0 } }, metrics: {} });
      const loaded = loadLanguageModel(dir);
      expect(maxAbsDiff(logitsOf(loaded.model), adapted)).toBeLessThan(1e-5);
      loaded.model.dispose();
    } finally {
      for (const m of [lora, base, byHand, merged]) m.dispose();
    }
  });

  it('a training step moves only the adapters: B first (A gets no gradient while B = 0), then both; the base stays bit for bit; no tensor leak', () => {
    const text = toSequences(parseFortunes(FORTUNES_SLICE), 8);
    const base = createLanguageModel(SPEC, 7);
    const lora = createLoraModel(base, { rank: 2, alpha: 4, targets: ['q', 'v'] }, 8);
    try {
      const baseBefore = values(base);
      const before = values(lora);
      const options = { steps: 1, batchSize: 4, learningRate: 1e-2, seed: 1, loss: [{ name: 'token-ce', weight: 1 }] };
      trainLanguageModel(lora, text, options);
      const tensors = tf.memory().numTensors;
      const once = values(lora);
      for (const [name, v] of once) {
        const changed = v.some((x, i) => x !== before.get(name)![i]);
        expect([name, changed]).toEqual([name, name.endsWith('lora_b')]);
      }
      trainLanguageModel(lora, text, { ...options, seed: 2 });
      expect(tf.memory().numTensors).toBe(tensors);
      for (const [name, v] of values(lora)) expect([name, v.some((x, i) => x !== once.get(name)![i])]).toEqual([name, true]);
      for (const [name, v] of values(base)) expect([name, v.every((x, i) => x === baseBefore.get(name)![i])]).toEqual([name, true]);
    } finally {
      lora.dispose();
      base.dispose();
    }
  });

  it('saves only the adapters beside the base digest; loads them onto that base, refuses another base or damaged adapters', () => {
    const base = createLanguageModel(SPEC, 9);
    const other = createLanguageModel(SPEC, 10);
    const lora = createLoraModel(base, { rank: 2, alpha: 4, targets: ['q', 'v'] }, 11);
    const dir = mkdtempSync(join(tmpdir(), 'codistill-lora-'));
    try {
      for (const [, v] of lora.weights) v.assign(tf.tidy(() => tf.randomNormal(v.shape, 0, 0.3, 'float32', 3)));
      const file = saveLoraAdapters(dir, lora, { training: 'test' });
      expect(file.base.digest).toBe(languageModelDigest(base));
      expect(readFileSync(join(dir, 'adapters.bin')).byteLength).toBe(lora.countParams() * 4);
      const loaded = loadLoraAdapters(dir, base);
      expect(Array.from(flatWeights(loaded))).toEqual(Array.from(flatWeights(lora)));
      expect(maxAbsDiff(logitsOf(loaded), logitsOf(lora))).toBe(0);
      loaded.dispose();
      expect(() => loadLoraAdapters(dir, other)).toThrow(
        new RegExp(`E_MODEL: .*adapters.json: these adapters were trained on the base ${languageModelDigest(base)}; the base given is ${languageModelDigest(other)}`),
      );
      const bin = readFileSync(join(dir, 'adapters.bin'));
      bin[5] = bin[5]! ^ 1;
      writeFileSync(join(dir, 'adapters.bin'), bin);
      expect(() => loadLoraAdapters(dir, base)).toThrow(/E_WEIGHTS: .*adapters.bin does not match the sha256/);
    } finally {
      for (const m of [lora, base, other]) m.dispose();
    }
  });
});
