/**
 * Offline distillation in one process (`codistill distill`): the recipes that train teachers,
 * students and baselines (recipes/, one file per method), what they share (runner.ts) and their
 * training loop (trainer.ts). The losses they use are client/losses's, the
 * models client/models.ts's. Re-exports only.
 */
export { averageProbs, countErrors, evaluateModel, fit, predictLogits, type EpochReport, type Evaluation, type FitOptions } from './trainer.js';
export { DISTILL_METHODS, RECIPES, defaultDistillOptions, runDistillation, type DistillHooks } from './recipes/index.js';
export {
  distillData,
  kdLossConfig,
  type DistillMethod,
  type DistillOptions,
  type DistillProgress,
  type DistillRecipe,
  type DistillReport,
  type EnsembleReport,
  type ModelReport,
} from './runner.js';
