/**
 * Low-rank adaptation (LoRA, Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language Models"):
 * a frozen base Transformer plus, on chosen linear layers, a trainable update of rank r,
 *   h = W₀x + ΔW x = W₀x + (α/r)·B A x,   A ∈ R^{r×in} ~ N(0, σ²),  B ∈ R^{out×r} = 0,
 * so the adapted model is the base at the start (§4.1). Only A and B train: a LoraLanguageModel's
 * `variables` are its adapters, never the base's weights, so every trainer here (train.ts,
 * procedures/tokens.ts) leaves the base untouched. The paper adapts W_q and W_v (§7.1); any of the
 * block's six linear layers can be chosen.
 *
 * Stored in the kernel's orientation (x·W, W [in, out]): `lora_a` [in, r] = Aᵀ and `lora_b`
 * [r, out] = Bᵀ, so the update is x·lora_a·lora_b·(α/r) and the merged kernel W + (α/r)·lora_a·lora_b.
 * σ defaults to 1/√(3·in), the standard deviation of loralib's Kaiming-uniform(a = √5) init of A.
 */
import * as tf from '@tensorflow/tfjs';
import {
  CausalTransformer,
  createLanguageModel,
  LmSpecError,
  TRANSFORMER_LINEAR_LAYERS,
  type DecodingState,
  type LanguageModel,
  type LinearAdapter,
  type LmSpec,
  type TransformerLinearLayer,
} from './model.js';

/** The linear layers by their short names: the attention's query, key, value and output projections, the MLP's two. */
export const LORA_TARGETS: Record<string, TransformerLinearLayer> = { q: 'attn/query', k: 'attn/key', v: 'attn/value', o: 'attn/out', 'mlp-in': 'mlp/in', 'mlp-out': 'mlp/out' };
/** Short names a config may list; `all` is every linear layer of every block (not the output head). */
export const LORA_TARGET_NAMES = [...Object.keys(LORA_TARGETS), 'all'] as const;

export interface LoraSpec {
  /** r: the rank of each update. */
  rank: number;
  /** α: the update is scaled by α/r (Hu et al. §4.1), so changing r needs no new learning rate. */
  alpha: number;
  /** Short names (LORA_TARGETS) or `all`. */
  targets: readonly string[];
  /** σ of A's initialisation; 1/√(3·in) when omitted. */
  initStd?: number;
}

/** The block layers a spec adapts, in block order (q, k, v, o, mlp-in, mlp-out). */
export function loraLayers(spec: LoraSpec): TransformerLinearLayer[] {
  const unknown = spec.targets.filter((t) => t !== 'all' && !Object.hasOwn(LORA_TARGETS, t));
  if (unknown.length > 0) throw new LmSpecError(`LoRA targets ${unknown.map((t) => `"${t}"`).join(', ')} are not linear layers; choose from ${LORA_TARGET_NAMES.join(', ')}`);
  if (spec.targets.length === 0) throw new LmSpecError('LoRA needs at least one target layer');
  const chosen = new Set(spec.targets.includes('all') ? TRANSFORMER_LINEAR_LAYERS : spec.targets.map((t) => LORA_TARGETS[t]!));
  return TRANSFORMER_LINEAR_LAYERS.filter((layer) => chosen.has(layer));
}

export function checkLoraSpec(spec: LoraSpec): void {
  if (!(Number.isInteger(spec.rank) && spec.rank >= 1)) throw new LmSpecError(`LoRA rank must be an integer ≥ 1 (got ${spec.rank})`);
  if (!(Number.isFinite(spec.alpha) && spec.alpha > 0)) throw new LmSpecError(`LoRA alpha must be a positive number (got ${spec.alpha})`);
  if (spec.initStd !== undefined && !(Number.isFinite(spec.initStd) && spec.initStd > 0)) throw new LmSpecError(`LoRA initStd must be a positive number (got ${spec.initStd})`);
  loraLayers(spec);
}

/** The spec as text, e.g. `r=4,alpha=8,targets=q+v`. */
export function loraSpecName(spec: LoraSpec): string {
  return `r=${spec.rank},alpha=${spec.alpha},targets=${spec.targets.join('+')}${spec.initStd === undefined ? '' : `,initStd=${spec.initStd}`}`;
}

/** A variable holding `initial`, which is released (a variable shares its first value's data). */
function variable(initial: tf.Tensor2D): tf.Variable<tf.Rank.R2> {
  const v = tf.variable(initial);
  initial.dispose();
  return v;
}

/**
 * A base Transformer with low-rank adapters. `weights` and `variables` are the adapters only (in
 * block and layer order, A then B: what is saved, trained and exchanged); `countParams` counts them.
 * Disposing it frees the adapters, not the base, which several adapted models may share.
 */
export class LoraLanguageModel implements LanguageModel {
  readonly spec: LmSpec;
  readonly weights: ReadonlyArray<readonly [string, tf.Variable]>;
  readonly variables: tf.Variable[];
  readonly adapters: Map<string, LinearAdapter>;
  readonly scale: number;

  constructor(readonly base: CausalTransformer, readonly lora: LoraSpec, seed: number) {
    checkLoraSpec(lora);
    this.spec = base.spec;
    this.scale = lora.alpha / lora.rank;
    const weights: Array<[string, tf.Variable]> = [];
    this.adapters = new Map();
    let n = 0;
    for (let i = 0; i < base.spec.l; i++) {
      for (const layer of loraLayers(lora)) {
        const [inputs, outputs] = base.linearShape(layer);
        const std = lora.initStd ?? 1 / Math.sqrt(3 * inputs);
        const name = `block${i}/${layer}`;
        const a = variable(tf.randomNormal([inputs, lora.rank], 0, std, 'float32', seed * 7919 + ++n) as tf.Tensor2D);
        const b = variable(tf.zeros([lora.rank, outputs]));
        weights.push([`${name}/lora_a`, a], [`${name}/lora_b`, b]);
        this.adapters.set(name, { a, b, scale: this.scale });
      }
    }
    this.weights = weights;
    this.variables = weights.map(([, v]) => v);
  }

  logits(tokens: tf.Tensor2D): tf.Tensor3D {
    return this.base.forward(tokens, this.adapters);
  }

  startDecoding(batch: number): DecodingState {
    return this.base.startDecoding(batch, this.adapters);
  }

  countParams(): number {
    return this.variables.reduce((a, v) => a + v.size, 0);
  }

  /** The base's, plus 2·r·(in + out) per adapted layer. */
  forwardFlopsPerToken(positions: number): number {
    return this.base.forwardFlopsPerToken(positions) + [...this.adapters.values()].reduce((a, { a: down, b: up }) => a + 2 * this.lora.rank * (down.shape[0] + up.shape[1]), 0);
  }

  dispose(): void {
    tf.dispose(this.variables);
  }
}

/** Adapters on `base` (a Transformer), A ~ N(0, σ²) seeded, B = 0. */
export function createLoraModel(base: LanguageModel, lora: LoraSpec, seed = 1): LoraLanguageModel {
  if (!(base instanceof CausalTransformer)) throw new LmSpecError(`LoRA adapts a Transformer's linear layers; the base is a ${base.spec.kind}`);
  return new LoraLanguageModel(base, lora, seed);
}

/**
 * A plain model (no adapters) whose kernels are W + (α/r)·lora_a·lora_b: what the adapted model
 * computes, as one set of weights any codistill tool (generate, saveLanguageModel) reads.
 */
export function mergeLora(model: LoraLanguageModel): LanguageModel {
  const merged = createLanguageModel(model.spec, 0);
  try {
    const base = new Map(model.base.weights);
    for (const [name, v] of merged.weights) {
      const adapter = name.endsWith('/kernel') ? model.adapters.get(name.slice(0, -'/kernel'.length)) : undefined;
      const value = tf.tidy(() => (adapter === undefined ? base.get(name)!.clone() : tf.add(base.get(name)!, tf.mul(tf.matMul(adapter.a, adapter.b), adapter.scale))));
      v.assign(value);
      value.dispose();
    }
  } catch (error) {
    merged.dispose();
    throw error;
  }
  return merged;
}
