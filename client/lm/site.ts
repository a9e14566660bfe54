/**
 * A language-model site in a session of per-token knowledge (reference-token-predictions): its
 * model, its private text, and the shared reference text cut into fixed windows addressed by id,
 * as a classifier site's reference rows are.
 */
import type { TokenizerIdentity } from '../../protocol/index.js';
import type { LabeledDataset } from '../data/dataset.js';
import { bytesToSequences, type TokenSequences } from '../data/text-sequences.js';
import type { LanguageModel } from './model.js';
import { encodeText, type TokenizerDescription } from './tokenizer.js';

export interface TextSite {
  model: LanguageModel;
  /** The model's tokenizer: the session refuses any other at the join (E_TOKENIZER). */
  tokenizer: TokenizerDescription;
  /** Private text as sequences for teacher forcing (data/text.ts toSequences), context = the session's positions. */
  train: TokenSequences;
  /** The shared reference windows (referenceWindows): window `id` is row `id`. */
  reference: TokenSequences;
  /** Adam steps per round; each step takes a batch of private sequences and, with a target, a batch of the round's reference windows. */
  steps: number;
  learningRate: number;
  seed: number;
  /**
   * Where the per-token knowledge comes from when not from `model`: an API teacher
   * (client/lm/api-teacher.ts apiTokenPredictions). Gives softmax(log p / T) at every position of
   * the windows, [rows, positions, vocab], or undefined when it has none for this round (it says
   * why in its log): the site then uploads nothing that round and stays in the session.
   */
  knowledge?: (windows: TokenSequences, temperature: number, round: number) => Promise<Float32Array | undefined>;
}

/**
 * Shared text as `count` windows of exactly `positions` bytes: the documents joined by newlines,
 * then cut from the start; the bytes past the last whole window are dropped. Window i reads the
 * byte before it (BOS for the first) and predicts its own bytes, as toSequences does.
 */
export function referenceWindows(documents: readonly string[], positions: number, count?: number): TokenSequences {
  const bytes = encodeText(documents.join('\n'));
  const whole = Math.floor(bytes.length / positions);
  const n = count === undefined ? whole : count;
  if (n > whole) throw new Error(`E_DATA: the reference text has ${bytes.length} bytes, ${whole} windows of ${positions}; ${n} were asked for`);
  return bytesToSequences([bytes.subarray(0, n * positions)], positions);
}

/** The tokenizer as the wire names it (what the coordinator compares at the join). */
export function tokenizerIdentity(t: TokenizerDescription): TokenizerIdentity {
  return { kind: t.kind, encoding: t.encoding, vocabSize: t.vocabSize, bos: t.bos };
}

/**
 * The reference windows as the float32 features a participant's reference digest is taken over
 * (referenceDigest): per window its `positions` inputs, then its `positions` targets, so that the
 * digest covers every byte of the shared text. Sample shape [2·positions].
 */
export function windowFeatures(reference: TokenSequences): Float32Array {
  const c = reference.context;
  const out = new Float32Array(reference.count * 2 * c);
  for (let r = 0; r < reference.count; r++) {
    for (let i = 0; i < c; i++) {
      out[r * 2 * c + i] = reference.inputs[r * c + i]!;
      out[r * 2 * c + c + i] = reference.targets[r * c + i]!;
    }
  }
  return out;
}

/**
 * A language-model site's ParticipantData: no labelled data (train is empty, of sample shape
 * [2·positions]) and the reference windows' features as the reference set, so that the join
 * carries their digest.
 */
export function textParticipantData(site: TextSite): { train: LabeledDataset; reference: Float32Array; text: TextSite } {
  const c = site.reference.context;
  return {
    train: { x: new Float32Array(0), y: new Int32Array(0), sampleShape: [2 * c], numClasses: site.model.spec.vocab },
    reference: windowFeatures(site.reference),
    text: site,
  };
}
