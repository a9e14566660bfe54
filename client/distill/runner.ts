/**
 * What every offline-distillation recipe shares: the options, the reports, the data, and the
 * Runner that builds, trains (one WeightedSumLoss from client/losses per stage) and evaluates
 * models. The recipes themselves are in recipes/, one file each.
 */
import { createHash } from 'node:crypto';
import { subset, type LabeledDataset } from '../data/dataset.js';
import { loadMnist, splitDataset } from '../data/mnist.js';
import { DistillError, WeightedSumLoss, type FeaturePair, type LossTermConfig } from '../losses/index.js';
import { buildFeatureModel, type Architecture, type FeatureModel, type GateKind } from '../models.js';
import { evaluateModel, fit, type EpochReport } from './trainer.js';

/** The methods recipes/index.ts's RECIPES registers, one recipe each (its `satisfies` keeps the two the same). */
export type DistillMethod = 'kd' | 'fitnets' | 'at' | 'nst' | 'ban' | 'one';

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

/** The options every recipe starts from; each recipe's `defaults` complete and override them. */
export const COMMON_OPTIONS = {
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
export const THIN_CNN = 'c4,p2,c8,p2,d32';

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

/** The report as a recipe fills it in: the student comes last. */
export type ReportInProgress = Omit<DistillReport, 'student' | 'seconds'> & { student?: ModelReport };

/** Seeds derived from the run's seed: equal for the baseline and the distilled student. */
export function seeds(seed: number) {
  return { teacherInit: seed * 1000 + 100, teacherOrder: seed * 1000 + 1, studentInit: seed * 1000 + 200, studentOrder: seed * 1000 + 2 };
}

/** Builds, trains and evaluates the models of one run; disposes every model it built at the end. */
export class Runner {
  private readonly owned: FeatureModel[] = [];
  /** The run's student, once its recipe has trained it (a plain model; ONE's gated ensemble is none). */
  student: FeatureModel | undefined;

  constructor(
    readonly options: DistillOptions,
    readonly train: LabeledDataset,
    readonly test: LabeledDataset,
    readonly progress: DistillProgress,
  ) {}

  get seeds() {
    return seeds(this.options.seed);
  }

  build(architecture: Architecture, seed: number): FeatureModel {
    const model = buildFeatureModel({ architecture, inputShape: this.train.sampleShape, numClasses: this.train.numClasses, seed });
    this.owned.push(model);
    return model;
  }

  /** Disposes a model before the end of the run (a generation no longer needed). */
  release(model: FeatureModel): void {
    const at = this.owned.indexOf(model);
    if (at !== -1) this.owned.splice(at, 1);
    model.dispose();
  }

  dispose(): void {
    for (const model of this.owned) model.dispose();
    this.owned.length = 0;
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


/** Hinton's objective as a one-term configuration. */
export function kdLossConfig(temperature: number, alpha: number): LossTermConfig[] {
  return [{ name: 'kd', weight: 1, params: { temperature, alpha } }];
}

export const CE_ONLY: LossTermConfig[] = [{ name: 'ce', weight: 1 }];

/** The train/test split of the embedded MNIST digits a run uses. */
export function distillData(options: Pick<DistillOptions, 'trainSize' | 'testSize' | 'seed'>): { train: LabeledDataset; test: LabeledDataset } {
  const all = loadMnist();
  const split = splitDataset(all, { test: options.testSize, reference: 0 }, options.seed);
  if (!Number.isInteger(options.trainSize) || options.trainSize < 1 || options.trainSize > split.pool.y.length) {
    throw new DistillError('E_CONFIG', `train size must be an integer in [1, ${split.pool.y.length}] with ${options.testSize} test samples; got ${options.trainSize}`);
  }
  return { train: subset(split.pool, Array.from({ length: options.trainSize }, (_, i) => i)), test: split.test };
}

export function digest(d: LabeledDataset): string {
  return createHash('sha256').update(new Uint8Array(d.x.buffer, d.x.byteOffset, d.x.byteLength)).update(new Uint8Array(d.y.buffer, d.y.byteOffset, d.y.byteLength)).digest('hex').slice(0, 16);
}

/** The feature of `model` named `name`, which must be a feature map when `map` (for at and nst). */
export function checkFeature(model: FeatureModel, side: string, name: string, method: string, map: boolean): number[] {
  const shape = model.outputShapes[name];
  const features = model.outputNames.filter((n) => n !== 'logits');
  if (shape === undefined || name === 'logits') {
    throw new DistillError('E_CONFIG', `${method}: the ${side} (${model.description}) has no feature "${name}"; it has ${features.join(', ')}`);
  }
  if (map && shape.length !== 3) throw new DistillError('E_CONFIG', `${method}: the ${side}'s "${name}" is not a feature map [H, W, C]; it has shape [${shape.join(', ')}]`);
  return shape;
}


/** One method of offline distillation: a file in recipes/ and a line in recipes/index.ts. */
export interface DistillRecipe {
  /** For `codistill distill --help`: what the method trains, and its paper. */
  summary: string;
  /** The method's options over COMMON_OPTIONS. */
  defaults: Pick<DistillOptions, 'teacher' | 'student' | 'temperature'> & Partial<Omit<DistillOptions, 'method'>>;
  /** Checks the architectures before the data is loaded or anything trains. */
  validate(options: DistillOptions): void;
  /** Trains and evaluates the run's models (built through the runner, which disposes them), filling in the report. */
  run(runner: Runner, report: ReportInProgress): Promise<void>;
}
