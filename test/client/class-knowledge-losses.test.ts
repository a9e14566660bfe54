/**
 * FedProto's and FedHKD's loss terms against golden values computed once with numpy (float64,
 * independently of the code) and stored here; then the terms at work in a student's pass.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../client/backend.js';
import { subset } from '../../client/data/dataset.js';
import { loadMnist } from '../../client/data/mnist.js';
import { createLossMethod, hyperKnowledgeLoss, prototypeLoss } from '../../client/losses/index.js';
import { createModel } from '../../client/models.js';
import { sharedInitialisation } from '../../client/procedures/fedproto.js';
import { Student } from '../../client/student.js';
import { expectRelative } from '../golden.js';

const FEATURES = [[0.5, 1.0, -0.2], [1.5, 0.0, 0.3], [0.2, 0.2, 0.2], [2.0, -1.0, 0.0]];
const LABELS = [0, 2, 1, 0];
const PROTOTYPES = [[1.0, 0.5, 0.0], [0, 0, 0], [1.0, 1.0, 1.0]];
const PRESENT = [1, 0, 1]; // nobody holds class 1: its row adds nothing but counts in N
const HEAD_LOGITS = [[2.0, 0.5, -1.0], [0.3, 0.3, 0.3], [-0.5, 1.5, 0.2]];
const SOFT = [[0.8, 0.15, 0.05], [0, 0, 0], [0.1, 0.7, 0.2]];

const GOLDEN = {
  prototypes: 0.4608333333333334,
  /** ∂/∂f[0][0] = 2(f − p̄)/(N·D). */
  prototypeGradient: -0.08333333333333333,
  hyperKnowledge: { 0.5: 0.19740403321164696, 1: 0.0018495694366970072, 2: 0.08366249995363338 } as Record<number, number>,
  /** ∂/∂z at [0][0] and [2][1]: (present_c/|H|)(softmax(z_c/T) − q_c)/T. */
  hyperKnowledgeGradient: { 0.5: [0.15033021169737948, 0.21525706491176755], 1: [-0.007201482705362139, 0.0051471644073650125], 2: [-0.052550584085796825, -0.0427196337569932] } as Record<number, number[]>,
};

describe('class-knowledge losses against golden values', () => {
  beforeAll(async () => {
    await selectBackend();
  });

  it('prototypes: (1/(N·D)) Σ_n [y_n held] ‖f_n − p̄_{y_n}‖², no gradient into the prototypes', () => {
    const [value, df, dp] = tf.tidy(() => {
      const labels = tf.tensor1d(LABELS, 'int32');
      const present = tf.tensor1d(PRESENT);
      const f = (x: tf.Tensor, p: tf.Tensor) => prototypeLoss(x as tf.Tensor2D, labels, p as tf.Tensor2D, present);
      const [gf, gp] = tf.grads(f)([tf.tensor2d(FEATURES), tf.tensor2d(PROTOTYPES)]);
      return [f(tf.tensor2d(FEATURES), tf.tensor2d(PROTOTYPES)).dataSync()[0]!, gf!.arraySync() as number[][], gp!.arraySync() as number[][]];
    });
    expectRelative(value as number, GOLDEN.prototypes);
    expectRelative((df as number[][])[0]![0]!, GOLDEN.prototypeGradient, 1e-4);
    expect((df as number[][])[2]!.every((g) => g === 0)).toBe(true); // class 1: absent, no pull
    expect((dp as number[][]).flat().every((g) => g === 0)).toBe(true);
  });

  for (const T of [0.5, 1, 2]) {
    it(`hyper-knowledge at T=${T}: mean over held classes of KL(Q̄_c ‖ softmax(head(H̄_c)/T)), no T²`, () => {
      const [value, dz] = tf.tidy(() => {
        const present = tf.tensor1d(PRESENT);
        const soft = tf.tensor2d(SOFT);
        const f = (z: tf.Tensor) => hyperKnowledgeLoss(z as tf.Tensor2D, soft, present, T);
        const [gz] = tf.grads(f)([tf.tensor2d(HEAD_LOGITS)]);
        return [f(tf.tensor2d(HEAD_LOGITS)).dataSync()[0]!, gz!.arraySync() as number[][]];
      });
      // At T = 1 the student's head is close to the target (KL ≈ 0.002): float32 cancellation leaves 2e-5 relative.
      expectRelative(value as number, GOLDEN.hyperKnowledge[T]!, T === 1 ? 1e-4 : 1e-5);
      expectRelative((dz as number[][])[0]![0]!, GOLDEN.hyperKnowledgeGradient[T]![0]!, 1e-4);
      expectRelative((dz as number[][])[2]![1]!, GOLDEN.hyperKnowledgeGradient[T]![1]!, 1e-4);
      expect((dz as number[][])[1]!.every((g) => g === 0)).toBe(true);
    });
  }

  it('the registry builds both terms; outside a class-knowledge session they say where they belong', () => {
    const inputs = { student: { logits: tf.zeros([1, 3]) as tf.Tensor2D, features: {} }, labels: tf.tensor1d([0], 'int32') };
    expect(() => createLossMethod('prototypes').compute(inputs)).toThrow(/^E_CONFIG: loss "prototypes" reads the round's per-class knowledge/);
    expect(() => createLossMethod('hyper-knowledge').compute(inputs)).toThrow(/^E_CONFIG: loss "hyper-knowledge"/);
    expect(() => createLossMethod('prototypes', { weight: 2 })).toThrow(/^E_CONFIG: loss "prototypes": params/);
    tf.dispose([inputs.student.logits, inputs.labels]);
  });
});

describe('class knowledge in a student\'s pass', () => {
  beforeAll(async () => {
    await selectBackend();
  });

  it('hyper-knowledge teaches the head the classes the participant does not hold; the tensor count stays flat', async () => {
    const mnist = loadMnist();
    const C = 10;
    const zeros = subset(mnist, [...mnist.y.keys()].filter((i) => mnist.y[i] === 0).slice(0, 300));
    // Two identical students that know every digit (trained on 1,000 of them), then see only zeros:
    // the label skew of a participant that holds one class, in a representation space its peers share.
    const prepared = async () => {
      const student = new Student(createModel({ name: 'mlp', inputShape: [28, 28, 1], numClasses: C, seed: 5 }), { sampleShape: [28, 28, 1], numClasses: C, learningRate: 1e-3, seed: 5 });
      await student.train({ labeled: subset(mnist, [...Array(1000).keys()]) }, { epochs: 2, batchSize: 32, alpha: 1, temperature: 1 });
      return student;
    };
    const taught = await prepared();
    const plain = await prepared();
    // The global knowledge: each class's mean representation on 20 of its digits and a confident
    // soft prediction of the class — what peers holding the class would send.
    const D = taught.representationWidth;
    expect(D).toBe(128);
    const representations = new Float32Array(C * D);
    const softPredictions = new Float32Array(C * C).fill(0.01);
    for (let k = 0; k < C; k++) {
      const digits = subset(mnist, [...mnist.y.keys()].filter((i) => mnist.y[i] === k).slice(-20));
      const { representations: r } = await taught.representations(digits.x);
      for (let i = 0; i < 20; i++) for (let j = 0; j < D; j++) representations[k * D + j]! += r[i * D + j]! / 20;
      softPredictions[k * C + k] = 0.91;
    }
    // What the head makes of the global representations of classes 1…9, which this participant never sees.
    const unseen = (student: Student) =>
      tf.tidy(() => {
        const head = student.model.layers.at(-1)!.apply(tf.tensor2d(representations, [C, D])) as tf.Tensor2D;
        return hyperKnowledgeLoss(head, tf.tensor2d(softPredictions, [C, C]), tf.tensor1d([0, 1, 1, 1, 1, 1, 1, 1, 1, 1]), 1).dataSync()[0]!;
      });
    const start = unseen(taught);
    const options = { epochs: 2, batchSize: 32, alpha: 1, temperature: 1 };
    const terms = [{ name: 'hyper-knowledge', weight: 0.5 }, { name: 'prototypes', weight: 0.5 }];
    const classKnowledge = { representations, counts: new Array<number>(C).fill(20), softPredictions, temperature: 1, terms, objectiveWeight: 0.5 };
    await taught.train({ labeled: zeros, classKnowledge }, options);
    const before = tf.memory().numTensors; // the optimizer's moments exist after the first pass
    await taught.train({ labeled: zeros, classKnowledge }, options);
    expect(tf.memory().numTensors).toBe(before);
    await plain.train({ labeled: zeros }, { ...options, epochs: 4 });
    // Trained on zeros, the taught head moves towards the unseen classes' targets, well past where
    // the same training without the term leaves it (measured: 0.187 at the start, 0.113 taught, 0.172 plain).
    expect(unseen(taught)).toBeLessThan(start);
    expect(unseen(taught)).toBeLessThan(0.75 * unseen(plain));
    taught.dispose();
    plain.dispose();
  });
});

describe('shared initialisation (FedProto, FedHKD)', () => {
  beforeAll(async () => {
    await selectBackend();
  });

  it('students built from different seeds start from the same weights in one session, different ones in another', () => {
    const make = (seed: number) => new Student(createModel({ name: 'mlp', inputShape: [28, 28, 1], numClasses: 10, seed }), { sampleShape: [28, 28, 1], numClasses: 10, learningRate: 1e-3, seed });
    const [a, b, c] = [make(1), make(2), make(3)];
    expect(a.getWeights()).not.toEqual(b.getWeights());
    sharedInitialisation(a, 'sim-fedproto-1');
    sharedInitialisation(b, 'sim-fedproto-1');
    sharedInitialisation(c, 'sim-fedproto-2');
    expect(a.getWeights()).toEqual(b.getWeights());
    expect(a.getWeights()).not.toEqual(c.getWeights());
    // Biases start at zero, kernels do not.
    const bias = a.model.layers[1]!.getWeights()[1]!;
    expect([...bias.dataSync()].every((v) => v === 0)).toBe(true);
    for (const s of [a, b, c]) s.dispose();
  });
});
