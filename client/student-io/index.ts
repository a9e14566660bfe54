/** Saving, loading, quantising and describing students on disk. Re-exports only. */
export { CARD_FORMAT, cardReadme, preprocessingOf, type ModelCard, type Preprocessing, type Provenance } from './card.js';
export { CARD_JSON, cardFor, MODEL_JSON, modelArtifacts, studentFiles, type CardFacts, type ModelArtifacts, type StudentFiles } from './model-files.js';
export { codeProvenance } from './provenance.js';
export { affineRange, QUANTIZATIONS, quantizeWeights, specByteLength, toFloat16Bits, type Quantization } from './quantize.js';
export {
  exportStudent,
  loadStudent,
  probeFolder,
  probeSaveDir,
  readStudent,
  saveStudent,
  StudentFileError,
  writeStudent,
  type LoadedStudent,
  type SavedStudent,
  type SaveOptions,
  type StudentArtifacts,
} from './store.js';
export { crc32, zipStored } from './zip.js';
export { loadLanguageModel, LM_FORMAT, saveLanguageModel, type LmCard, type LmCardFacts, type LoadedLanguageModel } from './lm-store.js';
