/**
 * codistill's wasm Conv2DBackpropInput (client/kernels/wasm-conv2d-backprop-input.ts): stride 1
 * runs as a forward convolution with the filter turned by 180°, everything else on the
 * backend's own C++ kernel. Both must give the cpu backend's input gradient.
 */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { selectBackend } from '../../client/backend.js';
import { turnedFilter, wasmConv2DBackpropInput } from '../../client/kernels/wasm-conv2d-backprop-input.js';

type Shape4 = [number, number, number, number];
type Pad = 'same' | 'valid' | number;

const CASES: Array<{ x: Shape4; w: Shape4; stride: number; pad: Pad }> = [
  { x: [2, 12, 12, 8], w: [5, 5, 8, 16], stride: 1, pad: 'valid' }, // the CNN's second layer
  { x: [2, 8, 8, 3], w: [3, 3, 3, 4], stride: 1, pad: 'same' },
  { x: [3, 9, 7, 2], w: [5, 3, 2, 5], stride: 1, pad: 'same' }, // odd, non-square
  { x: [1, 6, 6, 2], w: [3, 3, 2, 3], stride: 1, pad: 1 },
  { x: [2, 10, 10, 4], w: [3, 3, 4, 6], stride: 2, pad: 'same' }, // C++ path
  { x: [3, 9, 7, 2], w: [5, 3, 2, 5], stride: 2, pad: 'valid' }, // C++ path
];

function inputGradients(): Float32Array[] {
  return CASES.map((c, k) =>
    tf.tidy(() => {
      const w = tf.randomUniform(c.w, -1, 1, 'float32', 3 * k + 1) as tf.Tensor4D;
      const x = tf.randomUniform(c.x, -1, 1, 'float32', 3 * k + 2) as tf.Tensor4D;
      const dy = tf.randomUniform(tf.conv2d(x, w, c.stride, c.pad).shape, -1, 1, 'float32', 3 * k + 3);
      return tf.grad((input: tf.Tensor) => tf.conv2d(input as tf.Tensor4D, w, c.stride, c.pad).mul(dy).sum())(x).dataSync() as Float32Array;
    }),
  );
}

describe('wasm Conv2DBackpropInput', () => {
  it('is the kernel selectBackend registers for wasm', async () => {
    expect(await selectBackend('wasm')).toBe('wasm');
    expect(tf.getKernel('Conv2DBackpropInput', 'wasm')?.kernelFunc).toBe(wasmConv2DBackpropInput.kernelFunc);
  });

  it('matches the cpu backend: stride 1 as a forward convolution, other strides in C++', async () => {
    await selectBackend('cpu');
    const expected = inputGradients();
    await selectBackend('wasm');
    const before = tf.memory().numDataBuffers;
    const actual = inputGradients();
    expect(tf.memory().numDataBuffers).toBe(before);
    CASES.forEach((c, k) => {
      const what = JSON.stringify(c);
      expect(actual[k]!.length, what).toBe(expected[k]!.length);
      let worst = 0;
      for (let i = 0; i < expected[k]!.length; i++) worst = Math.max(worst, Math.abs(actual[k]![i]! - expected[k]![i]!));
      expect(worst, what).toBeLessThan(1e-4);
    });
  });

  it('turns the filter by 180° and swaps its channels', () => {
    // W [2, 2, 1, 2]: W[i, j, 0, o] = 10·(2i + j) + o.
    const w = new Float32Array([0, 1, 10, 11, 20, 21, 30, 31]);
    // W' [2, 2, 2, 1]: W'[i, j, o, 0] = W[1 − i, 1 − j, 0, o].
    expect(Array.from(turnedFilter(w, [2, 2, 1, 2]))).toEqual([30, 31, 20, 21, 10, 11, 0, 1]);
  });
});
