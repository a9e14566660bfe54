/**
 * Text from a language model, one byte at a time: greedy (temperature 0), or sampling from
 * softmax(z / T) restricted to the k most likely tokens (top-k; Fan et al. 2018). The model
 * reads the last `ctx` tokens (BOS, the prompt, what it has written); no key-value cache, so a
 * token costs one forward pass over at most ctx positions.
 */
import * as tf from '@tensorflow/tfjs';
import { SeededRandom } from '../data/random.js';
import type { LanguageModel } from './model.js';
import { BOS, decodeTokens, encodeText } from './tokenizer.js';

export interface SamplingOptions {
  maxTokens: number;
  /** 0: greedy (the most likely token). */
  temperature: number;
  /** Sample only among the k most likely tokens; 0 or undefined: all. */
  topK?: number;
  seed: number;
}

export function checkSamplingOptions(o: SamplingOptions): void {
  if (!Number.isInteger(o.maxTokens) || o.maxTokens < 0) throw new RangeError(`E_CONFIG: max tokens must be a non-negative integer; got ${o.maxTokens}`);
  if (!(o.temperature >= 0) || !Number.isFinite(o.temperature)) throw new RangeError(`E_CONFIG: temperature must be a finite number ≥ 0 (0 is greedy); got ${o.temperature}`);
  if (o.topK !== undefined && (!Number.isInteger(o.topK) || o.topK < 0)) throw new RangeError(`E_CONFIG: top-k must be a non-negative integer (0: no limit); got ${o.topK}`);
}

/** One next token from a row of logits (the BOS token is never chosen). */
export function pickToken(logits: Float32Array | number[], options: Pick<SamplingOptions, 'temperature' | 'topK'>, random: SeededRandom): number {
  const n = Math.min(logits.length, BOS); // byte tokens only
  if (options.temperature === 0) {
    let best = 0;
    for (let i = 1; i < n; i++) if (logits[i]! > logits[best]!) best = i;
    return best;
  }
  let order = Array.from({ length: n }, (_, i) => i);
  const k = options.topK ?? 0;
  if (k > 0 && k < n) order = order.sort((a, b) => logits[b]! - logits[a]!).slice(0, k);
  let max = -Infinity;
  for (const i of order) max = Math.max(max, logits[i]! / options.temperature);
  const weights = order.map((i) => Math.exp(logits[i]! / options.temperature - max));
  const total = weights.reduce((a, b) => a + b, 0);
  let u = random.next() * total;
  for (let j = 0; j < order.length; j++) {
    u -= weights[j]!;
    if (u < 0) return order[j]!;
  }
  return order[order.length - 1]!;
}

/**
 * Continues each prompt (token arrays, BOS included, all of one length) by `maxTokens` tokens, in
 * one batch; returns the new tokens of each row.
 */
export function continueBatch(model: LanguageModel, prompts: number[][], options: SamplingOptions): number[][] {
  checkSamplingOptions(options);
  const random = new SeededRandom(options.seed);
  const rows = prompts.map((p) => [...p]);
  const added: number[][] = prompts.map(() => []);
  const ctx = model.spec.ctx;
  const promptLength = rows[0]?.length ?? 0;
  if (rows.some((r) => r.length !== promptLength)) throw new RangeError('E_SHAPE: prompts of one batch must have one length');
  if (options.maxTokens === 0) return added;
  if (promptLength > 0 && promptLength + options.maxTokens - 1 <= ctx) {
    // Everything fits in the context: decode incrementally (cached keys and values, or the GRU's
    // state), one position per token instead of the whole window again.
    const state = model.startDecoding(rows.length);
    try {
      let feed = rows.map((r) => r[0]!);
      for (let position = 0; ; position++) {
        const input = tf.tensor1d(feed, 'int32');
        const logits = state.next(input);
        input.dispose();
        if (position < promptLength - 1) {
          logits.dispose();
          feed = rows.map((r) => r[position + 1]!);
          continue;
        }
        const values = logits.dataSync() as Float32Array;
        const vocab = logits.shape[1];
        logits.dispose();
        feed = rows.map((row, i) => {
          const token = pickToken(values.subarray(i * vocab, (i + 1) * vocab), options, random);
          row.push(token);
          added[i]!.push(token);
          return token;
        });
        if (added[0]!.length >= options.maxTokens) break;
      }
    } finally {
      state.dispose();
    }
    return added;
  }
  for (let step = 0; step < options.maxTokens; step++) {
    const windows = rows.map((r) => r.slice(-ctx));
    const length = windows[0]!.length;
    if (windows.some((w) => w.length !== length)) throw new RangeError('E_SHAPE: prompts of one batch must have one length');
    const last = tf.tidy(() => {
      const logits = model.logits(tf.tensor2d(windows.flat(), [rows.length, length], 'int32'));
      return tf.reshape(tf.slice(logits, [0, length - 1, 0], [rows.length, 1, logits.shape[2]]), [rows.length, logits.shape[2]]);
    });
    const values = last.dataSync() as Float32Array;
    const vocab = last.shape[1]!;
    last.dispose();
    rows.forEach((row, i) => {
      const token = pickToken(values.subarray(i * vocab, (i + 1) * vocab), options, random);
      row.push(token);
      added[i]!.push(token);
    });
  }
  return added;
}

/** The prompt followed by the model's continuation, as text. */
export function generateText(model: LanguageModel, prompt: string, options: SamplingOptions): { text: string; tokens: number[] } {
  const tokens = continueBatch(model, [[BOS, ...encodeText(prompt)]], options)[0]!;
  return { text: prompt + decodeTokens(tokens), tokens };
}
