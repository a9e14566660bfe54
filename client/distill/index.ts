/**
 * Offline distillation in one process (`codistill distill`): the recipes that train teachers,
 * students and baselines, and their training loop. The losses they use are client/losses's, the
 * models client/models.ts's. Re-exports only.
 */
export { averageProbs, countErrors, evaluateModel, fit, predictLogits, type EpochReport, type Evaluation, type FitOptions } from './trainer.js';
export {
  DISTILL_METHODS,
  defaultDistillOptions,
  distillData,
  kdLossConfig,
  runDistillation,
  type DistillMethod,
  type DistillOptions,
  type DistillProgress,
  type DistillReport,
  type EnsembleReport,
  type ModelReport,
} from './recipes.js';
