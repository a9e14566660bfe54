import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { selectBackend } from '../../client/backend.js';

describe('backend selection', () => {
  it('falls back to wasm when the native bindings are not installed', async () => {
    const name = await selectBackend();
    // tfjs-node cannot install on this machine; a site that has it would get "node" here.
    expect(['node-gpu', 'node', 'wasm']).toContain(name);
    expect(tf.getBackend()).toBe(name === 'wasm' ? 'wasm' : 'tensorflow');
  });

  it('names a forced backend that is missing, and how to install it', async () => {
    await expect(selectBackend('node-gpu')).rejects.toThrow(/backend "node-gpu" is not available: .*npm install @tensorflow\/tfjs-node-gpu/);
    await expect(selectBackend('tpu')).rejects.toThrow(/unknown backend "tpu"; choose one of node-gpu, node, wasm, cpu/);
  });

  // Both kernels below are replacements: tfjs 4.22's wasm backend lacks the first and gets the
  // second (and strided 3-D filter gradients) wrong. The cpu backend is the reference.
  it('Conv2DBackpropFilter on wasm matches the cpu backend, strided and padded', async () => {
    const cases: Array<{ x: Shape4; w: Shape4; stride: number; pad: 'same' | 'valid' }> = [
      { x: [2, 8, 8, 3], w: [3, 3, 3, 4], stride: 1, pad: 'same' },
      { x: [1, 28, 28, 1], w: [5, 5, 1, 8], stride: 1, pad: 'valid' },
      { x: [3, 9, 7, 2], w: [5, 3, 2, 5], stride: 2, pad: 'valid' },
      { x: [2, 10, 10, 4], w: [3, 3, 4, 6], stride: 2, pad: 'same' },
    ];
    for (const c of cases) {
      const gradient = () => tf.tidy(() => {
        const x = tf.randomUniform(c.x, -1, 1, 'float32', 1) as tf.Tensor4D;
        const dy = tf.randomUniform(tf.conv2d(x, tf.zeros(c.w) as tf.Tensor4D, c.stride, c.pad).shape, -1, 1, 'float32', 3);
        const grad = tf.grad((w: tf.Tensor) => tf.conv2d(x, w as tf.Tensor4D, c.stride, c.pad).mul(dy).sum());
        return grad(tf.randomUniform(c.w, -1, 1, 'float32', 2)).dataSync() as Float32Array;
      });
      await expectSameOnWasmAsCpu(gradient, `conv2d filter gradient ${JSON.stringify(c)}`);
    }
  });

  it('MaxPoolGrad on wasm routes every window like the cpu backend', async () => {
    for (const shape of [[2, 8, 8, 3], [1, 24, 24, 8], [2, 9, 7, 2]] as Shape4[]) {
      for (const pad of ['valid', 'same'] as const) {
        const gradient = () => tf.tidy(() => {
          const x = tf.randomUniform(shape, -1, 1, 'float32', 1) as tf.Tensor4D;
          const dy = tf.randomUniform(tf.maxPool(x, 2, 2, pad).shape, -1, 1, 'float32', 3);
          return tf.grad((input: tf.Tensor) => tf.maxPool(input as tf.Tensor4D, 2, 2, pad).mul(dy).sum())(x).dataSync() as Float32Array;
        });
        await expectSameOnWasmAsCpu(gradient, `max-pool gradient ${JSON.stringify(shape)} ${pad}`);
      }
    }
  });
});

type Shape4 = [number, number, number, number];

async function expectSameOnWasmAsCpu(compute: () => Float32Array, what: string): Promise<void> {
  await selectBackend('cpu');
  const expected = compute();
  await selectBackend('wasm');
  const actual = compute();
  expect(actual.length, what).toBe(expected.length);
  let worst = 0;
  for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(actual[i]! - expected[i]!));
  expect(worst, what).toBeLessThan(1e-4);
}
