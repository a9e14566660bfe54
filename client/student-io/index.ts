/** Saving, loading, quantising and describing students on disk. Re-exports only. */
export { CARD_FORMAT, cardReadme, codeProvenance, preprocessingOf, type ModelCard, type Preprocessing } from './card.js';
export { affineRange, QUANTIZATIONS, quantizeWeights, specByteLength, toFloat16Bits, type Quantization } from './quantize.js';
export {
  CARD_JSON,
  exportStudent,
  loadStudent,
  MODEL_JSON,
  modelArtifacts,
  probeFolder,
  probeSaveDir,
  readStudent,
  saveStudent,
  StudentFileError,
  writeStudent,
  type CardFacts,
  type LoadedStudent,
  type SavedStudent,
  type SaveOptions,
  type StudentArtifacts,
} from './store.js';
