/**
 * Golden values for the feature and offline methods of client/losses/: stored numbers computed
 * once in float64 by a throwaway plain-JavaScript script — the formulas written out by hand,
 * gradients of the feature terms by central differences, of KD and ONE also analytically —
 * and checked here with a relative tolerance of 1e-5. They pin the details that are easy to get
 * wrong: KL(teacher ‖ student) not the reverse, the batch mean, T², no gradient into the teacher
 * (or into ONE's ensemble through the KL terms), the FitNets regressor's shape and
 * non-linearity, AT's paper form against the authors' code form, NST's full MMD.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../client/backend.js';
import {
  attentionMap,
  attentionTransferLoss,
  createLossMethod,
  FitNetsMethod,
  gatedEnsemble,
  nstLoss,
  WeightedSumLoss,
  type LossInputs,
  type ModelOutputs,
} from '../../client/losses/index.js';
import { buildFeatureModel } from '../../client/models.js';
import { expectRelative } from '../golden.js';

// Student logits, teacher logits and labels for KD.
const S = [[1.5, -0.5, 0.2], [0.3, 0.9, -1.1]];
const TZ = [[2.2, 0.1, -0.7], [-0.4, 1.3, 0.6]];
const Y = [0, 1];

// FitNets: guided [2,3,3,1] → valid 2×2 conv regressor [2,2,1,2] → hint [2,2,2,2]; and vectors [2,3] → [2,2].
const FS = [[[[0.5], [-1.0], [0.3]], [[0.8], [0.2], [-0.4]], [[-0.6], [1.1], [0.7]]], [[[0.1], [0.9], [-0.3]], [[-0.8], [0.4], [0.6]], [[0.2], [-0.5], [1.2]]]];
const FT = [[[[0.4, 0.0], [0.1, 0.6]], [[0.9, 0.2], [0.0, 0.3]]], [[[0.2, 0.5], [0.7, 0.0]], [[0.3, 0.1], [0.6, 0.8]]]];
const FK = [[[[0.6, -0.3]], [[0.2, 0.5]]], [[[-0.4, 0.7]], [[0.3, -0.2]]]];
const FB = [0.05, -0.1];
const DS = [[0.5, -0.2, 0.9], [1.0, 0.3, -0.7]];
const DT = [[0.4, 1.1], [0.0, 0.6]];
const DK = [[0.3, -0.5], [0.8, 0.1], [-0.2, 0.4]];
const DB = [0.1, 0.0];

// AT: student [2,2,3,2], teacher [2,2,3,3] (channels differ, H×W equal).
const AS = [[[[0.5, -1.0], [0.2, 0.3], [1.5, 0.0]], [[-0.7, 0.4], [0.9, 1.2], [0.1, -0.3]]], [[[1.1, 0.6], [-0.2, 0.8], [0.4, 0.4]], [[0.0, 0.9], [0.3, -1.3], [0.7, 0.2]]]];
const AT = [[[[0.3, 0.1, -0.2], [1.0, 0.4, 0.0], [0.6, -0.5, 0.9]], [[0.2, 0.2, 0.2], [-0.8, 0.7, 0.1], [0.5, 0.0, 1.4]]], [[[0.9, -0.1, 0.3], [0.2, 0.6, -0.4], [1.2, 0.1, 0.0]], [[-0.3, 0.8, 0.5], [0.4, 0.4, 0.4], [0.0, -1.0, 0.7]]]];

// NST: student [2,2,2,2] (C_S = 2), teacher [2,2,2,3] (C_T = 3), H·W = 4.
const NS = [[[[0.5, 0.1], [1.2, 0.0]], [[0.3, 0.8], [0.0, 0.6]]], [[[0.9, 0.4], [0.2, 1.0]], [[0.7, 0.0], [0.1, 0.3]]]];
const NT = [[[[0.2, 1.0, 0.0], [0.8, 0.3, 0.5]], [[0.0, 0.4, 0.9], [0.6, 0.0, 0.2]]], [[[1.1, 0.2, 0.3], [0.0, 0.7, 0.4]], [[0.5, 0.5, 0.0], [0.3, 0.1, 0.8]]]];

// ONE: three branches' logits [2,3], a gate [2,3], labels, T = 3.
const Z = [[[1.0, 0.2, -0.5], [0.4, -0.3, 0.8]], [[0.6, 0.9, -0.1], [-0.2, 0.5, 0.3]], [[1.4, -0.6, 0.0], [0.1, 0.0, 1.1]]];
const G = [[0.5, 0.3, 0.2], [0.1, 0.6, 0.3]];
const OY = [0, 2];

const GOLDEN = {
  ce: 0.431667501747,
  /** α = 0.25, T = 3: 0.25·CE + 0.75·9·mean_n KL(softmax(TZ/3) ‖ softmax(S/3)); per row 0.250138348545 and 0.438696687405. */
  kd: { value: 0.344417517975, swapped: 0.326495128173, softOnlyT1: 0.180598195927, gradS00: -0.115186002663, gradS12: -0.119890192848 },
  fitnetsConv: { value: 0.480025, linear: 1.536425, gradS0110: 0.018, gradK1001: 0.0285 },
  fitnetsDense: { value: 0.537125, gradS10: 0.117, gradK21: -0.4545 },
  at: {
    map0: [1.25, 0.13, 2.25, 0.65, 2.25, 0.1],
    paper: 0.849265110836,
    code: 0.120693055247,
    paperP3: 1.08560805361,
    gradPaper0110: 0.00403354721845,
    gradCode1021: -0.023967761914,
  },
  nst: { value: 0.178746058602, d3c1: 0.993087417771, grad0010: 0.033699841695, grad1101: -0.0599298881909 },
  one: {
    ensemble: [[0.96, 0.25, -0.28], [-0.05, 0.27, 0.59]],
    value: 2.98125299681,
    gradZ0_00: -0.290486293908,
    gradZ2_12: -0.2211079837,
    gradG11: -0.0262745687429,
    /** What ∂L/∂z_0[0][0] would be if the KL terms' ensemble were not detached. */
    gradZ0_00NotDetached: -0.299338034804,
  },
};

const scalar = (t: tf.Tensor) => t.dataSync()[0]!;
/** One element of a tensor by its index, e.g. at(g, 0, 1, 1, 0). */
const at = (t: tf.Tensor, ...index: number[]) => index.reduce<unknown>((a, i) => (a as unknown[])[i], t.arraySync()) as number;
const logits = (values: number[][]): ModelOutputs => ({ logits: tf.tensor2d(values), features: {} });

describe('local-distillation losses against golden values', () => {
  beforeAll(async () => {
    await selectBackend();
  });

  describe('kd (Hinton et al. 2015) through the registry', () => {
    const kd = (student: number[][], teacher: number[][], params: Record<string, unknown>, labels = Y) =>
      tf.tidy(() => scalar(createLossMethod('kd', params).compute({ student: logits(student), teacher: logits(teacher), labels: tf.tensor1d(labels, 'int32') })));

    it('is α·CE + (1−α)·T²·mean_n KL(teacher_T ‖ student_T), with the teacher first', () => {
      expectRelative(kd(S, TZ, { temperature: 3, alpha: 0.25 }), GOLDEN.kd.value);
      // Swapping the roles gives another number: the direction is pinned.
      expectRelative(kd(TZ, S, { temperature: 3, alpha: 0.25 }), GOLDEN.kd.swapped);
      expectRelative(kd(S, TZ, { temperature: 1, alpha: 0 }), GOLDEN.kd.softOnlyT1);
    });

    it('reduces by the batch mean: the batch value is the mean of the per-row values', () => {
      const rows = [0, 1].map((r) => kd([S[r]!], [TZ[r]!], { temperature: 3, alpha: 0.25 }, [Y[r]!]));
      expectRelative((rows[0]! + rows[1]!) / 2, GOLDEN.kd.value);
    });

    it('has gradient α(p − y)/N + (1−α)·T·(p_T − q)/N in the student and none in the teacher', () => {
      const [gs, gt] = tf.tidy(() => {
        const method = createLossMethod('kd', { temperature: 3, alpha: 0.25 });
        const f = (s: tf.Tensor, t: tf.Tensor) => method.compute({ student: { logits: s as tf.Tensor2D, features: {} }, teacher: { logits: t as tf.Tensor2D, features: {} }, labels: tf.tensor1d(Y, 'int32') });
        const [a, b] = tf.grads(f)([tf.tensor2d(S), tf.tensor2d(TZ)]);
        return [a!.arraySync() as number[][], b!.arraySync() as number[][]];
      });
      expectRelative(gs[0]![0]!, GOLDEN.kd.gradS00);
      expectRelative(gs[1]![2]!, GOLDEN.kd.gradS12);
      expect(gt.flat().every((g) => g === 0)).toBe(true);
    });
  });

  describe('FitNets hints (Romero et al. 2015)', () => {
    const prepared = (params: Record<string, unknown>, student: tf.Tensor, teacher: tf.Tensor, kernel: number[] | number[][] | number[][][][], bias: number[]) => {
      const method = new FitNetsMethod({ student: 'guided', teacher: 'hint', ...params });
      method.prepare({ student: { logits: tf.zeros([2, 1]) as tf.Tensor2D, features: { guided: student } }, teacher: { logits: tf.zeros([2, 1]) as tf.Tensor2D, features: { hint: teacher } }, labels: tf.tensor1d([0, 0], 'int32') });
      const [k, b] = method.variables();
      k!.assign(tf.tensor(kernel, k!.shape));
      b!.assign(tf.tensor1d(bias));
      return method;
    };
    const inputs = (student: tf.Tensor, teacher: tf.Tensor): LossInputs => ({
      student: { logits: tf.zeros([2, 1]) as tf.Tensor2D, features: { guided: student } },
      teacher: { logits: tf.zeros([2, 1]) as tf.Tensor2D, features: { hint: teacher } },
      labels: tf.tensor1d([0, 0], 'int32'),
    });

    it('builds a valid k×k convolutional regressor with k = N_guided − N_hint + 1, and a dense one for vectors', () => {
      tf.tidy(() => {
        const conv = prepared({}, tf.tensor4d(FS), tf.tensor4d(FT), FK, FB);
        expect(conv.variables().map((v) => v.shape)).toEqual([[2, 2, 1, 2], [2]]);
        const dense = prepared({}, tf.tensor2d(DS), tf.tensor2d(DT), DK, DB);
        expect(dense.variables().map((v) => v.shape)).toEqual([[3, 2], [2]]);
        conv.dispose();
        dense.dispose();
      });
    });

    it('is ½·(1/N)·Σ‖u_h − ReLU(r(v_g))‖², with gradients into the guided layer and the regressor and none into the hint', () => {
      const method = prepared({}, tf.tensor4d(FS), tf.tensor4d(FT), FK, FB);
      const linear = prepared({ activation: 'linear' }, tf.tensor4d(FS), tf.tensor4d(FT), FK, FB);
      try {
        tf.tidy(() => {
          expectRelative(scalar(method.compute(inputs(tf.tensor4d(FS), tf.tensor4d(FT)))), GOLDEN.fitnetsConv.value);
          expectRelative(scalar(linear.compute(inputs(tf.tensor4d(FS), tf.tensor4d(FT)))), GOLDEN.fitnetsConv.linear);
          const [gs, gt] = tf.grads((s: tf.Tensor, t: tf.Tensor) => method.compute(inputs(s, t)))([tf.tensor4d(FS), tf.tensor4d(FT)]);
          expectRelative(at(gs!, 0, 1, 1, 0), GOLDEN.fitnetsConv.gradS0110);
          expect(Array.from(gt!.dataSync()).every((g) => g === 0)).toBe(true);
          const { grads } = tf.variableGrads(() => method.compute(inputs(tf.tensor4d(FS), tf.tensor4d(FT))), method.variables());
          expectRelative(at(grads[method.variables()[0]!.name]!, 1, 0, 0, 1), GOLDEN.fitnetsConv.gradK1001);
        });
      } finally {
        method.dispose();
        linear.dispose();
      }
    });

    it('with a dense regressor on vectors', () => {
      const method = prepared({}, tf.tensor2d(DS), tf.tensor2d(DT), DK, DB);
      try {
        tf.tidy(() => {
          expectRelative(scalar(method.compute(inputs(tf.tensor2d(DS), tf.tensor2d(DT)))), GOLDEN.fitnetsDense.value);
          const [gs] = tf.grads((s: tf.Tensor) => method.compute(inputs(s, tf.tensor2d(DT))))([tf.tensor2d(DS)]);
          expectRelative((gs!.arraySync() as number[][])[1]![0]!, GOLDEN.fitnetsDense.gradS10);
          const { grads } = tf.variableGrads(() => method.compute(inputs(tf.tensor2d(DS), tf.tensor2d(DT))), method.variables());
          expectRelative((grads[method.variables()[0]!.name]!.arraySync() as number[][])[2]![1]!, GOLDEN.fitnetsDense.gradK21);
        });
      } finally {
        method.dispose();
      }
    });

    it('refuses to compute before its regressor exists, and names missing features', () => {
      tf.tidy(() => {
        const method = new FitNetsMethod({ student: 'guided', teacher: 'hint' });
        expect(() => method.compute(inputs(tf.tensor4d(FS), tf.tensor4d(FT)))).toThrow(/E_CONFIG: loss "fitnets": the regressor is not built; call prepare\(\)/);
        const wrong = new FitNetsMethod({ student: 'conv9', teacher: 'hint' });
        expect(() => wrong.prepare(inputs(tf.tensor4d(FS), tf.tensor4d(FT)))).toThrow('E_CONFIG: loss "fitnets": the student has no feature "conv9"; it has guided');
        const small = new FitNetsMethod({ student: 'guided', teacher: 'hint' });
        expect(() => small.prepare(inputs(tf.tensor4d(FT.map((m) => m.map((r) => r.map((p) => [p[0]!])))), tf.tensor4d(FS)))).toThrow(/E_SHAPE: .*is smaller than the hint/);
      });
    });
  });

  describe('attention transfer (Zagoruyko & Komodakis 2017)', () => {
    it('maps activations to Σ_c |A_c|^p over positions', () => {
      const map = tf.tidy(() => attentionMap(tf.tensor4d(AS), 2).arraySync());
      map[0]!.forEach((v, j) => expectRelative(v, GOLDEN.at.map0[j]!));
    });

    it("is the paper's batch-mean L2 distance of normalised maps; the authors' code form is the mean squared difference", () => {
      tf.tidy(() => {
        expectRelative(scalar(attentionTransferLoss(tf.tensor4d(AS), tf.tensor4d(AT), 2, 'paper')), GOLDEN.at.paper);
        expectRelative(scalar(attentionTransferLoss(tf.tensor4d(AS), tf.tensor4d(AT), 2, 'code')), GOLDEN.at.code);
        expectRelative(scalar(attentionTransferLoss(tf.tensor4d(AS), tf.tensor4d(AT), 3, 'paper')), GOLDEN.at.paperP3);
      });
    });

    it('has golden gradients in the student, none in the teacher, and a finite gradient when they match', () => {
      tf.tidy(() => {
        const [gs, gt] = tf.grads((s: tf.Tensor, t: tf.Tensor) => attentionTransferLoss(s, t, 2, 'paper'))([tf.tensor4d(AS), tf.tensor4d(AT)]);
        expectRelative(at(gs!, 0, 1, 1, 0), GOLDEN.at.gradPaper0110);
        expect(Array.from(gt!.dataSync()).every((g) => g === 0)).toBe(true);
        const [gc] = tf.grads((s: tf.Tensor) => attentionTransferLoss(s, tf.tensor4d(AT), 2, 'code'))([tf.tensor4d(AS)]);
        expectRelative(at(gc!, 1, 0, 2, 1), GOLDEN.at.gradCode1021);
        // Student = teacher: distance 0, and the gradient of ‖·‖₂ there must not be NaN.
        const [same] = tf.grads((s: tf.Tensor) => attentionTransferLoss(s, tf.tensor4d(AS), 2, 'paper'))([tf.tensor4d(AS)]);
        expect(Array.from(same!.dataSync()).every((g) => Number.isFinite(g))).toBe(true);
      });
    });

    it('the "at" method sums weighted pairs', () => {
      const value = tf.tidy(() =>
        scalar(
          createLossMethod('at', { pairs: [{ student: 'a', teacher: 'a', weight: 2 }, { student: 'a', teacher: 'b', weight: 0.5 }] }).compute({
            student: { logits: tf.zeros([2, 1]) as tf.Tensor2D, features: { a: tf.tensor4d(AS) } },
            teacher: { logits: tf.zeros([2, 1]) as tf.Tensor2D, features: { a: tf.tensor4d(AT), b: tf.tensor4d(AS) } },
            labels: tf.tensor1d([0, 0], 'int32'),
          }),
        ),
      );
      expectRelative(value, 2 * GOLDEN.at.paper); // the second pair compares AS with itself: 0
    });
  });

  it('keeps gradients finite when a channel or a whole map is exactly zero (a dead ReLU)', () => {
    tf.tidy(() => {
      // Zero the student's channel 1 everywhere in sample 0: its normalised vector is 0, not NaN.
      const mask = tf.tensor4d([[[[1, 0]]], [[[1, 1]]]]);
      const deadChannel = tf.mul(tf.tensor4d(NS), mask);
      const [gn] = tf.grads((s: tf.Tensor) => nstLoss(s, tf.tensor4d(NT)))([deadChannel]);
      expect(Array.from(gn!.dataSync()).every(Number.isFinite)).toBe(true);
      const deadMap = tf.mul(tf.tensor4d(AS), tf.tensor4d([0, 1], [2, 1, 1, 1]));
      const [ga] = tf.grads((s: tf.Tensor) => attentionTransferLoss(s, tf.tensor4d(AT)))([deadMap]);
      expect(Array.from(ga!.dataSync()).every(Number.isFinite)).toBe(true);
      expect(Number.isFinite(scalar(attentionTransferLoss(deadMap, tf.tensor4d(AT))))).toBe(true);
    });
  });

  describe('neuron selectivity transfer (Huang & Wang 2017)', () => {
    it('is the batch-mean MMD² of normalised channel vectors with the polynomial kernel', () => {
      tf.tidy(() => {
        expectRelative(scalar(nstLoss(tf.tensor4d(NS), tf.tensor4d(NT))), GOLDEN.nst.value);
        expectRelative(scalar(nstLoss(tf.tensor4d(NS), tf.tensor4d(NT), 3, 1)), GOLDEN.nst.d3c1);
      });
    });

    it('compares sets of channels: zero for the same channels in another order', () => {
      const value = tf.tidy(() => scalar(nstLoss(tf.tensor4d(NT), tf.reverse(tf.tensor4d(NT), 3))));
      expect(Math.abs(value)).toBeLessThan(1e-6);
    });

    it('has golden gradients in the student and none in the teacher', () => {
      tf.tidy(() => {
        const [gs, gt] = tf.grads((s: tf.Tensor, t: tf.Tensor) => nstLoss(s, t))([tf.tensor4d(NS), tf.tensor4d(NT)]);
        expectRelative(at(gs!, 0, 0, 1, 0), GOLDEN.nst.grad0010);
        expectRelative(at(gs!, 1, 1, 0, 1), GOLDEN.nst.grad1101);
        expect(Array.from(gt!.dataSync()).every((g) => g === 0)).toBe(true);
      });
    });
  });

  describe('ONE (Lan, Zhu & Gong 2018)', () => {
    const oneInputs = (branches: tf.Tensor2D[], gate: tf.Tensor2D): LossInputs => ({
      student: { logits: gatedEnsemble(branches, gate), features: {}, branches, gate },
      labels: tf.tensor1d(OY, 'int32'),
    });

    it('ensembles z_e = Σ_i g_i z_i per sample', () => {
      const ze = tf.tidy(() => gatedEnsemble(Z.map((z) => tf.tensor2d(z)), tf.tensor2d(G)).arraySync());
      ze.flat().forEach((v, i) => expectRelative(v, GOLDEN.one.ensemble.flat()[i]!));
    });

    it('is Σ CE(z_i) + CE(z_e) + T²·Σ KL(z_e ‖ z_i), the ensemble detached in the KL terms', () => {
      tf.tidy(() => {
        const method = createLossMethod('one', { temperature: 3 });
        expectRelative(scalar(method.compute(oneInputs(Z.map((z) => tf.tensor2d(z)), tf.tensor2d(G)))), GOLDEN.one.value);
        const grads = tf.grads((z0: tf.Tensor, z1: tf.Tensor, z2: tf.Tensor, g: tf.Tensor) =>
          method.compute(oneInputs([z0, z1, z2] as tf.Tensor2D[], g as tf.Tensor2D)),
        )([...Z.map((z) => tf.tensor2d(z)), tf.tensor2d(G)]);
        const dz0 = at(grads[0]!, 0, 0);
        expectRelative(dz0, GOLDEN.one.gradZ0_00);
        expect(Math.abs(dz0 - GOLDEN.one.gradZ0_00NotDetached)).toBeGreaterThan(1e-3);
        expectRelative(at(grads[2]!, 1, 2), GOLDEN.one.gradZ2_12);
        expectRelative(at(grads[3]!, 1, 1), GOLDEN.one.gradG11);
      });
    });
  });
});

// The ONE gate inside a model: input [2,3] → dense1 (ReLU, 2 units) shared → 2 branches of logits;
// gate FC over dense1, optionally BatchNorm (ε = 1e-3, tfjs' default) and ReLU, then softmax.
const X = [[0.5, -1.0, 2.0], [1.5, 0.3, -0.4]];
const W1 = [[0.4, -0.3], [0.2, 0.6], [0.5, 0.1]];
const B1 = [0.1, -0.05];
const WB = [[[0.3, -0.2, 0.5], [0.7, 0.1, -0.4]], [[-0.6, 0.4, 0.2], [0.2, 0.9, 0.3]]];
const BB = [[0.0, 0.1, -0.1], [0.05, 0.0, 0.0]];
const WG = [[0.8, -0.5], [0.3, 0.9]];
const BG = [0.1, -0.2];
const BN = { gamma: [1.5, 0.8], beta: [0.1, -0.2], movingMean: [0.05, -0.1], movingVariance: [1.2, 0.7] };
const GATE_GOLDEN = {
  branches: [[[0.33, -0.12, 0.45], [0.168, -0.012, 0.18]], [[-0.61, 0.44, 0.22], [-0.286, 0.224, 0.112]]],
  fc: { gate: [[0.849412420254, 0.150587579746], [0.736527970435, 0.263472029565]], ensemble: [[0.188447675039, -0.0356709553423, 0.415364856658], [0.0483836985774, 0.0501793989774, 0.16208390199]] },
  bnTraining: { gate: [[0.8297955206, 0.1702044794], [0.359182078207, 0.640817921793]], ensemble: [[0.170007789364, -0.024685491536, 0.410852969738], [-0.122931336494, 0.139233029543, 0.136424381318]] },
  bnInference: { gate: [[0.797852267276, 0.202147732724], [0.686031445687, 0.313968554313]], ensemble: [[0.139981131239, -0.00679726967456, 0.403506021473], [0.0254582763419, 0.0620965788179, 0.158650138307]] },
};

describe('the ONE gate in a model, on tiny fixed inputs', () => {
  beforeAll(async () => {
    await selectBackend();
  });

  for (const [gate, mode, golden] of [
    ['fc', false, GATE_GOLDEN.fc],
    ['fc-bn-relu', true, GATE_GOLDEN.bnTraining],
    ['fc-bn-relu', false, GATE_GOLDEN.bnInference],
  ] as const) {
    it(`${gate}${gate === 'fc' ? '' : mode ? ' (training: batch statistics)' : ' (inference: moving statistics)'}: softmax gate over branches and the gated ensemble`, () => {
      const model = buildFeatureModel({ architecture: { kind: 'one', shared: [{ type: 'dense', units: 2 }], branch: [], branches: 2, gate }, inputShape: [3], numClasses: 3, seed: 1 });
      try {
        tf.tidy(() => {
          model.model.getLayer('dense1').setWeights([tf.tensor2d(W1), tf.tensor1d(B1)]);
          WB.forEach((w, i) => model.model.getLayer(`branch${i}`).setWeights([tf.tensor2d(w), tf.tensor1d(BB[i]!)]));
          model.model.getLayer('gate_fc').setWeights([tf.tensor2d(WG), tf.tensor1d(BG)]);
          if (gate !== 'fc') model.model.getLayer('gate_bn').setWeights([BN.gamma, BN.beta, BN.movingMean, BN.movingVariance].map((v) => tf.tensor1d(v)));
          const out = model.forward(tf.tensor2d(X), mode);
          out.branches!.forEach((z, i) => (z.arraySync() as number[][]).flat().forEach((v, k) => expectRelative(v, GATE_GOLDEN.branches[i]!.flat()[k]!)));
          (out.gate!.arraySync() as number[][]).flat().forEach((v, k) => expectRelative(v, golden.gate.flat()[k]!));
          (out.logits.arraySync() as number[][]).flat().forEach((v, k) => expectRelative(v, golden.ensemble.flat()[k]!));
        });
      } finally {
        model.dispose();
      }
    });
  }
});

describe('the weighted sum and the registry', () => {
  beforeAll(async () => {
    await selectBackend();
  });

  it('Σ weight·term over the configured methods, each reported unweighted', () => {
    const loss = new WeightedSumLoss([
      { name: 'ce', weight: 1 },
      { name: 'at', weight: 0.5, params: { pairs: [{ student: 'a', teacher: 'a' }] } },
      { name: 'nst', weight: 2, params: { pairs: [{ student: 'n', teacher: 'n' }] } },
    ]);
    const [total, parts] = tf.tidy(() => {
      const value = loss.evaluate({
        student: { logits: tf.tensor2d(S), features: { a: tf.tensor4d(AS), n: tf.tensor4d(NS) } },
        teacher: { logits: tf.tensor2d(TZ), features: { a: tf.tensor4d(AT), n: tf.tensor4d(NT) } },
        labels: tf.tensor1d(Y, 'int32'),
      });
      return [scalar(value.total), Object.fromEntries(Object.entries(value.parts).map(([k, v]) => [k, scalar(v)]))] as const;
    });
    expectRelative(parts.ce!, GOLDEN.ce);
    expectRelative(parts.at!, GOLDEN.at.paper);
    expectRelative(parts.nst!, GOLDEN.nst.value);
    expectRelative(total, GOLDEN.ce + 0.5 * GOLDEN.at.paper + 2 * GOLDEN.nst.value);
    expect(loss.needsTeacher).toBe(true);
    expect(loss.teacherFeatures).toEqual(['a', 'n']);
    loss.dispose();
  });

  it('refuses unknown methods, bad or misspelt params and non-finite weights, saying what is wrong', () => {
    expect(() => new WeightedSumLoss([{ name: 'crd', weight: 1 }])).toThrow('E_CONFIG: unknown loss "crd"; registered: ce, peers, kd, fitnets, at, nst, one');
    expect(() => createLossMethod('kd', { temperature: -1 })).toThrow(/E_CONFIG: loss "kd": params.temperature: Too small/);
    expect(() => createLossMethod('kd', { temprature: 2 })).toThrow(/E_CONFIG: loss "kd": params: Unrecognized key: "temprature"/);
    expect(() => createLossMethod('at', {})).toThrow(/E_CONFIG: loss "at": params.pairs: /);
    expect(() => new WeightedSumLoss([{ name: 'ce', weight: Number.NaN }])).toThrow('E_CONFIG: loss term 0 ("ce"): weight must be a finite number; got NaN');
    expect(() => new WeightedSumLoss([])).toThrow('E_CONFIG: a loss needs at least one term');
  });
});
