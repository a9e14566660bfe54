/** Students train for real on MNIST on the wasm backend, MLP and CNN alike. */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../client/backend.js';
import { subset } from '../../client/data/dataset.js';
import { loadMnist, splitDataset } from '../../client/data/mnist.js';
import { attentionTransferLoss } from '../../client/losses/index.js';
import { createModel, featureView, type ModelName } from '../../client/models.js';
import { Student } from '../../client/student.js';

describe('students on wasm', () => {
  beforeAll(async () => {
    expect(await selectBackend('wasm')).toBe('wasm');
  });

  for (const name of ['mlp', 'cnn'] as ModelName[]) {
    it(`${name}: learns MNIST from 1,000 samples, and soft predictions are distributions`, async () => {
      const split = splitDataset(loadMnist(), { test: 500, reference: 100 }, 3);
      const train = subset(split.pool, Array.from({ length: 1000 }, (_, i) => i));
      const student = new Student(createModel({ name, inputShape: [28, 28, 1], numClasses: 10, seed: 5 }), {
        sampleShape: [28, 28, 1], numClasses: 10, learningRate: name === 'cnn' ? 3e-3 : 1e-3, seed: 5,
      });
      const before = (await student.evaluate(split.test)).accuracy;
      const tensors = tf.memory().numTensors;
      const first = await student.train({ labeled: train }, { epochs: 1, batchSize: 32, alpha: 1, temperature: 1 });
      const afterFirst = tf.memory().numTensors; // Adam's slots now exist
      const second = await student.train({ labeled: train }, { epochs: 1, batchSize: 32, alpha: 1, temperature: 1 });
      const after = (await student.evaluate(split.test)).accuracy;
      expect(afterFirst).toBeGreaterThan(tensors);
      expect(tf.memory().numTensors).toBe(afterFirst);
      expect(second.loss).toBeLessThan(first.loss);
      expect(before).toBeLessThan(0.3);
      expect(after).toBeGreaterThan(0.75);

      const soft = await student.predict(split.reference.x, 4);
      expect(soft).toHaveLength(100 * 10);
      for (let r = 0; r < 100; r++) {
        const row = soft.subarray(r * 10, r * 10 + 10);
        expect(Math.abs(row.reduce((a, b) => a + b, 0) - 1)).toBeLessThan(1e-5);
      }
      student.dispose();
    });
  }

  it('distilling towards a target moves the student towards it', async () => {
    const split = splitDataset(loadMnist(), { test: 100, reference: 200 }, 4);
    const train = subset(split.pool, Array.from({ length: 64 }, (_, i) => i));
    const student = new Student(createModel({ name: 'mlp', inputShape: [28, 28, 1], numClasses: 10, seed: 6 }), {
      sampleShape: [28, 28, 1], numClasses: 10, learningRate: 1e-3, seed: 6,
    });
    // A target that says "class 3" softly for every reference sample.
    const probs = new Float32Array(200 * 10).fill(0.02);
    for (let r = 0; r < 200; r++) probs[r * 10 + 3] = 0.82;
    const meanClass3 = async () => {
      const p = await student.predict(split.reference.x, 1);
      let s = 0;
      for (let r = 0; r < 200; r++) s += p[r * 10 + 3]!;
      return s / 200;
    };
    const before = await meanClass3();
    await student.train({ labeled: train, soft: { x: split.reference.x, probs } }, { epochs: 4, batchSize: 32, alpha: 0, temperature: 1 });
    expect(await meanClass3()).toBeGreaterThan(Math.max(0.5, before + 0.3));
    student.dispose();
  });

  it('an objective with terms beyond peers: AT at weight 0 trains bit for bit as the default objective; at weight 100 it pulls the attention maps towards the teacher\'s', async () => {
    const split = splitDataset(loadMnist(), { test: 200, reference: 64 }, 8);
    const train = subset(split.pool, Array.from({ length: 128 }, (_, i) => i));
    const probs = await (async () => {
      const peer = new Student(createModel({ name: 'mlp', inputShape: [28, 28, 1], numClasses: 10, seed: 2 }), { sampleShape: [28, 28, 1], numClasses: 10, learningRate: 1e-3, seed: 2 });
      const p = await peer.predict(split.reference.x, 3);
      peer.dispose();
      return p;
    })();
    const teacherModel = createModel({ name: 'cnn', inputShape: [28, 28, 1], numClasses: 10, seed: 9 });
    const teacher = featureView(teacherModel, 10);
    const at = (weight: number) => [{ name: 'peers', weight: 1 }, { name: 'at', weight, params: { pairs: [{ student: 'conv2', teacher: 'conv2' }] } }];
    const make = (objective?: ReturnType<typeof at>) => new Student(createModel({ name: 'cnn', inputShape: [28, 28, 1], numClasses: 10, seed: 5 }), {
      sampleShape: [28, 28, 1], numClasses: 10, learningRate: 3e-3, seed: 5, objective, teacher: objective === undefined ? undefined : teacher,
    });
    const attentionDistance = (student: Student) => tf.tidy(() => {
      const x = tf.tensor(split.test.x, [200, 28, 28, 1]);
      const ours = featureView(student.model, 10).forward(x, false).features.conv2!;
      return attentionTransferLoss(ours, teacher.forward(x, false).features.conv2!).dataSync()[0]!;
    });
    const options = { epochs: 2, batchSize: 32, alpha: 0.5, temperature: 3 };
    const sources = { labeled: train, soft: { x: split.reference.x, probs } };
    const plain = make();
    const zero = make(at(0));
    const pulled = make(at(100));
    const before = attentionDistance(plain);
    await plain.train(sources, options);
    await zero.train(sources, options);
    const tensors = tf.memory().numTensors;
    await zero.train(sources, { ...options, epochs: 1 });
    await plain.train(sources, { ...options, epochs: 1 });
    expect(tf.memory().numTensors).toBe(tensors);
    expect(zero.getWeights()).toEqual(plain.getWeights());

    await pulled.train(sources, { ...options, epochs: 3 });
    expect(pulled.getWeights()).not.toEqual(plain.getWeights());
    const [afterPlain, afterPulled] = [attentionDistance(plain), attentionDistance(pulled)];
    // Measured: about half the labels-and-peers student's distance after 3 epochs.
    expect(afterPulled).toBeLessThan(0.7 * Math.min(before, afterPlain));
    // Without a teacher the objective cannot be built; without the peers term it is refused.
    const spare = createModel({ name: 'cnn', inputShape: [28, 28, 1], numClasses: 10, seed: 5 });
    expect(() => new Student(spare, { sampleShape: [28, 28, 1], numClasses: 10, learningRate: 1e-3, seed: 5, objective: at(1) }))
      .toThrow(/E_CONFIG: the objective \(peers \+ at\) needs a local teacher/);
    expect(() => new Student(spare, { sampleShape: [28, 28, 1], numClasses: 10, learningRate: 1e-3, seed: 5, objective: [{ name: 'ce', weight: 1 }] }))
      .toThrow(/E_CONFIG: a participant's objective needs the "peers" term .* exactly once; got ce/);
    spare.dispose();
    for (const st of [plain, zero, pulled]) st.dispose();
    teacherModel.dispose();
  });
});
