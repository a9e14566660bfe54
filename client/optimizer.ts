/**
 * Adam (Kingma & Ba 2015) with one fused kernel per variable on the wasm backend; tfjs's own
 * AdamOptimizer on every other backend.
 *
 * tfjs's AdamOptimizer runs some fifteen kernels per variable and step (two moments, bias
 * corrections, square root, division, three assignments), each allocating a tensor and sweeping
 * the whole variable: on wasm that was a third of a distillation step of the 784-256-128-10 MLP
 * (bench/RESULTS.md, training). Here each variable takes one SIMD pass (client/kernels/wasm-adam.wat)
 * computing the same float32 operations in the same order, so the trajectory is tfjs's bit for bit
 * (test/client/optimizer.test.ts):
 *   m ← β₁·m + (1−β₁)·g,  v ← β₂·v + (1−β₂)·g²,
 *   θ ← θ − lr · (m / (1−β₁ᵗ)) / (√(v / (1−β₂ᵗ)) + ε),  β₁ᵗ, β₂ᵗ accumulated in float32.
 */
import * as tf from '@tensorflow/tfjs';
import { ADAM_KERNEL, wasmAdamReady, type AdamAttrs } from './kernels/wasm-adam.js';

const f32 = Math.fround;

export class Adam {
  private readonly learningRate: number;
  private readonly beta1: number;
  private readonly beta2: number;
  private readonly epsilon: number | undefined;
  /** Decided at the first step, from the backend then in use: its fused kernel, or tfjs's Adam. */
  private decided = false;
  private fallback: tf.Optimizer | undefined;
  private readonly moments = new Map<tf.Variable, { m: tf.Variable; v: tf.Variable }>();
  /** β₁ᵗ and β₂ᵗ, as float32 (tfjs keeps them in scalar variables). */
  private accBeta1: number;
  private accBeta2: number;

  /** tfjs's defaults: β₁ = 0.9, β₂ = 0.999, ε = the backend's epsilon (1e-7 in float32). */
  constructor(learningRate: number, beta1 = 0.9, beta2 = 0.999, epsilon?: number) {
    this.learningRate = learningRate;
    this.beta1 = beta1;
    this.beta2 = beta2;
    this.epsilon = epsilon;
    this.accBeta1 = f32(beta1);
    this.accBeta2 = f32(beta2);
  }

  /** Whether steps run the fused kernel (false until the first step, and on backends other than wasm). */
  get fused(): boolean {
    return this.decided && this.fallback === undefined;
  }

  /** One descent step on `variables` for the loss f; returns the loss (the caller disposes it). */
  minimize(f: () => tf.Scalar, variables: tf.Variable[]): tf.Scalar {
    if (!this.decided) {
      const fusable = tf.getKernel(ADAM_KERNEL, tf.getBackend()) !== undefined && wasmAdamReady(tf.backend());
      if (!fusable) this.fallback = tf.train.adam(this.learningRate, this.beta1, this.beta2, this.epsilon);
      this.decided = true;
    }
    if (this.fallback !== undefined) return this.fallback.minimize(f, true, variables)!;
    const { value, grads } = tf.variableGrads(f, variables);
    try {
      this.apply(variables, grads);
    } finally {
      tf.dispose(grads);
    }
    return value;
  }

  private apply(variables: tf.Variable[], grads: tf.NamedTensorMap): void {
    const constants: AdamAttrs = {
      beta1: f32(this.beta1),
      beta2: f32(this.beta2),
      oneMinusBeta1: f32(1 - this.beta1),
      oneMinusBeta2: f32(1 - this.beta2),
      correction1: f32(1 - this.accBeta1),
      correction2: f32(1 - this.accBeta2),
      epsilon: f32(this.epsilon ?? tf.backend().epsilon()),
      step: f32(-this.learningRate),
    };
    for (const variable of variables) {
      const gradient = grads[variable.name];
      if (gradient === undefined) continue;
      let state = this.moments.get(variable);
      if (state === undefined) {
        state = tf.tidy(() => ({ m: tf.zerosLike(variable).variable(false), v: tf.zerosLike(variable).variable(false) }));
        this.moments.set(variable, state);
      }
      // The new values come in a tensor of their own: tensors are immutable to tfjs, and the wasm
      // backend caches XNNPACK's packed copy of a matmul's weights by tensor, so writing into the
      // variable's own memory would leave that copy stale.
      const next = tf.engine().runKernel(ADAM_KERNEL, { x: variable, g: gradient, m: state.m, v: state.v }, constants as unknown as tf.NamedAttrMap) as tf.Tensor;
      variable.assign(next);
      next.dispose();
    }
    this.accBeta1 = f32(this.accBeta1 * constants.beta1);
    this.accBeta2 = f32(this.accBeta2 * constants.beta2);
  }

  dispose(): void {
    for (const { m, v } of this.moments.values()) tf.dispose([m, v]);
    this.moments.clear();
    this.fallback?.dispose();
  }
}
