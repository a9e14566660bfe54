/**
 * Small language models in tfjs ops, so that they train on every backend (wasm included):
 *
 * - `transformer:d=D,l=L,h=H,ctx=C`: a causal decoder-only Transformer (GPT-2's layout, Radford
 *   et al. 2019): token + learned position embeddings, L pre-norm blocks
 *   x ← x + Attn(LN(x)),  x ← x + MLP(LN(x)) with causal multi-head self-attention (H heads) and
 *   a 4D GELU MLP, a final LayerNorm and a linear head to the vocabulary.
 * - `gru:d=D,l=L,ctx=C`: token embedding, L GRU layers (Cho et al. 2014) of width D, linear head.
 *
 * Both map input tokens [batch, positions] (int32, positions ≤ C) to next-token logits
 * [batch, positions, vocab]. Token embeddings are a one-hot matmul rather than a gather: tfjs's
 * gather gradient needs UnsortedSegmentSum, which the wasm backend lacks, and at vocab 257 the
 * matmul costs no more than the output head.
 */
import * as tf from '@tensorflow/tfjs';
import { CodedError } from '../../protocol/errors.js';
import { BYTE_VOCAB } from './tokenizer.js';

export type LmKind = 'transformer' | 'gru';

export interface LmSpec {
  kind: LmKind;
  /** Width: the embedding and residual size (Transformer), the hidden size (GRU). */
  d: number;
  /** Blocks (Transformer) or stacked GRU layers. */
  l: number;
  /** Attention heads (Transformer only; d divisible by h). */
  h: number;
  /** Context: the longest input the model takes. */
  ctx: number;
  vocab: number;
}

export const LM_NAMES_HELP = 'transformer:d=D,l=L,h=H,ctx=C | gru:d=D,l=L,ctx=C';

export class LmSpecError extends CodedError<'E_CONFIG'> {
  override readonly name = 'LmSpecError';
  constructor(message: string) {
    super('E_CONFIG', message);
  }
}

/** Parses a model name such as `transformer:d=128,l=2,h=4,ctx=64`; every field is required. */
export function parseLmSpec(name: string, vocab = BYTE_VOCAB): LmSpec {
  const match = /^(transformer|gru):(.*)$/.exec(name);
  if (match === null) throw new LmSpecError(`unknown language model "${name}"; expected ${LM_NAMES_HELP}`);
  const kind = match[1] as LmKind;
  const fields = new Map<string, number>();
  for (const part of match[2]!.split(',')) {
    const kv = /^(d|l|h|ctx)=(\d+)$/.exec(part.trim());
    if (kv === null) throw new LmSpecError(`"${name}": "${part}" is not one of d=, l=, h=, ctx= with a positive integer`);
    fields.set(kv[1]!, Number(kv[2]));
  }
  const needed = kind === 'transformer' ? ['d', 'l', 'h', 'ctx'] : ['d', 'l', 'ctx'];
  const missing = needed.filter((k) => !fields.has(k));
  if (missing.length > 0) throw new LmSpecError(`"${name}" lacks ${missing.join(', ')} (${LM_NAMES_HELP})`);
  const spec: LmSpec = { kind, d: fields.get('d')!, l: fields.get('l')!, h: fields.get('h') ?? 1, ctx: fields.get('ctx')!, vocab };
  for (const k of ['d', 'l', 'h', 'ctx'] as const) if (spec[k] < 1) throw new LmSpecError(`"${name}": ${k} must be at least 1`);
  if (kind === 'transformer' && spec.d % spec.h !== 0) throw new LmSpecError(`"${name}": d=${spec.d} is not divisible by h=${spec.h}`);
  return spec;
}

export function lmSpecName(spec: LmSpec): string {
  return spec.kind === 'transformer' ? `transformer:d=${spec.d},l=${spec.l},h=${spec.h},ctx=${spec.ctx}` : `gru:d=${spec.d},l=${spec.l},ctx=${spec.ctx}`;
}

export interface LanguageModel {
  readonly spec: LmSpec;
  /** Weights by stable name, in a fixed order (the save order). */
  readonly weights: ReadonlyArray<readonly [string, tf.Variable]>;
  readonly variables: tf.Variable[];
  /** Next-token logits [batch, positions, vocab] for int32 tokens [batch, positions]. */
  logits(tokens: tf.Tensor2D): tf.Tensor3D;
  countParams(): number;
  /**
   * Incremental decoding: a state for `batch` rows, then one call per position with that
   * position's token of each row ([batch] int32), giving the next-token logits [batch, vocab] —
   * the last row of what `logits` gives on the whole prefix, computed from cached keys and values
   * (Transformer) or the hidden state (GRU) instead of the whole window again. At most ctx positions.
   */
  startDecoding(batch: number): DecodingState;
  /** Multiply-adds ×2 of one forward pass per token at `positions` (matmuls only), for the bench's GFLOP/s. */
  forwardFlopsPerToken(positions: number): number;
  dispose(): void;
}

/**
 * A low-rank update of one linear layer (LoRA, Hu et al. 2021; client/lm/lora.ts): the layer computes
 * x·W + b + scale·(x·A)·B instead of x·W + b, with A [in, r] and B [r, out] in the kernel's
 * orientation (the paper's A ∈ R^{r×in} and B ∈ R^{out×r}, transposed).
 */
export interface LinearAdapter {
  a: tf.Tensor2D;
  b: tf.Tensor2D;
  scale: number;
}

/** Adapters by linear layer, named as the layer's weights are without `/kernel` (e.g. `block0/attn/query`). */
export type LinearAdapters = ReadonlyMap<string, LinearAdapter>;

export interface DecodingState {
  /** Positions consumed so far. */
  readonly length: number;
  /** Consumes one token per row; returns the next-token logits [batch, vocab] (the caller disposes them). */
  next(tokens: tf.Tensor1D): tf.Tensor2D;
  dispose(): void;
}

class WeightBuilder {
  readonly weights: Array<[string, tf.Variable]> = [];
  private n = 0;
  constructor(private readonly seed: number) {}
  normal(name: string, shape: number[], std: number): tf.Variable {
    return this.add(name, tf.tidy(() => tf.randomNormal(shape, 0, std, 'float32', this.seed + 7919 * ++this.n)));
  }
  constant(name: string, shape: number[], value: number): tf.Variable {
    return this.add(name, tf.fill(shape, value));
  }
  private add(name: string, initial: tf.Tensor): tf.Variable {
    const v = tf.variable(initial, true);
    initial.dispose();
    this.weights.push([name, v]);
    return v;
  }
}

function layerNorm(x: tf.Tensor2D, gain: tf.Tensor, bias: tf.Tensor): tf.Tensor2D {
  const { mean, variance } = tf.moments(x, -1, true);
  return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, 1e-5))), gain), bias);
}

/** GELU, tanh form (Hendrycks & Gimpel 2016): 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))). */
function gelu(x: tf.Tensor): tf.Tensor {
  // x·x·x rather than pow: tfjs's Pow gradient computes a log and a select on every element.
  const inner = tf.mul(tf.add(x, tf.mul(tf.mul(tf.mul(x, x), x), 0.044715)), Math.sqrt(2 / Math.PI));
  return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner), 1));
}

function embed(tokens: tf.Tensor2D, table: tf.Variable, vocab: number): tf.Tensor2D {
  // int32 one-hot, then a cast: the wasm backend's OneHot with dtype float32 writes the int32 bit
  // pattern of 1 (1.4e-45 as a float), which would make every token's embedding zero.
  return tf.matMul(tf.cast(tf.oneHot(tf.reshape(tokens, [-1]) as tf.Tensor1D, vocab), 'float32'), table);
}

function checkTokens(tokens: tf.Tensor2D, spec: LmSpec): void {
  if (tokens.rank !== 2) throw new LmSpecError(`a language model takes tokens [batch, positions]; got shape [${tokens.shape.join(',')}]`);
  if (tokens.shape[1] > spec.ctx) throw new LmSpecError(`a sequence of ${tokens.shape[1]} tokens is longer than the model's context (${spec.ctx}); cut it to at most ${spec.ctx}`);
}

/** The Transformer's linear layers a LoRA adapter may target, per block: name (without block) and [in, out]. */
export const TRANSFORMER_LINEAR_LAYERS = ['attn/query', 'attn/key', 'attn/value', 'attn/out', 'mlp/in', 'mlp/out'] as const;
export type TransformerLinearLayer = (typeof TRANSFORMER_LINEAR_LAYERS)[number];

export class CausalTransformer implements LanguageModel {
  readonly weights: Array<[string, tf.Variable]>;
  readonly variables: tf.Variable[];
  private readonly w: Map<string, tf.Variable>;
  /** [ctx, ctx]: 0 where position j ≤ i may be attended, −1e9 above the diagonal. */
  private readonly causalMask: tf.Tensor2D;

  constructor(readonly spec: LmSpec, seed: number) {
    const { d, l, vocab, ctx } = spec;
    const b = new WeightBuilder(seed);
    // GPT-2's initialisation: N(0, 0.02), residual projections scaled by 1/√(2L).
    const residualStd = 0.02 / Math.sqrt(2 * l);
    b.normal('token_embedding', [vocab, d], 0.02);
    b.normal('position_embedding', [ctx, d], 0.01);
    for (let i = 0; i < l; i++) {
      b.constant(`block${i}/ln1/gain`, [d], 1);
      b.constant(`block${i}/ln1/bias`, [d], 0);
      for (const part of ['query', 'key', 'value']) {
        b.normal(`block${i}/attn/${part}/kernel`, [d, d], 0.02);
        b.constant(`block${i}/attn/${part}/bias`, [d], 0);
      }
      b.normal(`block${i}/attn/out/kernel`, [d, d], residualStd);
      b.constant(`block${i}/attn/out/bias`, [d], 0);
      b.constant(`block${i}/ln2/gain`, [d], 1);
      b.constant(`block${i}/ln2/bias`, [d], 0);
      b.normal(`block${i}/mlp/in/kernel`, [d, 4 * d], 0.02);
      b.constant(`block${i}/mlp/in/bias`, [4 * d], 0);
      b.normal(`block${i}/mlp/out/kernel`, [4 * d, d], residualStd);
      b.constant(`block${i}/mlp/out/bias`, [d], 0);
    }
    b.constant('ln_final/gain', [d], 1);
    b.constant('ln_final/bias', [d], 0);
    b.normal('head/kernel', [d, vocab], 0.02);
    b.constant('head/bias', [vocab], 0);
    this.weights = b.weights;
    this.variables = this.weights.map(([, v]) => v);
    this.w = new Map(this.weights);
    this.causalMask = tf.tidy(() => tf.mul(tf.sub(1, tf.linalg.bandPart(tf.ones([ctx, ctx]), -1, 0)), -1e9) as tf.Tensor2D);
  }

  private get(name: string): tf.Variable {
    return this.w.get(name)!;
  }

  /** The [in, out] of a linear layer of each block. */
  linearShape(layer: TransformerLinearLayer): [number, number] {
    const { d } = this.spec;
    return layer === 'mlp/in' ? [d, 4 * d] : layer === 'mlp/out' ? [4 * d, d] : [d, d];
  }

  /** x·W + b of the linear layer `name` (e.g. block0/attn/query), plus its low-rank update when adapted. */
  private linear(x: tf.Tensor2D, name: string, adapters: LinearAdapters | undefined): tf.Tensor2D {
    const y = tf.add(tf.matMul(x, this.get(`${name}/kernel`)), this.get(`${name}/bias`)) as tf.Tensor2D;
    const adapter = adapters?.get(name);
    return adapter === undefined ? y : tf.add(y, tf.mul(tf.matMul(tf.matMul(x, adapter.a), adapter.b), adapter.scale));
  }

  logits(tokens: tf.Tensor2D): tf.Tensor3D {
    return this.forward(tokens);
  }

  /** The logits with low-rank updates of some linear layers (client/lm/lora.ts); the base's weights are only read. */
  forward(tokens: tf.Tensor2D, adapters?: LinearAdapters): tf.Tensor3D {
    checkTokens(tokens, this.spec);
    const { d, l, h, vocab } = this.spec;
    const [batch, positions] = tokens.shape;
    const dh = d / h;
    return tf.tidy(() => {
      const positionsEmb = tf.slice(this.get('position_embedding'), [0, 0], [positions, d]);
      let x = tf.reshape(tf.add(tf.reshape(embed(tokens, this.get('token_embedding'), vocab), [batch, positions, d]), positionsEmb), [batch * positions, d]) as tf.Tensor2D;
      const mask = tf.slice(this.causalMask, [0, 0], [positions, positions]);
      const heads = (t: tf.Tensor) => tf.transpose(tf.reshape(t, [batch, positions, h, dh]), [0, 2, 1, 3]);
      for (let i = 0; i < l; i++) {
        const p = (n: string) => this.get(`block${i}/${n}`);
        const a = layerNorm(x, p('ln1/gain'), p('ln1/bias'));
        // Three projections rather than one split [d, 3d]: wasm's SplitV copies, and its gradient concatenates.
        const [q, k, v] = ['query', 'key', 'value'].map((n) => this.linear(a, `block${i}/attn/${n}`, adapters));
        // softmax(Q Kᵀ / √dh + mask) V per head (Vaswani et al. 2017, eq. 1).
        const scores = tf.add(tf.mul(tf.matMul(heads(q!), heads(k!), false, true), 1 / Math.sqrt(dh)), mask);
        const attended = tf.matMul(tf.softmax(scores), heads(v!));
        const merged = tf.reshape(tf.transpose(attended, [0, 2, 1, 3]), [batch * positions, d]) as tf.Tensor2D;
        x = tf.add(x, this.linear(merged, `block${i}/attn/out`, adapters));
        const m = layerNorm(x, p('ln2/gain'), p('ln2/bias'));
        const hidden = gelu(this.linear(m, `block${i}/mlp/in`, adapters)) as tf.Tensor2D;
        x = tf.add(x, this.linear(hidden, `block${i}/mlp/out`, adapters));
      }
      const out = layerNorm(x, this.get('ln_final/gain'), this.get('ln_final/bias'));
      return tf.reshape(tf.add(tf.matMul(out, this.get('head/kernel')), this.get('head/bias')), [batch, positions, vocab]) as tf.Tensor3D;
    });
  }

  startDecoding(batch: number, adapters?: LinearAdapters): DecodingState {
    const { d, l, h, vocab, ctx } = this.spec;
    const dh = d / h;
    const linear = (x: tf.Tensor2D, name: string) => this.linear(x, name, adapters);
    const keys: Array<tf.Tensor | undefined> = Array.from({ length: l });
    const values: Array<tf.Tensor | undefined> = Array.from({ length: l });
    let length = 0;
    const get = (name: string) => this.get(name);
    return {
      get length() {
        return length;
      },
      next: (tokens: tf.Tensor1D): tf.Tensor2D => {
        if (length >= ctx) throw new LmSpecError(`decoding past the model's context (${ctx} positions)`);
        const position = length;
        const out = tf.tidy(() => {
          let x = tf.add(embed(tf.reshape(tokens, [batch, 1]) as tf.Tensor2D, get('token_embedding'), vocab), tf.slice(get('position_embedding'), [position, 0], [1, d])) as tf.Tensor2D;
          for (let i = 0; i < l; i++) {
            const p = (n: string) => get(`block${i}/${n}`);
            const a = layerNorm(x, p('ln1/gain'), p('ln1/bias'));
            const [q, k, v] = ['query', 'key', 'value'].map((n) => linear(a, `block${i}/attn/${n}`));
            // [batch, d] → [batch, h, 1, dh]: the head split of the full pass (reshape [b, p, h, dh], then heads before positions).
            const split = (t: tf.Tensor) => tf.transpose(tf.reshape(t, [batch, 1, h, dh]), [0, 2, 1, 3]);
            const kAll = keys[i] === undefined ? split(k!) : tf.concat([keys[i]!, split(k!)], 2);
            const vAll = values[i] === undefined ? split(v!) : tf.concat([values[i]!, split(v!)], 2);
            tf.dispose([keys[i], values[i]]);
            keys[i] = tf.keep(kAll);
            values[i] = tf.keep(vAll);
            // The newest position attends to every cached one: no mask is needed.
            const scores = tf.mul(tf.matMul(split(q!), kAll, false, true), 1 / Math.sqrt(dh));
            const attended = tf.reshape(tf.matMul(tf.softmax(scores), vAll), [batch, d]) as tf.Tensor2D;
            x = tf.add(x, linear(attended, `block${i}/attn/out`));
            const m = layerNorm(x, p('ln2/gain'), p('ln2/bias'));
            x = tf.add(x, linear(gelu(linear(m, `block${i}/mlp/in`)) as tf.Tensor2D, `block${i}/mlp/out`));
          }
          const final = layerNorm(x, get('ln_final/gain'), get('ln_final/bias'));
          return tf.add(tf.matMul(final, get('head/kernel')), get('head/bias')) as tf.Tensor2D;
        });
        length++;
        return out;
      },
      dispose: () => {
        tf.dispose([...keys, ...values].filter((t): t is tf.Tensor => t !== undefined));
      },
    };
  }

  countParams(): number {
    return this.variables.reduce((a, v) => a + v.size, 0);
  }

  forwardFlopsPerToken(positions: number): number {
    const { d, l, vocab } = this.spec;
    // embedding + head: 2·V·d each; per block: qkv 6d², out 2d², MLP 16d², scores and values 4·P·d.
    return 4 * vocab * d + l * (24 * d * d + 4 * positions * d);
  }

  dispose(): void {
    tf.dispose(this.variables);
    this.causalMask.dispose();
  }
}

/**
 * One GRU step (Cho et al. 2014), input projection gx = x·Wx + bx given:
 * z = σ(x_z + h_z), r = σ(x_r + h_r), n = tanh(x_n + r ⊙ h_n), h ← (1 − z) ⊙ n + z ⊙ h, with h_* = h·Wh + bh.
 */
function gruCell(gx: tf.Tensor2D, h: tf.Tensor2D, wh: tf.Tensor, bh: tf.Tensor): tf.Tensor2D {
  const gh = tf.add(tf.matMul(h, wh), bh);
  const [xz, xr, xn] = tf.split(gx, 3, 1);
  const [hz, hr, hn] = tf.split(gh, 3, 1);
  const z = tf.sigmoid(tf.add(xz!, hz!));
  const r = tf.sigmoid(tf.add(xr!, hr!));
  const n = tf.tanh(tf.add(xn!, tf.mul(r, hn!)));
  return tf.add(tf.mul(tf.sub(1, z), n), tf.mul(z, h));
}

class GruLm implements LanguageModel {
  readonly weights: Array<[string, tf.Variable]>;
  readonly variables: tf.Variable[];
  private readonly w: Map<string, tf.Variable>;

  constructor(readonly spec: LmSpec, seed: number) {
    const { d, l, vocab } = spec;
    const b = new WeightBuilder(seed);
    const std = 1 / Math.sqrt(d);
    b.normal('token_embedding', [vocab, d], 0.1);
    for (let i = 0; i < l; i++) {
      b.normal(`gru${i}/input/kernel`, [d, 3 * d], std);
      b.normal(`gru${i}/recurrent/kernel`, [d, 3 * d], std);
      b.constant(`gru${i}/input/bias`, [3 * d], 0);
      b.constant(`gru${i}/recurrent/bias`, [3 * d], 0);
    }
    b.normal('head/kernel', [d, vocab], std);
    b.constant('head/bias', [vocab], 0);
    this.weights = b.weights;
    this.variables = this.weights.map(([, v]) => v);
    this.w = new Map(this.weights);
  }

  logits(tokens: tf.Tensor2D): tf.Tensor3D {
    checkTokens(tokens, this.spec);
    const { d, l, vocab } = this.spec;
    const [batch, positions] = tokens.shape;
    return tf.tidy(() => {
      let x = embed(tokens, this.w.get('token_embedding')!, vocab); // [batch·positions, d]
      for (let i = 0; i < l; i++) {
        const wx = this.w.get(`gru${i}/input/kernel`)!;
        const wh = this.w.get(`gru${i}/recurrent/kernel`)!;
        const bh = this.w.get(`gru${i}/recurrent/bias`)!;
        // Input projections for every position at once; the recurrence only adds h·Wh.
        const gx = tf.reshape(tf.add(tf.matMul(x, wx), this.w.get(`gru${i}/input/bias`)!), [batch, positions, 3 * d]);
        let h: tf.Tensor2D = tf.zeros([batch, d]);
        const outputs: tf.Tensor2D[] = [];
        for (let t = 0; t < positions; t++) {
          h = gruCell(tf.reshape(tf.slice(gx, [0, t, 0], [batch, 1, 3 * d]), [batch, 3 * d]), h, wh, bh);
          outputs.push(h);
        }
        x = tf.reshape(tf.stack(outputs, 1), [batch * positions, d]);
      }
      return tf.reshape(tf.add(tf.matMul(x, this.w.get('head/kernel')!), this.w.get('head/bias')!), [batch, positions, vocab]) as tf.Tensor3D;
    });
  }

  startDecoding(batch: number): DecodingState {
    const { d, l, vocab, ctx } = this.spec;
    const w = (name: string) => this.w.get(name)!;
    const states: tf.Tensor2D[] = Array.from({ length: l }, () => tf.zeros([batch, d]));
    let length = 0;
    return {
      get length() {
        return length;
      },
      next: (tokens: tf.Tensor1D): tf.Tensor2D => {
        if (length >= ctx) throw new LmSpecError(`decoding past the model's context (${ctx} positions)`);
        const out = tf.tidy(() => {
          let x = embed(tf.reshape(tokens, [batch, 1]) as tf.Tensor2D, w('token_embedding'), vocab);
          for (let i = 0; i < l; i++) {
            const h = gruCell(tf.add(tf.matMul(x, w(`gru${i}/input/kernel`)), w(`gru${i}/input/bias`)), states[i]!, w(`gru${i}/recurrent/kernel`), w(`gru${i}/recurrent/bias`));
            states[i]!.dispose();
            states[i] = tf.keep(h);
            x = h;
          }
          return tf.add(tf.matMul(x, w('head/kernel')), w('head/bias')) as tf.Tensor2D;
        });
        length++;
        return out;
      },
      dispose: () => tf.dispose(states),
    };
  }

  countParams(): number {
    return this.variables.reduce((a, v) => a + v.size, 0);
  }

  forwardFlopsPerToken(): number {
    const { d, l, vocab } = this.spec;
    return 4 * vocab * d + l * 12 * d * d;
  }

  dispose(): void {
    tf.dispose(this.variables);
  }
}

/** The model's weights as one vector, in save order (what FedAvg exchanges: for a LoRA model, its adapters). */
export function flatWeights(model: LanguageModel): Float32Array {
  const out = new Float32Array(model.countParams());
  let offset = 0;
  for (const [, v] of model.weights) {
    out.set(v.dataSync() as Float32Array, offset);
    offset += v.size;
  }
  return out;
}

/** Assigns `values` (flatWeights' layout) to the model's weights. */
export function setFlatWeights(model: LanguageModel, values: Float32Array): void {
  if (values.length !== model.countParams()) throw new LmSpecError(`${values.length} values for a model of ${model.countParams()} parameters (${lmSpecName(model.spec)})`);
  let offset = 0;
  for (const [, v] of model.weights) {
    const t = tf.tensor(values.subarray(offset, offset + v.size), v.shape, 'float32');
    v.assign(t);
    t.dispose();
    offset += v.size;
  }
}

/** A new model with seeded initial weights. */
export function createLanguageModel(spec: LmSpec | string, seed = 1): LanguageModel {
  const s = typeof spec === 'string' ? parseLmSpec(spec) : spec;
  return s.kind === 'transformer' ? new CausalTransformer(s, seed) : new GruLm(s, seed);
}
