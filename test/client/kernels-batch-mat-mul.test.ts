/**
 * codistill's wasm BatchMatMul (client/kernels/wasm-batch-mat-mul.ts) transposes operands
 * explicitly and always runs the untransposed C++ kernel: it must give the cpu backend's
 * products for every transpose combination, batch and broadcast shape, and leak nothing.
 */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { selectBackend } from '../../client/backend.js';
import { wasmBatchMatMul } from '../../client/kernels/wasm-batch-mat-mul.js';

type Case = { a: number[]; b: number[]; transposeA: boolean; transposeB: boolean };

const CASES: Case[] = [];
for (const transposeA of [false, true]) {
  for (const transposeB of [false, true]) {
    const [m, k, n] = [5, 7, 3];
    const a2 = transposeA ? [k, m] : [m, k];
    const b2 = transposeB ? [n, k] : [k, n];
    CASES.push({ a: a2, b: b2, transposeA, transposeB }); // rank 2
    CASES.push({ a: [4, ...a2], b: [4, ...b2], transposeA, transposeB }); // a batch of 4
    CASES.push({ a: [2, 3, ...a2], b: [1, 1, ...b2], transposeA, transposeB }); // b broadcast over two batch dims
    CASES.push({ a: [1, ...a2], b: [6, ...b2], transposeA, transposeB }); // a broadcast
  }
}
// Degenerate sizes: a row or a column of 1 (the Transpose kernel drops size-1 dimensions).
CASES.push({ a: [1, 9], b: [1, 9], transposeA: false, transposeB: true });
CASES.push({ a: [9, 1], b: [9, 4], transposeA: true, transposeB: false });
CASES.push({ a: [3, 9, 1], b: [3, 1, 9], transposeA: true, transposeB: true });
// The MLP's backward shapes.
CASES.push({ a: [128, 784], b: [128, 256], transposeA: true, transposeB: false });
CASES.push({ a: [128, 128], b: [256, 128], transposeA: false, transposeB: true });

function products(): Float32Array[] {
  return CASES.map((c, i) =>
    tf.tidy(() => {
      const a = tf.randomUniform(c.a, -1, 1, 'float32', 2 * i + 1);
      const b = tf.randomUniform(c.b, -1, 1, 'float32', 2 * i + 2);
      return tf.matMul(a, b, c.transposeA, c.transposeB).dataSync() as Float32Array;
    }),
  );
}

function worstDifference(a: Float32Array, b: Float32Array): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}

describe('wasm BatchMatMul without transposed operands', () => {
  it('is the kernel selectBackend registers for wasm', async () => {
    expect(await selectBackend('wasm')).toBe('wasm');
    expect(tf.getKernel('BatchMatMul', 'wasm')?.kernelFunc).toBe(wasmBatchMatMul.kernelFunc);
  });

  it('matches the cpu backend for every transpose combination, batch and broadcast shape', async () => {
    await selectBackend('cpu');
    const expected = products();
    await selectBackend('wasm');
    const actual = products();
    CASES.forEach((c, i) => {
      const what = JSON.stringify(c);
      expect(actual[i]!.length, what).toBe(expected[i]!.length);
      expect(worstDifference(actual[i]!, expected[i]!), what).toBeLessThan(1e-4);
    });
  });

  it('keeps shapes, refuses mismatched inner dimensions, and leaves no tensors or buffers behind', async () => {
    await selectBackend('wasm');
    const a = tf.ones([2, 3, 4]);
    const b = tf.ones([2, 5, 4]);
    const before = tf.memory();
    const c = tf.matMul(a, b, false, true);
    expect(c.shape).toEqual([2, 3, 5]);
    expect(Array.from(c.dataSync())).toEqual(new Array(30).fill(4));
    c.dispose();
    expect(() => tf.matMul(a, b)).toThrow(/inner shapes \(4\) and \(5\)/);
    const after = tf.memory();
    expect(after.numTensors).toBe(before.numTensors);
    expect(after.numDataBuffers).toBe(before.numDataBuffers);
    tf.dispose([a, b]);
  });

  it('trains a dense layer to the same weights as the cpu backend', async () => {
    const train = () =>
      tf.tidy(() => {
        const w = tf.variable(tf.randomUniform([20, 6], -0.5, 0.5, 'float32', 11));
        const x = tf.randomUniform([16, 20], -1, 1, 'float32', 12);
        const y = tf.randomUniform([16, 6], -1, 1, 'float32', 13);
        const optimizer = tf.train.sgd(0.1);
        for (let step = 0; step < 5; step++) optimizer.minimize(() => tf.losses.meanSquaredError(y, tf.relu(tf.matMul(x, w))) as tf.Scalar, false, [w]);
        const out = w.dataSync() as Float32Array;
        w.dispose();
        return out;
      });
    await selectBackend('cpu');
    const expected = train();
    await selectBackend('wasm');
    expect(worstDifference(train(), expected)).toBeLessThan(1e-5);
  });
});
