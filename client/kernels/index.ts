/**
 * The kernel registry: wires codistill's wasm kernels into tfjs, for every place a participant
 * runs — Node (backend.ts) and the browser bundle (browser/backend.ts) alike.
 */
import * as tf from '@tensorflow/tfjs';
import { wasmAdam } from './wasm-adam.js';
import { wasmBatchMatMul } from './wasm-batch-mat-mul.js';
import { wasmConv2DBackpropFilter } from './wasm-conv2d-backprop-filter.js';
import { wasmConv2DBackpropInput } from './wasm-conv2d-backprop-input.js';
import { wasmMaxPoolGrad } from './wasm-max-pool-grad.js';

let kernelsRegistered = false;

/** Kernels the stock backends lack, get wrong or run slowly, registered once per process (or worker, or page). */
export function registerMissingKernels(): void {
  // Only once the wasm package has registered its own kernels: importing it later would put the
  // stock ones back over ours (selectBackend('cpu') first, then 'wasm', as the tests do).
  if (kernelsRegistered || tf.findBackendFactory('wasm') === null) return;
  for (const kernel of [wasmConv2DBackpropFilter, wasmMaxPoolGrad, wasmBatchMatMul, wasmConv2DBackpropInput, wasmAdam]) {
    // Replacing a shipped kernel: tfjs warns on re-registration, so unregister it first.
    if (tf.getKernel(kernel.kernelName, kernel.backendName) !== undefined) tf.unregisterKernel(kernel.kernelName, kernel.backendName);
    tf.registerKernel(kernel);
  }
  kernelsRegistered = true;
}
