/**
 * Feature models, the training loop and the recipes of client/distill on the wasm backend, at
 * sizes small enough for a shared 2-core machine. The golden values of the losses are in
 * distill-losses.test.ts; here: shapes and names, what trains and what stays constant, no tensor
 * leaks, determinism, and each recipe end to end on a few hundred digits.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../client/backend.js';
import { subset, type LabeledDataset } from '../../client/data/dataset.js';
import { loadMnist, splitDataset } from '../../client/data/mnist.js';
import { defaultDistillOptions, evaluateModel, fit, runDistillation, type DistillOptions } from '../../client/distill/index.js';
import { WeightedSumLoss } from '../../client/losses/index.js';
import { buildFeatureModel, createModel, oneArchitecture, parseLayers, plainArchitecture, type FeatureModel } from '../../client/models.js';

const INPUT = [28, 28, 1];
let train: LabeledDataset;
let test: LabeledDataset;

const build = (layers: string, seed = 1) => buildFeatureModel({ architecture: plainArchitecture(layers), inputShape: INPUT, numClasses: 10, seed });
const weightsOf = (m: FeatureModel) => m.model.getWeights().map((w) => Array.from(w.dataSync()));
const quiet = { line: () => {} };

describe('local distillation on wasm', () => {
  beforeAll(async () => {
    expect(await selectBackend('wasm')).toBe('wasm');
    const split = splitDataset(loadMnist(), { test: 200, reference: 0 }, 7);
    train = subset(split.pool, Array.from({ length: 400 }, (_, i) => i));
    test = split.test;
  });

  it('reads layer lists and refuses what it cannot read', () => {
    expect(parseLayers('c8,p2,c16k3,d64')).toEqual([
      { type: 'conv', filters: 8, kernelSize: 5 },
      { type: 'pool', size: 2 },
      { type: 'conv', filters: 16, kernelSize: 3 },
      { type: 'dense', units: 64 },
    ]);
    expect(parseLayers('cnn')).toEqual(parseLayers('c8,p2,c16,p2,d64'));
    expect(() => parseLayers('d64,x3')).toThrow('E_CONFIG: architecture "d64,x3": cannot read "x3"; layers are dN (dense), cN or cNkK (conv, K×K, default 5), pN (max-pool N×N)');
    expect(() => oneArchitecture('d64', 1)).toThrow('E_CONFIG: ONE needs at least 2 branches; got 1');
  });

  it('names every intermediate activation, and `mlp`/`cnn` are client/models.ts networks with the same initial weights', () => {
    const thin = build('c4,p2,c8,p2,d32');
    expect(thin.outputNames).toEqual(['logits', 'conv1', 'pool1', 'conv2', 'pool2', 'dense1']);
    expect(thin.outputShapes).toEqual({ logits: [10], conv1: [24, 24, 4], pool1: [12, 12, 4], conv2: [8, 8, 8], pool2: [4, 4, 8], dense1: [32] });
    thin.dispose();
    for (const name of ['mlp', 'cnn'] as const) {
      const ours = build(name, 7);
      const sequential = createModel({ name, inputShape: INPUT, numClasses: 10, seed: 7 });
      expect(ours.parameterCount).toBe(sequential.countParams());
      expect(weightsOf(ours)).toEqual(sequential.getWeights().map((w) => Array.from(w.dataSync())));
      ours.dispose();
      sequential.dispose();
    }
  });

  it('a ONE model shares its lower layers, copies the rest per branch, and gates them', () => {
    const one = buildFeatureModel({ architecture: oneArchitecture('c4,p2,d16', 3), inputShape: INPUT, numClasses: 10, seed: 1 });
    expect(one.outputNames).toEqual(['branch0', 'branch1', 'branch2', 'gate', 'conv1', 'pool1', 'b0.dense1', 'b1.dense1', 'b2.dense1']);
    const out = tf.tidy(() => {
      const o = one.forward(tf.tensor(train.x.subarray(0, 5 * 784), [5, 28, 28, 1]), false);
      return { gateSums: (tf.sum(o.gate!, 1).arraySync() as number[]), shapes: [o.logits.shape, o.branches!.map((b) => b.shape)] };
    });
    out.gateSums.forEach((s) => expect(Math.abs(s - 1)).toBeLessThan(1e-6));
    expect(out.shapes).toEqual([[5, 10], [[5, 10], [5, 10], [5, 10]]]);
    one.dispose();
  });

  it('trains without leaking tensors, the same way twice for the same seed', async () => {
    const runOnce = async () => {
      const student = build('d16', 3);
      const loss = new WeightedSumLoss([{ name: 'ce', weight: 1 }]);
      const before = tf.memory().numTensors;
      const reports = await fit(student, loss, train, { epochs: 3, batchSize: 32, learningRate: 3e-3, seed: 5 });
      expect(tf.memory().numTensors).toBe(before);
      const weights = weightsOf(student);
      student.dispose();
      loss.dispose();
      return { reports, weights };
    };
    const a = await runOnce();
    const b = await runOnce();
    expect(a.reports[2]!.loss).toBeLessThan(a.reports[0]!.loss);
    expect(b.weights).toEqual(a.weights);
    expect(b.reports.map((r) => r.loss)).toEqual(a.reports.map((r) => r.loss));
  });

  it('stops with a clear error when a trained variable goes non-finite, even if the loss does not show it', async () => {
    // On wasm, fused dense/conv + ReLU outputs 0 for NaN weights: a NaN gradient can leave the loss
    // finite and the network silently dead. A NaN variable outside the loss stands in for that here.
    const student = build('d8', 9);
    const poisoned = tf.variable(tf.tensor1d([1, Number.NaN]), true);
    const loss = new WeightedSumLoss([{ name: 'ce', weight: 1 }]);
    await expect(
      fit(student, loss, train, { epochs: 1, batchSize: 100, learningRate: 1e-3, seed: 1, variables: [...student.trainableVariables(), poisoned] }),
    ).rejects.toThrow(`training diverged: variable ${poisoned.name} holds NaN or ±Infinity after epoch 1`);
    poisoned.dispose();
    student.dispose();
    loss.dispose();
  });

  it('distils without touching the teacher, and refuses a teacher-less run of a teacher loss', async () => {
    const teacher = build('d32', 11);
    await fit(teacher, new WeightedSumLoss([{ name: 'ce', weight: 1 }]), train, { epochs: 1, batchSize: 32, learningRate: 3e-3, seed: 1 });
    const teacherWeights = weightsOf(teacher);
    const student = build('d8', 12);
    const kd = new WeightedSumLoss([{ name: 'kd', weight: 1, params: { temperature: 4, alpha: 0.1 } }]);
    await expect(fit(student, kd, train, { epochs: 1, batchSize: 32, learningRate: 1e-3, seed: 1 })).rejects.toThrow(
      'E_CONFIG: the loss (kd) needs a teacher and none was given',
    );
    const reports = await fit(student, kd, train, { epochs: 2, batchSize: 32, learningRate: 3e-3, seed: 1, teacher, monitor: test });
    expect(weightsOf(teacher)).toEqual(teacherWeights);
    expect(reports[1]!.errors).toBeLessThan(test.y.length);
    teacher.dispose();
    student.dispose();
  });

  it('FitNets stage 1 trains the guided layers and the regressor only; AT and NST read teacher features per batch', async () => {
    const teacher = build('c4,p2,c8,p2,d16', 21);
    const student = build('c2,p2,c4,p2,d8', 22);
    const hint = new WeightedSumLoss([{ name: 'fitnets', weight: 1, params: { student: 'conv2', teacher: 'conv2' } }]);
    const names = student.model.weights.map((w) => w.originalName);
    const before = weightsOf(student);
    const stage1 = await fit(student, hint, train, { epochs: 1, batchSize: 50, learningRate: 1e-3, seed: 1, teacher });
    const after = weightsOf(student);
    const regressor = hint.variables();
    expect(regressor.map((v) => v.shape)).toEqual([[1, 1, 4, 8], [8]]);
    names.forEach((name, i) => {
      const changed = after[i]!.some((v, k) => v !== before[i]![k]);
      // conv1 and conv2 lead to the hint; dense1 and the logits layer do not.
      expect([name, changed]).toEqual([name, /^conv/.test(name)]);
    });
    expect(Number.isFinite(stage1[0]!.loss)).toBe(true);
    hint.dispose();
    const featureLoss = new WeightedSumLoss([
      { name: 'ce', weight: 1 },
      { name: 'at', weight: 10, params: { pairs: [{ student: 'conv1', teacher: 'conv1' }, { student: 'conv2', teacher: 'conv2' }] } },
      { name: 'nst', weight: 5, params: { pairs: [{ student: 'conv2', teacher: 'conv2' }] } },
    ]);
    const reports = await fit(student, featureLoss, train, { epochs: 1, batchSize: 50, learningRate: 1e-3, seed: 2, teacher });
    expect(Object.keys(reports[0]!.parts)).toEqual(['ce', 'at', 'nst']);
    featureLoss.dispose();
    teacher.dispose();
    student.dispose();
  });

  const tiny = (method: DistillOptions['method'], overrides: Partial<DistillOptions> = {}): DistillOptions => ({
    ...defaultDistillOptions(method),
    trainSize: 300,
    testSize: 100,
    teacherEpochs: 1,
    epochs: 1,
    hintEpochs: 1,
    generations: 2,
    batchSize: 50,
    seed: 3,
    ...overrides,
  });

  it('kd recipe: teacher, a like-for-like baseline and the distilled student, each scored on the test set', async () => {
    const before = tf.memory().numTensors;
    const report = await runDistillation(tiny('kd', { teacher: 'd32', student: 'd8' }), quiet, 'wasm');
    expect(tf.memory().numTensors).toBe(before);
    expect(report.data).toMatchObject({ train: 300, test: 100, splitSeed: 3 });
    for (const m of [report.teacher!, report.baseline!, report.student]) {
      expect(m.errors).toBe(Math.round((1 - m.accuracy) * 100));
      expect(m.history).toHaveLength(1);
    }
    expect(report.baseline!.stages).toEqual([{ epochs: 1, loss: [{ name: 'ce', weight: 1 }] }]);
    expect(report.student.stages).toEqual([{ epochs: 1, loss: [{ name: 'kd', weight: 1, params: { temperature: 4, alpha: 0.1 } }] }]);
  });

  it('fitnets recipe: two stages, and a baseline with as many passes', async () => {
    const report = await runDistillation(tiny('fitnets', { teacher: 'c4,p2,c8,p2,d16', student: 'c2,p2,c4,p2,d8' }), quiet, 'wasm');
    expect(report.student.stages.map((s) => s.loss[0]!.name)).toEqual(['fitnets', 'kd']);
    expect(report.baseline!.stages).toEqual([{ epochs: 2, loss: [{ name: 'ce', weight: 1 }] }]);
  });

  it('at recipe weights each pair by β/2 ÷ H·W, as the paper scales β', async () => {
    const report = await runDistillation(tiny('at', { teacher: 'c4,p2,c8,p2,d16', student: 'c2,p2,c4,p2,d8', baseline: false }), quiet, 'wasm');
    const at = report.student.stages[0]!.loss[1]!;
    expect(at.params).toEqual({ pairs: [{ student: 'conv1', teacher: 'conv1', weight: 1000 / 2 / (24 * 24) }, { student: 'conv2', teacher: 'conv2', weight: 1000 / 2 / 64 }] });
    expect(report.baseline).toBeUndefined();
  });

  it('ban recipe: every generation and the ensembles of generations', async () => {
    const report = await runDistillation(tiny('ban', { student: 'd8' }), quiet, 'wasm');
    expect(report.generations!.map((g) => g.stages[0]!.loss[0]!.name)).toEqual(['ce', 'kd', 'kd']);
    expect(report.ensembles!.map((e) => e.members)).toEqual([
      ['generation 0', 'generation 1', 'generation 2'],
      ['generation 1', 'generation 2'],
    ]);
    expect(report.student).toEqual(report.generations![2]);
  });

  it('one recipe: each branch and the gated ensemble, against one branch trained alone', async () => {
    const report = await runDistillation(tiny('one', { student: 'd16,d8' }), quiet, 'wasm');
    expect(report.student.branches).toHaveLength(3);
    expect(report.student.architecture).toBe('d16 → 3 × [d8,logits], gate fc-bn-relu');
    expect(report.baseline!.architecture).toBe('d16,d8');
  });

  it('evaluates ONE models branch by branch', async () => {
    const one = buildFeatureModel({ architecture: oneArchitecture('d8,d8', 2, 1, 'fc'), inputShape: INPUT, numClasses: 10, seed: 4 });
    const evaluation = await evaluateModel(one, test);
    expect(evaluation.branches).toHaveLength(2);
    expect(evaluation.probs).toHaveLength(test.y.length * 10);
    one.dispose();
  });
});
