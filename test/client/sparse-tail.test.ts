/**
 * token-kd on a top-k target with the student tail (client/losses/tokens.ts, sparseTail: student):
 * golden values computed once with numpy (float64) from the formula q̃_j = q_j on the support,
 * r · p_j / Σ_{i∉S} p_i off it, p = softmax(z/T) detached; and a dense target is unaffected.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../client/backend.js';
import { tokenKdLoss } from '../../client/losses/index.js';
import { decodeTopKRows, expandTopK, packTopK, topKSupport } from '../../protocol/index.js';

const close = (a: number, b: number, rel = 1e-5) => expect(Math.abs(a - b)).toBeLessThanOrEqual(rel * Math.max(1, Math.abs(b)));

beforeAll(async () => {
  await selectBackend('wasm');
});

describe('token-kd with the student tail (vocab 5, k 2, T 2; the third token is padding)', () => {
  const T = 2;
  const z = [[1, 0, -1, 2, 0.5], [-1, 1, 0.5, 0, 2], [3, -2, 0, 1, 1]];
  const mask = [1, 1, 0];
  // Each row's top 2 as sent: row 0 {3: 0.4, 0: 0.3} (r = 0.3), row 1 {4: 0.5, 1: 0.25} (r = 0.25), row 2 {0: 0.9, 1: 0.05}.
  const sent: Record<number, number>[] = [{ 3: 0.4, 0: 0.3 }, { 4: 0.5, 1: 0.25 }, { 0: 0.9, 1: 0.05 }];
  const dense = (fill: (r: number, j: number) => number) => sent.map((row, r) => [0, 1, 2, 3, 4].map((j) => row[j] ?? fill(r, j)));
  const support = tf.tensor2d(dense(() => 0).map((row, r) => row.map((_, j) => (sent[r]![j] === undefined ? 0 : 1))));
  // The target as it arrives: the remaining mass spread evenly over the 3 entries not sent (expandTopK).
  const rest = sent.map((row) => 1 - Object.values(row).reduce((a, b) => a + b, 0));
  const uniform = tf.tensor2d(dense((r) => rest[r]! / 3));

  it('the loss: the support kept, the remaining mass as the student\'s own distribution outside it', () => {
    close(tokenKdLoss(tf.tensor2d(z), uniform, tf.tensor1d(mask), T, support).dataSync()[0]!, 0.15333900265446182);
    // The same target completed evenly (no support given) is a different, larger loss.
    close(tokenKdLoss(tf.tensor2d(z), uniform, tf.tensor1d(mask), T).dataSync()[0]!, 0.204125939140173);
    // Whatever the target holds off the support is ignored: only the sent entries and the mass they leave count.
    const garbage = tf.tensor2d(dense((r, j) => (j + 1) / 100));
    close(tokenKdLoss(tf.tensor2d(z), garbage, tf.tensor1d(mask), T, support).dataSync()[0]!, 0.15333900265446182);
  });

  it('the gradient: T·(softmax(z/T) − q̃)/M with q̃ a constant (the student side detached), zero on padding, none into the target', () => {
    const g = tf.grad((x: tf.Tensor) => tokenKdLoss(x as tf.Tensor2D, uniform, tf.tensor1d(mask), T, support))(tf.tensor2d(z));
    const want = [
      -0.07282703029796325, 0.03400111273554347, 0.020622717338452806, -0.02545509272413632, 0.043658292948103083,
      0.031114308639251076, -0.022827030297963236, 0.06586899190618642, 0.05129882247666202, -0.12545509272413624,
      0, 0, 0, 0, 0,
    ];
    Array.from(g.dataSync()).forEach((v, i) => expect(v).toBeCloseTo(want[i]!, 6));
    const gq = tf.grad((x: tf.Tensor) => tokenKdLoss(tf.tensor2d(z), x as tf.Tensor2D, tf.tensor1d(mask), T, support))(uniform);
    expect(Array.from(gq.dataSync()).every((v) => v === 0)).toBe(true);
  });

  it('a dense target is unaffected: a support of every entry gives the dense loss, as does no support', () => {
    const q = tf.softmax(tf.div(tf.tensor2d([[0.5, 1.5, -0.5, 0, 1], [1, 0, 1, 2, -1], [9, -9, 0, 0, 0]]), T)) as tf.Tensor2D;
    const plain = tokenKdLoss(tf.tensor2d(z), q, tf.tensor1d(mask), T).dataSync()[0]!;
    close(tokenKdLoss(tf.tensor2d(z), q, tf.tensor1d(mask), T, tf.ones([3, 5]) as tf.Tensor2D).dataSync()[0]!, plain);
  });

  it('topKSupport marks exactly the entries a top-k tensor sent, as expandTopK places them', () => {
    const values = Float32Array.from(dense((r) => rest[r]! / 3).flat());
    const rows = decodeTopKRows(packTopK(values, [3, 5], 2, 'float32'));
    expect(Array.from(topKSupport(rows))).toEqual(Array.from(support.dataSync()));
    expandTopK(rows).forEach((v, i) => expect(v).toBeCloseTo(values[i]!, 6));
  });
});
