/**
 * Language models: the causal Transformer's training step (teacher forcing, token-ce, Adam) in
 * tokens/s and GFLOP/s for each size, as a share of the backend's matmul peak measured in the
 * same run (before and after, the better kept, as in training.ts), and generation latency per
 * token (greedy, no key-value cache: one forward pass over the window per token).
 *
 * FLOPs count the matmuls only (client/lm/model.ts forwardFlopsPerToken): embedding one-hot
 * product, Q/K/V/output projections, attention scores and values, MLP, head. A training step is
 * counted as 3× the forward pass (forward, weight gradients, input gradients) less the one-hot
 * embedding's input gradient, which tfjs does not compute; elementwise work (LayerNorm, GELU,
 * softmax, Adam) is left out, so the rate is a lower bound on the work done.
 */
import * as tf from '@tensorflow/tfjs';
import { toSequences } from '../client/data/text.js';
import { generateText } from '../client/lm/generate.js';
import { createLanguageModel } from '../client/lm/model.js';
import { trainLanguageModel } from '../client/lm/train.js';
import { matmulPeak } from './flops.js';
import { figure, fmt, median, type Benchmark, type Figure, type Table } from './harness.js';

const BATCH = 16;
const CONTEXT = 64;
/** Text to train on: the sizes of a step matter here, not its content. */
const TEXT = Array.from({ length: 64 }, (_, i) => `Line ${i}: the quick brown fox jumps over the lazy dog, and then it rests for a while near the river bank.`);

export const lmBenchmark: Benchmark = {
  id: 'lm',
  title: 'Language models: training step and generation',
  async run({ quick, log }) {
    const backend = tf.getBackend();
    log(`  backend ${backend}; measuring the matmul peak`);
    const firstPeak = matmulPeak(log);
    const sizes = quick ? ['transformer:d=64,l=2,h=4,ctx=64', 'transformer:d=128,l=2,h=4,ctx=64'] : ['transformer:d=64,l=2,h=4,ctx=64', 'transformer:d=128,l=2,h=4,ctx=64', 'transformer:d=192,l=4,h=6,ctx=64'];
    const steps = quick ? 3 : 6;
    const data = toSequences(TEXT, CONTEXT);
    const rows: Array<{ name: string; params: number; msPerStep: number; tokensPerS: number; gflops: number; msPerToken: number }> = [];
    for (const name of sizes) {
      const model = createLanguageModel(name, 1);
      const tokens = BATCH * CONTEXT;
      const forward = model.forwardFlopsPerToken(CONTEXT);
      const trainingFlops = tokens * (3 * forward - 2 * model.spec.vocab * model.spec.d);
      const times: number[] = [];
      trainLanguageModel(model, data, { steps: 2, batchSize: BATCH, learningRate: 1e-3, seed: 1, loss: [{ name: 'token-ce', weight: 1 }] });
      for (let i = 0; i < steps; i++) {
        const t0 = performance.now();
        trainLanguageModel(model, data, { steps: 1, batchSize: BATCH, learningRate: 1e-3, seed: 2 + i, loss: [{ name: 'token-ce', weight: 1 }] });
        times.push(performance.now() - t0);
      }
      const ms = median(times);
      const maxTokens = quick ? 16 : 32;
      generateText(model, 'The ', { maxTokens: 4, temperature: 0, seed: 1 });
      const g0 = performance.now();
      generateText(model, 'The ', { maxTokens, temperature: 0, seed: 1 });
      const msPerToken = (performance.now() - g0) / maxTokens;
      const row = { name, params: model.countParams(), msPerStep: ms, tokensPerS: tokens / (ms / 1000), gflops: trainingFlops / (ms / 1000) / 1e9, msPerToken };
      rows.push(row);
      log(`  ${name}: ${fmt(row.params)} parameters, ${fmt(ms)} ms/step, ${fmt(row.tokensPerS)} tokens/s, ${fmt(row.gflops)} GFLOP/s; generation ${fmt(msPerToken)} ms/token`);
      model.dispose();
    }
    const secondPeak = matmulPeak(log);
    const peak = secondPeak.gflops > firstPeak.gflops ? secondPeak : firstPeak;
    const tables: Table[] = [
      {
        caption: `Transformer training step on ${backend}: ${BATCH} sequences × ${CONTEXT} tokens, token-ce, Adam (median of ${steps} steps); generation: greedy, ${quick ? 16 : 32} tokens after a 4-byte prompt`,
        columns: ['model', 'parameters', 'ms / step', 'tokens/s', 'GFLOP/s', '% of matmul peak', 'generation ms / token'],
        rows: rows.map((r) => [r.name, fmt(r.params), fmt(r.msPerStep), fmt(r.tokensPerS), fmt(r.gflops), fmt((100 * r.gflops) / peak.gflops), fmt(r.msPerToken)]),
      },
      { ...peak.table, caption: `${peak.table.caption}; before and after the models, the better kept (${fmt(firstPeak.gflops)} / ${fmt(secondPeak.gflops)})` },
    ];
    const figures: Figure[] = rows.map((r) =>
      figure({
        id: `lm-step-${r.name}`,
        label: `${r.name} training step GFLOP/s vs the matmul peak`,
        value: r.gflops,
        unit: 'GFLOP/s',
        baseline: { label: `matmul peak (${peak.shape})`, value: peak.gflops, unit: 'GFLOP/s' },
        target: { on: 'ratio', op: '>=', goal: 0.5 },
      }),
    );
    return {
      method: [
        `Causal Transformers (client/lm/model.ts) of ${sizes.length} sizes, trained on ${backend} by trainLanguageModel: ${BATCH}×${CONTEXT} tokens per step.`,
        'GFLOP/s counts matmuls only (3× the forward pass, less the one-hot embedding\'s input gradient); the peak is tfjs\'s plain matmul on square matrices in the same run.',
        'Generation: greedy, one forward pass over the whole window per new token (no key-value cache).',
      ],
      tables,
      figures,
      notes: [],
    };
  },
};
