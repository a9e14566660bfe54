/** Local distillation in one process: the library's face. Re-exports only. */
export type { LossInputs, LossMethod, LossTermConfig, ModelOutputs } from './types.js';
export { DistillError } from './types.js';
export { attentionMap, attentionTransferLoss, gatedEnsemble, hintLoss, l2Normalize, nstLoss, polynomialKernel, selectivityVectors, type AttentionDistance } from './terms.js';
export { AttentionTransferMethod } from './methods/attention-transfer.js';
export { CrossEntropyMethod } from './methods/cross-entropy.js';
export { FitNetsMethod } from './methods/fitnets.js';
export { KnowledgeDistillationMethod } from './methods/kd.js';
export { NeuronSelectivityTransferMethod } from './methods/nst.js';
export { OneMethod } from './methods/one.js';
export type { FeaturePair, WeightedFeaturePair } from './methods/params.js';
export { LOSS_METHODS, createLossMethod, type LossMethodFactory } from './registry.js';
export { WeightedSumLoss, type LossValue, type WeightedTerm } from './weighted-sum.js';
export {
  ARCHITECTURE_ALIASES,
  describeArchitecture,
  oneArchitecture,
  parseLayers,
  plainArchitecture,
  type Architecture,
  type GateKind,
  type LayerSpec,
  type OneArchitecture,
  type PlainArchitecture,
} from './architecture.js';
export { buildFeatureModel, FeatureModel, type FeatureModelSpec } from './models.js';
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
