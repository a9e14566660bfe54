/**
 * Switching the wasm kernels inside one run, so that codistill's kernels are measured against
 * what they replaced on the same machine minutes apart:
 *  - before: tfjs-backend-wasm 4.22's own BatchMatMul and Conv2DBackpropInput, the vertical
 *    slice's Conv2DBackpropFilter (bench/legacy-kernels.ts; stock wasm has none, so no CNN could
 *    train on it at all), and no fused Adam kernel, so client/optimizer.ts runs tfjs's AdamOptimizer
 *    (it decides at its first step: make the Student after switching);
 *  - after: the kernels client/backend.ts registers now.
 * MaxPoolGrad is codistill's in both (the stock one drops gradients).
 */
import * as tf from '@tensorflow/tfjs';
import type { KernelConfig } from '@tensorflow/tfjs';
import { wasmAdam } from '../client/kernels/wasm-adam.js';
import { wasmBatchMatMul } from '../client/kernels/wasm-batch-mat-mul.js';
import { wasmConv2DBackpropFilter } from '../client/kernels/wasm-conv2d-backprop-filter.js';
import { wasmConv2DBackpropInput } from '../client/kernels/wasm-conv2d-backprop-input.js';
import { legacyConv2DBackpropFilter } from './legacy-kernels.js';

export type KernelSet = 'before' | 'after';

const AFTER: readonly KernelConfig[] = [wasmBatchMatMul, wasmConv2DBackpropInput, wasmConv2DBackpropFilter, wasmAdam];
/** Kernels tfjs-backend-wasm ships and codistill replaces for speed, captured before they are replaced. */
const STOCK_NAMES = [wasmBatchMatMul.kernelName, wasmConv2DBackpropInput.kernelName];
const stock = new Map<string, KernelConfig>();

/** Must run after tfjs-backend-wasm is imported and before selectBackend registers codistill's kernels. */
export function captureStockKernels(): void {
  for (const name of STOCK_NAMES) {
    const found = tf.getKernel(name, 'wasm');
    if (found !== undefined && !AFTER.some((k) => k.kernelFunc === found.kernelFunc)) stock.set(name, { ...found });
  }
}

export function hasStockKernels(): boolean {
  return stock.size === STOCK_NAMES.length && tf.getBackend() === 'wasm';
}

function install(config: KernelConfig): void {
  if (tf.getKernel(config.kernelName, config.backendName) !== undefined) tf.unregisterKernel(config.kernelName, config.backendName);
  tf.registerKernel(config);
  // registerKernel does not set a kernel up on a backend already running: do it ourselves.
  config.setupFunc?.(tf.backend() as never);
}

export function useKernels(set: KernelSet): void {
  if (tf.getBackend() !== 'wasm') return;
  const configs = set === 'after' ? AFTER : [...stock.values(), legacyConv2DBackpropFilter];
  for (const config of configs) install(config);
  if (set === 'before' && tf.getKernel(wasmAdam.kernelName, 'wasm') !== undefined) tf.unregisterKernel(wasmAdam.kernelName, 'wasm');
}

export const KERNEL_SET_TEXT: Record<KernelSet, string> = {
  before: 'before: tfjs-backend-wasm 4.22 BatchMatMul and Conv2DBackpropInput, the vertical slice\'s Conv2DBackpropFilter, tfjs\'s AdamOptimizer',
  after: 'after: codistill\'s wasm kernels (client/kernels), the fused Adam among them',
};
