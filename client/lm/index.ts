/** Byte-level language models: tokenizer, models, training, generation, offline distillation. Re-exports only. */
export { BOS, BYTE_TOKENIZER, BYTE_VOCAB, checkSameTokenizer, decodeTokens, encodeText, TokenizerError, type TokenizerDescription } from './tokenizer.js';
export { createLanguageModel, LM_NAMES_HELP, lmSpecName, LmSpecError, parseLmSpec, type DecodingState, type LanguageModel, type LmKind, type LmSpec } from './model.js';
export { bitsPerByte, trainLanguageModel, type LmTrainOptions } from './train.js';
export { checkSamplingOptions, continueBatch, generateText, pickToken, type SamplingOptions } from './generate.js';
export { evaluateLm, LM_DISTILL_METHODS, runLmDistillation, type Evaluation, type LmDistillMethod, type LmDistillOptions, type LmDistillResult } from './distill.js';
