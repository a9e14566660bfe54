/**
 * A language model on disk: `model.json` (format `codistill-lm`: the architecture, the tokenizer
 * and a tfjs weights manifest), `group1-shard1of1.bin` (float32 weights in manifest order, the
 * layout tfjs's own weight files use, so `tf.io.decodeWeights` reads them), `card.json` and
 * `README.md`. The model is built from ops (client/lm/model.ts), not tfjs layers: codistill
 * rebuilds it from the architecture name and assigns the weights by name.
 *
 * The tokenizer is written in model.json and in the card; loading refuses a folder whose
 * tokenizer is not the byte tokenizer codistill models read, so ids never change meaning.
 * Saves are atomic at the folder level (store.ts commitFolder).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { createLanguageModel, lmSpecName, parseLmSpec, type LanguageModel } from '../lm/model.js';
import { BYTE_TOKENIZER, checkSameTokenizer, TokenizerError, type TokenizerDescription } from '../lm/tokenizer.js';
import { CARD_FORMAT, type Provenance } from './card.js';
import { CARD_JSON, MODEL_JSON } from './model-files.js';
import { codeProvenance } from './provenance.js';
import { checkReplaceable, commitFolder, StudentFileError } from './store.js';

export const LM_FORMAT = 'codistill-lm';
const WEIGHTS_FILE = 'group1-shard1of1.bin';

export interface LmCard {
  format: typeof CARD_FORMAT;
  task: 'language-modelling';
  tokenizer: TokenizerDescription;
  output: 'next-token logits [batch, positions, vocab]';
  model: { architecture: string; parameters: number; context: number };
  weights: { dtype: 'float32'; bytes: number; files: Record<string, string> };
  training: {
    /** e.g. "token-ce" (alone), "token-kd from transformer:…" (word-level KD), "sequence-level KD from …". */
    method: string;
    steps: number;
    batchSize: number;
    learningRate: number;
    seed: number;
    data: { source: string; trainBytes: number };
    teacher?: string;
  };
  /** Bits per byte on held-out text: the mixed set and each domain's. */
  metrics: { heldOut?: { bitsPerByte: number; bytes: number }; perDomain?: Record<string, number> };
  provenance: Provenance;
}

export type LmCardFacts = Pick<LmCard, 'training' | 'metrics'> & { backend: string };

function cardReadme(card: LmCard): string {
  const m = card.metrics;
  return [
    `# codistill language model (${card.model.architecture})`,
    '',
    `A byte-level language model: ${card.tokenizer.description}. It outputs next-token logits [batch, positions, ${card.tokenizer.vocabSize}] for at most ${card.model.context} positions.`,
    '',
    `- Architecture: ${card.model.architecture}, ${card.model.parameters.toLocaleString('en-US')} parameters; float32 weights, ${card.weights.bytes.toLocaleString('en-US')} bytes.`,
    `- Training: ${card.training.method}, ${card.training.steps} steps of ${card.training.batchSize} sequences, Adam ${card.training.learningRate}, seed ${card.training.seed}; data ${card.training.data.source} (${card.training.data.trainBytes.toLocaleString('en-US')} bytes).`,
    ...(m.heldOut === undefined ? [] : [`- Held-out bits per byte (mixed, ${m.heldOut.bytes.toLocaleString('en-US')} bytes): ${m.heldOut.bitsPerByte.toFixed(3)}.`]),
    ...(m.perDomain === undefined ? [] : [`- Per domain: ${Object.entries(m.perDomain).map(([k, v]) => `${k} ${v.toFixed(3)}`).join(', ')}.`]),
    `- Made by codistill ${card.provenance.codistill}, tfjs ${card.provenance.tfjs} on ${card.provenance.backend}, ${card.provenance.createdAt}.`,
    '',
    'Write with it: `codistill generate --model DIR --prompt TEXT`.',
    '',
  ].join('\n');
}

/** Saves `model` with its card into `dir` (replacing a previous model folder there, atomically). */
export function saveLanguageModel(dir: string, model: LanguageModel, facts: LmCardFacts): LmCard {
  checkReplaceable(dir);
  const specs: tf.io.WeightsManifestEntry[] = model.weights.map(([name, v]) => ({ name, shape: v.shape, dtype: 'float32' }));
  const parts = model.weights.map(([, v]) => v.dataSync() as Float32Array);
  const data = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    data.set(p, offset);
    offset += p.length;
  }
  const bytes = new Uint8Array(data.buffer);
  const code = codeProvenance();
  const modelJson = {
    format: LM_FORMAT,
    generatedBy: `codistill ${code.codistill}`,
    architecture: lmSpecName(model.spec),
    tokenizer: BYTE_TOKENIZER,
    weightsManifest: [{ paths: [WEIGHTS_FILE], weights: specs }],
  };
  const { backend, ...rest } = facts;
  const card: LmCard = {
    format: CARD_FORMAT,
    task: 'language-modelling',
    tokenizer: BYTE_TOKENIZER,
    output: 'next-token logits [batch, positions, vocab]',
    model: { architecture: lmSpecName(model.spec), parameters: model.countParams(), context: model.spec.ctx },
    weights: { dtype: 'float32', bytes: bytes.byteLength, files: { [WEIGHTS_FILE]: `sha256:${createHash('sha256').update(bytes).digest('hex')}` } },
    ...rest,
    provenance: { ...code, runtime: `node ${process.version}`, backend, createdAt: new Date().toISOString() },
  };
  const enc = new TextEncoder();
  commitFolder(
    dir,
    new Map<string, Uint8Array>([
      [MODEL_JSON, enc.encode(JSON.stringify(modelJson))],
      [WEIGHTS_FILE, bytes],
      [CARD_JSON, enc.encode(`${JSON.stringify(card, null, 2)}\n`)],
      ['README.md', enc.encode(cardReadme(card))],
    ]),
  );
  return card;
}

function readJson(path: string): Record<string, unknown> {
  if (!existsSync(path)) throw new StudentFileError('E_MODEL', `${path}: no such file (a language model folder holds model.json, ${WEIGHTS_FILE} and card.json)`);
  try {
    const value: unknown = JSON.parse(readFileSync(path, 'utf8'));
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // reported below
  }
  throw new StudentFileError('E_MODEL', `${path} is not a JSON object`);
}

export interface LoadedLanguageModel {
  model: LanguageModel;
  card?: LmCard;
  dir: string;
}

/**
 * Loads a saved language model: checks the format, the tokenizer (model.json's and the card's),
 * each weight's name, shape and byte count against the architecture, and that every weight is
 * finite; each problem is one error naming the file.
 */
export function loadLanguageModel(dir: string): LoadedLanguageModel {
  const modelPath = join(dir, MODEL_JSON);
  const json = readJson(modelPath);
  if (json.format !== LM_FORMAT) {
    throw new StudentFileError('E_MODEL', `${modelPath} has format "${String(json.format)}", not "${LM_FORMAT}"${json.format === 'layers-model' ? ': it is a classifier (use codistill predict)' : ''}`);
  }
  try {
    checkSameTokenizer(BYTE_TOKENIZER, json.tokenizer, modelPath);
  } catch (error) {
    if (error instanceof TokenizerError) throw new StudentFileError('E_MODEL', error.message);
    throw error;
  }
  let spec;
  try {
    spec = parseLmSpec(String(json.architecture));
  } catch (error) {
    throw new StudentFileError('E_MODEL', `${modelPath}: ${(error as Error).message}`);
  }
  const manifest = json.weightsManifest as Array<{ paths: string[]; weights: tf.io.WeightsManifestEntry[] }> | undefined;
  const group = Array.isArray(manifest) && manifest.length === 1 ? manifest[0] : undefined;
  if (group === undefined || !Array.isArray(group.paths) || group.paths.length !== 1 || !Array.isArray(group.weights)) {
    throw new StudentFileError('E_MODEL', `${modelPath}: weightsManifest must hold one group with one weight file`);
  }
  const weightsPath = join(dir, group.paths[0]!);
  if (!existsSync(weightsPath)) throw new StudentFileError('E_WEIGHTS', `${weightsPath}: no such file (listed in ${modelPath})`);
  const bytes = readFileSync(weightsPath);
  let card: LmCard | undefined;
  const cardPath = join(dir, CARD_JSON);
  if (existsSync(cardPath)) {
    card = readJson(cardPath) as unknown as LmCard;
    if (card.task !== 'language-modelling') throw new StudentFileError('E_CARD', `${cardPath} is not a language model's card (task "${String(card.task)}")`);
    try {
      checkSameTokenizer(json.tokenizer as TokenizerDescription, card.tokenizer, cardPath);
    } catch (error) {
      throw new StudentFileError('E_CARD', `${(error as Error).message} (model.json records another)`);
    }
    const digest = card.weights?.files?.[group.paths[0]!];
    const actual = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    if (digest !== undefined && digest !== actual) throw new StudentFileError('E_WEIGHTS', `${weightsPath} does not match the sha256 in ${cardPath}: the weights were changed or damaged`);
  }
  const model = createLanguageModel(spec, 0);
  try {
    const expected = model.weights;
    if (group.weights.length !== expected.length) throw new StudentFileError('E_WEIGHTS', `${modelPath} lists ${group.weights.length} weights; ${lmSpecName(spec)} has ${expected.length}`);
    let need = 0;
    group.weights.forEach((entry, i) => {
      const [name, v] = expected[i]!;
      if (entry.name !== name || entry.dtype !== 'float32' || entry.shape.join(',') !== v.shape.join(',')) {
        throw new StudentFileError('E_WEIGHTS', `${modelPath}: weight ${i} is ${entry.name} [${entry.shape.join(',')}] ${entry.dtype}; ${lmSpecName(spec)} expects ${name} [${v.shape.join(',')}] float32`);
      }
      need += v.size * 4;
    });
    if (bytes.byteLength !== need) throw new StudentFileError('E_WEIGHTS', `${weightsPath} has ${bytes.byteLength} bytes; the manifest needs ${need}`);
    // Copy: the file's buffer may sit at an offset that is not a multiple of 4.
    const values = new Float32Array(new Uint8Array(bytes).buffer);
    let offset = 0;
    for (const [name, v] of expected) {
      const part = values.subarray(offset, offset + v.size);
      if (!part.every(Number.isFinite)) throw new StudentFileError('E_WEIGHTS', `${weightsPath}: weight ${name} holds NaN or infinite values`);
      const value = tf.tensor(part, v.shape, 'float32');
      v.assign(value);
      value.dispose();
      offset += v.size;
    }
  } catch (error) {
    model.dispose();
    throw error;
  }
  return { model, card, dir };
}
