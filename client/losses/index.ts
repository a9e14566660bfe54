/** The client's losses: low-level terms, named methods, their registry and the weighted sum. Re-exports only. */
export type { ClassKnowledgeTensors, LossInputs, LossMethod, LossTermConfig, ModelOutputs, StackedTargetTensors } from './types.js';
export { DistillError } from './types.js';
export {
  crossEntropy,
  distillationLoss,
  kdLoss,
  logitMatchingLoss,
  stackedDistillationLoss,
  stackTargets,
  stopGradient,
  temperedSoftmax,
  type DistillationBatch,
  type StackedTargets,
} from './logits.js';
export { attentionMap, attentionTransferLoss, gatedEnsemble, hintLoss, l2Normalize, nstLoss, polynomialKernel, selectivityVectors, type AttentionDistance } from './features.js';
export { AttentionTransferMethod } from './attention-transfer.js';
export { HyperKnowledgeMethod, hyperKnowledgeLoss, PrototypeMethod, prototypeLoss } from './class-knowledge.js';
export { CrossEntropyMethod } from './cross-entropy.js';
export { FitNetsMethod } from './fitnets.js';
export { KnowledgeDistillationMethod } from './kd.js';
export { NeuronSelectivityTransferMethod } from './nst.js';
export { OneMethod } from './one.js';
export { PeerDistillationMethod } from './peers.js';
export { tokenCrossEntropy, tokenKdLoss, TokenCrossEntropyMethod, TokenDistillationMethod } from './tokens.js';
export type { FeaturePair, WeightedFeaturePair } from './params.js';
export { LOSS_METHODS, createLossMethod, type LossMethodFactory } from './registry.js';
export { WeightedSumLoss, type LossValue, type WeightedTerm } from './weighted-sum.js';
