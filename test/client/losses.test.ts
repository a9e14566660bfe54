/**
 * Golden values for the losses, computed once in float64 (the formulas in client/losses/logits.ts, by
 * hand in plain JavaScript) and stored here. They pin the details other libraries got wrong:
 * KL(target ‖ student) not the reverse, mean over the batch (N) not over N×C, the T² factor,
 * and no gradient into the target.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../client/backend.js';
import { createLossMethod, crossEntropy, distillationLoss, kdLoss, logitMatchingLoss, stackedDistillationLoss, stackTargets, WeightedSumLoss } from '../../client/losses/index.js';
import { expectRelative } from '../golden.js';

const LOGITS = [[2.0, -1.0, 0.5], [0.1, 0.2, -0.3]];
const TARGET = [[0.7, 0.2, 0.1], [0.0, 0.5, 0.5]]; // a zero entry: 0·log 0 must count as 0
const LABELS = [0, 2];

const GOLDEN = {
  crossEntropy: 0.831069476105,
  kd: { 1: 0.333586609554, 2: 1.07464536986, 4: 4.60030097008 } as Record<number, number>,
  /** ∂kd/∂z for z[0][0] and z[1][1]: (T/N)·(softmax(z/T) − q). */
  kdGradient: { 1: [0.0427985172946, -0.0509053294775], 2: [-0.110202336343, -0.133703686785], 4: [-0.473926516068, -0.300162631787] } as Record<number, number[]>,
  /** 0.3·CE + 0.7·kd at T = 2. */
  distillation: 1.001572601734,
};

describe('losses against golden values', () => {
  beforeAll(async () => {
    await selectBackend();
  });

  it('cross-entropy is the batch mean of −log softmax at the label', () => {
    const value = tf.tidy(() => crossEntropy(tf.tensor2d(LOGITS), tf.tensor1d(LABELS, 'int32')).dataSync()[0]!);
    expectRelative(value, GOLDEN.crossEntropy);
  });

  for (const T of [1, 2, 4]) {
    it(`KD at T=${T}: T²·mean_n KL(target ‖ softmax(z/T))`, () => {
      const value = tf.tidy(() => kdLoss(tf.tensor2d(LOGITS), tf.tensor2d(TARGET), T).dataSync()[0]!);
      expectRelative(value, GOLDEN.kd[T]!);
    });

    it(`KD gradient at T=${T} is (T/N)(softmax(z/T) − q) and nothing flows into the target`, () => {
      const [dz, dq] = tf.tidy(() => {
        const grads = tf.grads((z: tf.Tensor, q: tf.Tensor) => kdLoss(z as tf.Tensor2D, q as tf.Tensor2D, T));
        const [gz, gq] = grads([tf.tensor2d(LOGITS), tf.tensor2d(TARGET)]);
        return [gz!.arraySync() as number[][], gq!.arraySync() as number[][]];
      });
      expectRelative(dz[0]![0]!, GOLDEN.kdGradient[T]![0]!, 1e-4);
      expectRelative(dz[1]![1]!, GOLDEN.kdGradient[T]![1]!, 1e-4);
      expect(dq.flat().every((g) => g === 0)).toBe(true);
    });
  }

  it('KD is zero when the student matches the target, and not symmetric', () => {
    const [same, forward, reverse] = tf.tidy(() => {
      const q = tf.tensor2d(TARGET[0]!, [1, 3]);
      const p = tf.tensor2d([[0.2, 0.3, 0.5]]);
      // Logits whose softmax at T = 1 is exactly q (resp. p): z = log q.
      return [kdLoss(tf.log(q) as tf.Tensor2D, q, 1), kdLoss(tf.log(p) as tf.Tensor2D, q, 1), kdLoss(tf.log(q) as tf.Tensor2D, p, 1)]
        .map((t) => t.dataSync()[0]!);
    });
    expect(Math.abs(same!)).toBeLessThan(1e-6);
    // KL(q‖p) for q = (.7,.2,.1), p = (.2,.3,.5), by hand; the reverse KL(p‖q) differs.
    expectRelative(forward!, 0.7 * Math.log(0.7 / 0.2) + 0.2 * Math.log(0.2 / 0.3) + 0.1 * Math.log(0.1 / 0.5));
    expectRelative(reverse!, 0.2 * Math.log(0.2 / 0.7) + 0.3 * Math.log(0.3 / 0.2) + 0.5 * Math.log(0.5 / 0.1));
  });

  it("FedMD's logit matching is the mean absolute error over N×C, with no gradient into the consensus", () => {
    const [value, dq] = tf.tidy(() => {
      const target = tf.tensor2d([[1, 0, 0], [0, 0, 1]]);
      const loss = logitMatchingLoss(tf.tensor2d(LOGITS), target).dataSync()[0]!;
      const grad = tf.grad((t: tf.Tensor) => logitMatchingLoss(tf.tensor2d(LOGITS), t as tf.Tensor2D))(target);
      return [loss, grad.dataSync()] as const;
    });
    // (|2−1| + |−1| + |0.5| + |0.1| + |0.2| + |−0.3−1|) / 6 = 4.1 / 6
    expectRelative(value, 4.1 / 6);
    expect([...dq].every((g) => g === 0)).toBe(true);
  });

  it('the participant loss is α·CE + (1−α)·T²·KL, and CE alone without a target', () => {
    const [both, taskOnly] = tf.tidy(() => {
      const z = tf.tensor2d(LOGITS);
      const labels = tf.tensor1d(LABELS, 'int32');
      return [
        distillationLoss({ privateLogits: z, labels, referenceLogits: z, target: tf.tensor2d(TARGET) }, 0.3, 2),
        distillationLoss({ privateLogits: z, labels }, 0.3, 2),
      ].map((t) => t.dataSync()[0]!);
    });
    expectRelative(both!, GOLDEN.distillation);
    expectRelative(taskOnly!, GOLDEN.crossEntropy);
  });

  /** The stacked form on rows [labeled…, soft…]: its value and its gradient with respect to those logits. */
  function stacked(logits: number[][], labels: number[], target: number[][], alpha: number, T: number): { value: number; grad: number[][] } {
    const c = logits[0]!.length;
    const rows = logits.length;
    const into = { rowScale: new Float32Array(rows), weights: new Float32Array(rows * c), constant: 0 };
    const t = stackTargets(labels, target.flat(), c, alpha, T, into);
    return tf.tidy(() => {
      const targets = { rowScale: tf.tensor2d(t.rowScale, [rows, 1]), weights: tf.tensor2d(t.weights, [rows, c]), constant: t.constant };
      const { value, grads } = tf.valueAndGrads((z: tf.Tensor) => stackedDistillationLoss(z as tf.Tensor2D, targets))([tf.tensor2d(logits)]);
      return { value: value.dataSync()[0]!, grad: grads[0]!.arraySync() as number[][] };
    });
  }

  it('the stacked one-pass form has the golden values: α·CE + (1−α)·T²·KL, CE alone, KD alone', () => {
    // Rows: LOGITS as the labeled rows, then LOGITS again as the soft rows (as the golden's batch).
    expectRelative(stacked([...LOGITS, ...LOGITS], LABELS, TARGET, 0.3, 2).value, GOLDEN.distillation);
    expectRelative(stacked(LOGITS, LABELS, [], 0.3, 2).value, GOLDEN.crossEntropy);
    for (const T of [1, 2, 4]) {
      const kd = stacked(LOGITS, [], TARGET, 0.3, T);
      expectRelative(kd.value, GOLDEN.kd[T]!);
      expectRelative(kd.grad[0]![0]!, GOLDEN.kdGradient[T]![0]!);
      expectRelative(kd.grad[1]![1]!, GOLDEN.kdGradient[T]![1]!);
    }
  });

  it("the registry's peers method is the stacked form: golden values alone and in a weighted sum, and no use without peers", () => {
    const rows = 4;
    const into = { rowScale: new Float32Array(rows), weights: new Float32Array(rows * 3), constant: 0 };
    const t = stackTargets(LABELS, TARGET.flat(), 3, 0.3, 2, into);
    tf.tidy(() => {
      const logits = tf.tensor2d([...LOGITS, ...LOGITS]);
      const target = { rowScale: tf.tensor2d(t.rowScale, [rows, 1]), weights: tf.tensor2d(t.weights, [rows, 3]), constant: t.constant };
      // The other terms read the labeled rows: the first two.
      const inputs = { student: { logits: tf.tensor2d(LOGITS), features: {} }, labels: tf.tensor1d(LABELS, 'int32'), peers: { logits, target } };
      expectRelative(createLossMethod('peers').compute(inputs).dataSync()[0]!, GOLDEN.distillation);
      // 2·peers + 0.5·CE on the labeled rows.
      const sum = new WeightedSumLoss([{ name: 'peers', weight: 2 }, { name: 'ce', weight: 0.5 }]);
      expectRelative(sum.compute(inputs).dataSync()[0]!, 2 * GOLDEN.distillation + 0.5 * GOLDEN.crossEntropy);
      const { peers: _, ...offline } = inputs;
      expect(() => createLossMethod('peers').compute(offline)).toThrow(/E_CONFIG: loss "peers" distils towards the peers' target/);
      expect(() => createLossMethod('peers', { alpha: 0.5 })).toThrow(/E_CONFIG: loss "peers": params/);
    });
  });

  for (const backend of ['cpu', 'wasm']) {
    it(`${backend}: the stacked form gives distillationLoss's value and gradients on a training-sized batch`, async () => {
      expect(await selectBackend(backend)).toBe(backend);
      const [p, s, c, alpha, T] = [64, 64, 10, 0.5, 3];
      const logits = tf.tidy(() => tf.randomNormal([p + s, c], 0, 3, 'float32', 5).arraySync() as number[][]);
      const labels = Array.from({ length: p }, (_, i) => (i * 7) % c);
      const target = tf.tidy(() => tf.softmax(tf.randomNormal([s, c], 0, 2, 'float32', 6)).arraySync() as number[][]);
      target[0] = [1, 0, 0, 0, 0, 0, 0, 0, 0, 0]; // zeros in a target: 0·log 0 counts as 0
      const ours = stacked(logits, labels, target, alpha, T);
      const reference = tf.tidy(() => {
        const f = (z: tf.Tensor) => distillationLoss({
          privateLogits: z.slice([0, 0], [p, c]) as tf.Tensor2D, labels: tf.tensor1d(labels, 'int32'),
          referenceLogits: z.slice([p, 0], [s, c]) as tf.Tensor2D, target: tf.tensor2d(target),
        }, alpha, T);
        const { value, grads } = tf.valueAndGrads(f)([tf.tensor2d(logits)]);
        return { value: value.dataSync()[0]!, grad: grads[0]!.arraySync() as number[][] };
      });
      expectRelative(ours.value, reference.value);
      const scale = Math.max(...reference.grad.flat().map(Math.abs));
      ours.grad.flat().forEach((g, i) => expect(Math.abs(g - reference.grad.flat()[i]!) / scale).toBeLessThan(1e-5));
    });
  }
});
