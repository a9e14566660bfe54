export { selectBackend, BACKENDS, type BackendName } from './backend.js';
export { createModel, MODELS, type ModelName, type ModelSpec } from './models.js';
export { crossEntropy, distillationLoss, kdLoss, stopGradient, temperedSoftmax } from './losses.js';
export { Student, accuracyOf, type SoftTargets, type TrainOptions, type TrainResult } from './student.js';
export { runParticipant, type ParticipantOptions, type ParticipantSummary, type RoundResult } from './participant.js';
export { PROCEDURES, procedureFor, type ParticipantData, type Procedure } from './procedures/index.js';
export { loadMnist, splitDataset } from './data/mnist.js';
export { partition, type Partition, type PartitionSpec } from './data/partition.js';
export type { LabeledDataset } from './data/dataset.js';
