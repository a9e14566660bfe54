/**
 * codistill's Adam (client/optimizer.ts): on wasm one fused SIMD kernel per variable
 * (client/kernels/wasm-adam.wat), elsewhere tfjs's own Adam. Either way it must follow tfjs's
 * AdamOptimizer bit for bit, step after step, never write through to a tensor that shares a
 * variable's values, and leak nothing; and the committed module bytes must be what the .wat assembles to.
 */
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { selectBackend } from '../../client/backend.js';
import { Adam } from '../../client/optimizer.js';
import { assembleWat, bytesModule } from '../../simulations/build-wasm.js';

/** A small two-layer regression, its variables seeded identically for each optimizer. */
function problem(seed: number) {
  const w1 = tf.variable(tf.randomNormal([12, 16], 0, 0.5, 'float32', seed));
  const b1 = tf.variable(tf.randomNormal([16], 0, 0.1, 'float32', seed + 1));
  const w2 = tf.variable(tf.randomNormal([16, 3], 0, 0.5, 'float32', seed + 2));
  // In the list but not in the loss: no gradient, so both optimizers must leave it alone.
  const unused = tf.variable(tf.randomNormal([4], 0, 1, 'float32', seed + 3));
  const x = tf.randomUniform([32, 12], -1, 1, 'float32', seed + 4);
  const y = tf.randomUniform([32, 3], -1, 1, 'float32', seed + 5);
  const loss = () => tf.tidy(() => tf.losses.meanSquaredError(y, tf.matMul(tf.relu(tf.add(tf.matMul(x, w1), b1)), w2)) as tf.Scalar);
  const variables = [w1, b1, w2, unused];
  return { variables, loss, dispose: () => tf.dispose([...variables, x, y]) };
}

const values = (vs: tf.Variable[]) => vs.map((v) => Array.from(v.dataSync()));

describe('Adam in one pass per variable', () => {
  it('the committed wasm-adam.wasm.ts holds exactly what wasm-adam.wat assembles to', async () => {
    const folder = new URL('../../client/kernels/', import.meta.url);
    const bytes = await assembleWat(new URL('wasm-adam.wat', folder).pathname);
    expect(readFileSync(new URL('wasm-adam.wasm.ts', folder), 'utf8')).toBe(bytesModule('wasm-adam.wat', bytes));
  });

  for (const backend of ['cpu', 'wasm']) {
    it(`${backend}: the same values as tf.train.adam, bit for bit, over 40 steps, for two settings of lr, β₁, β₂`, async () => {
      expect(await selectBackend(backend)).toBe(backend);
      for (const [lr, beta1, beta2] of [[1e-2, 0.9, 0.999], [3e-3, 0.8, 0.99]] as const) {
        const stock = problem(7);
        const ours = problem(7);
        const reference = tf.train.adam(lr, beta1, beta2);
        const adam = new Adam(lr, beta1, beta2);
        const before = values(ours.variables);
        for (let step = 1; step <= 40; step++) {
          const a = tf.tidy(() => reference.minimize(stock.loss, true, stock.variables)!.dataSync()[0]!);
          const b = tf.tidy(() => adam.minimize(ours.loss, ours.variables).dataSync()[0]!);
          expect(b, `loss at step ${step}`).toBe(a);
          expect(values(ours.variables), `variables after step ${step}`).toEqual(values(stock.variables));
        }
        expect(adam.fused).toBe(backend === 'wasm');
        const after = values(ours.variables);
        expect(after[0]).not.toEqual(before[0]); // it did move
        expect(after[3]).toEqual(before[3]); // no gradient, no change
        reference.dispose();
        adam.dispose();
        stock.dispose();
        ours.dispose();
      }
    });

    it(`${backend}: never writes through to another tensor holding a variable's values, and allocates nothing per step`, async () => {
      expect(await selectBackend(backend)).toBe(backend);
      const { variables, loss, dispose } = problem(11);
      // w1 now shares its storage with `held` (tf.Variable.assign keeps the tensor's data).
      const held = tf.randomNormal([12, 16], 0, 0.5, 'float32', 99);
      const heldValues = Array.from(held.dataSync());
      variables[0]!.assign(held);
      const adam = new Adam(1e-2);
      tf.tidy(() => void adam.minimize(loss, variables).dispose());
      expect(Array.from(held.dataSync())).toEqual(heldValues);
      expect(Array.from(variables[0]!.dataSync())).not.toEqual(heldValues);
      const tensors = tf.memory().numTensors;
      for (let i = 0; i < 5; i++) tf.tidy(() => void adam.minimize(loss, variables).dispose());
      expect(tf.memory().numTensors).toBe(tensors);
      held.dispose();
      adam.dispose();
      dispose();
    });
  }
});
