/**
 * codistill's wasm Conv2DBackpropFilter at stride 1 runs as a forward convolution of the
 * transposed operands (client/kernels/wasm-conv2d-backprop-filter.ts). Beyond the cases of
 * test/client/backend.test.ts: the CNN's own layer shapes, numeric padding, a batch of one, and
 * no heap buffers left behind.
 */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { selectBackend } from '../../client/backend.js';

type Shape4 = [number, number, number, number];

const CASES: Array<{ x: Shape4; w: Shape4; pad: 'same' | 'valid' | number }> = [
  { x: [4, 28, 28, 1], w: [5, 5, 1, 8], pad: 'valid' }, // the CNN's first layer
  { x: [4, 12, 12, 8], w: [5, 5, 8, 16], pad: 'valid' }, // and its second
  { x: [1, 7, 9, 3], w: [3, 5, 3, 2], pad: 'same' },
  { x: [2, 6, 6, 2], w: [3, 3, 2, 3], pad: 2 },
];

function filterGradients(): Float32Array[] {
  return CASES.map((c, k) =>
    tf.tidy(() => {
      const x = tf.randomUniform(c.x, -1, 1, 'float32', 2 * k + 1) as tf.Tensor4D;
      const dy = tf.randomUniform(tf.conv2d(x, tf.zeros(c.w) as tf.Tensor4D, 1, c.pad).shape, -1, 1, 'float32', 2 * k + 2);
      const grad = tf.grad((w: tf.Tensor) => tf.conv2d(x, w as tf.Tensor4D, 1, c.pad).mul(dy).sum());
      return grad(tf.randomUniform(c.w, -1, 1, 'float32', 99)).dataSync() as Float32Array;
    }),
  );
}

describe('wasm Conv2DBackpropFilter at stride 1', () => {
  it('matches the cpu backend on the CNN\'s layers, with numeric padding and a batch of one, leaving no buffers behind', async () => {
    await selectBackend('cpu');
    const expected = filterGradients();
    await selectBackend('wasm');
    filterGradients(); // first use sets up XNNPACK operators
    const before = tf.memory().numDataBuffers;
    const actual = filterGradients();
    expect(tf.memory().numDataBuffers).toBe(before);
    CASES.forEach((c, k) => {
      const what = JSON.stringify(c);
      expect(actual[k]!.length, what).toBe(expected[k]!.length);
      let worst = 0;
      for (let i = 0; i < expected[k]!.length; i++) worst = Math.max(worst, Math.abs(actual[k]![i]! - expected[k]![i]!) / (1 + Math.abs(expected[k]![i]!)));
      // Sums of up to 2,304 float32 products in another order: the rounding grows with the count.
      expect(worst, what).toBeLessThan(1e-4);
    });
  });
});
