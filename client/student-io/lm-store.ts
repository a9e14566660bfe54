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
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { createLoraModel, loraSpecName, type LoraLanguageModel, type LoraSpec } from '../lm/lora.js';
import { createLanguageModel, lmSpecName, parseLmSpec, setFlatWeights, type LanguageModel } from '../lm/model.js';
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

/** The model's weights as float32 bytes in save order: what its weights file holds. */
function weightBytes(model: LanguageModel): Uint8Array {
  const parts = model.weights.map(([, v]) => v.dataSync() as Float32Array);
  const data = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    data.set(p, offset);
    offset += p.length;
  }
  return new Uint8Array(data.buffer);
}

const sha256 = (bytes: Uint8Array) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

/**
 * A language model's digest: the sha256 of its weights file as saveLanguageModel writes it (the
 * card's weights.files entry), so a saved base and the same model in memory have the same one.
 */
export function languageModelDigest(model: LanguageModel): string {
  return sha256(weightBytes(model));
}

/** Saves `model` with its card into `dir` (replacing a previous model folder there, atomically). */
export function saveLanguageModel(dir: string, model: LanguageModel, facts: LmCardFacts): LmCard {
  checkReplaceable(dir);
  const specs: tf.io.WeightsManifestEntry[] = model.weights.map(([name, v]) => ({ name, shape: v.shape, dtype: 'float32' }));
  const bytes = weightBytes(model);
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
    weights: { dtype: 'float32', bytes: bytes.byteLength, files: { [WEIGHTS_FILE]: sha256(bytes) } },
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
    const actual = sha256(bytes);
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

export const LORA_FORMAT = 'codistill-lora';
export const ADAPTERS_JSON = 'adapters.json';
const ADAPTERS_FILE = 'adapters.bin';

/** adapters.json: the adapters' spec, the base they belong to, and a tfjs weights manifest of adapters.bin. */
export interface AdaptersFile {
  format: typeof LORA_FORMAT;
  generatedBy: string;
  /** The frozen base: its architecture and the sha256 of its weights file (languageModelDigest). */
  base: { architecture: string; digest: string };
  lora: LoraSpec;
  tokenizer: TokenizerDescription;
  weightsManifest: Array<{ paths: string[]; weights: tf.io.WeightsManifestEntry[] }>;
  /** sha256 of adapters.bin. */
  digest: string;
  /** How they were trained, free text (e.g. "dml across 4 sites"). */
  training?: string;
}

/**
 * Saves a LoRA model's adapters — only them — into `dir`: adapters.json naming the base by its
 * digest, and adapters.bin (float32, manifest order). The base is saved once, elsewhere
 * (saveLanguageModel); `mergeLora` then saveLanguageModel gives one plain model instead.
 */
export function saveLoraAdapters(dir: string, model: LoraLanguageModel, facts: { training?: string } = {}): AdaptersFile {
  if (existsSync(dir)) {
    const entries = readdirSync(dir);
    if (entries.length > 0 && !entries.includes(ADAPTERS_JSON)) {
      throw new StudentFileError('E_SAVE', `${dir} holds files that are not saved adapters (${entries.slice(0, 5).join(', ')}); a save replaces the whole folder: choose an empty or new one`);
    }
  }
  const bytes = weightBytes(model);
  const file: AdaptersFile = {
    format: LORA_FORMAT,
    generatedBy: `codistill ${codeProvenance().codistill}`,
    base: { architecture: lmSpecName(model.spec), digest: languageModelDigest(model.base) },
    lora: { ...model.lora, targets: [...model.lora.targets] },
    tokenizer: BYTE_TOKENIZER,
    weightsManifest: [{ paths: [ADAPTERS_FILE], weights: model.weights.map(([name, v]) => ({ name, shape: v.shape, dtype: 'float32' })) }],
    digest: sha256(bytes),
    ...(facts.training === undefined ? {} : { training: facts.training }),
  };
  commitFolder(dir, new Map<string, Uint8Array>([[ADAPTERS_JSON, new TextEncoder().encode(`${JSON.stringify(file, null, 2)}\n`)], [ADAPTERS_FILE, bytes]]));
  return file;
}

/**
 * Loads adapters saved by saveLoraAdapters onto `base`, refusing a base whose digest is not the
 * one the adapters were trained on (adapters mean nothing on other weights), a damaged file, or
 * adapters whose names and shapes are not the spec's on this architecture.
 */
export function loadLoraAdapters(dir: string, base: LanguageModel): LoraLanguageModel {
  const path = join(dir, ADAPTERS_JSON);
  const json = readJson(path) as unknown as AdaptersFile;
  if (json.format !== LORA_FORMAT) throw new StudentFileError('E_MODEL', `${path} has format "${String(json.format)}", not "${LORA_FORMAT}"`);
  try {
    checkSameTokenizer(BYTE_TOKENIZER, json.tokenizer, path);
  } catch (error) {
    if (error instanceof TokenizerError) throw new StudentFileError('E_MODEL', error.message);
    throw error;
  }
  const digest = languageModelDigest(base);
  if (json.base?.digest !== digest) {
    throw new StudentFileError('E_MODEL', `${path}: these adapters were trained on the base ${String(json.base?.digest)}; the base given is ${digest} (${lmSpecName(base.spec)}): load them onto the base they were trained on`);
  }
  const group = Array.isArray(json.weightsManifest) && json.weightsManifest.length === 1 ? json.weightsManifest[0] : undefined;
  if (group === undefined || !Array.isArray(group.paths) || group.paths.length !== 1 || !Array.isArray(group.weights)) {
    throw new StudentFileError('E_MODEL', `${path}: weightsManifest must hold one group with one weight file`);
  }
  const binPath = join(dir, group.paths[0]!);
  if (!existsSync(binPath)) throw new StudentFileError('E_WEIGHTS', `${binPath}: no such file (listed in ${path})`);
  const bytes = new Uint8Array(readFileSync(binPath));
  if (sha256(bytes) !== json.digest) throw new StudentFileError('E_WEIGHTS', `${binPath} does not match the sha256 in ${path}: the adapters were changed or damaged`);
  let model: LoraLanguageModel;
  try {
    model = createLoraModel(base, json.lora, 0);
  } catch (error) {
    throw new StudentFileError('E_MODEL', `${path}: ${(error as Error).message}`);
  }
  try {
    const expected = model.weights;
    const names = (entries: ReadonlyArray<{ name: string; shape: readonly number[] }>) => entries.map((e) => `${e.name}[${e.shape.join(',')}]`).join(' ');
    if (names(group.weights) !== names(expected.map(([name, v]) => ({ name, shape: v.shape }))) || group.weights.some((e) => e.dtype !== 'float32')) {
      throw new StudentFileError('E_WEIGHTS', `${path}: the manifest's weights are not those of LoRA ${loraSpecName(json.lora)} on ${lmSpecName(base.spec)}`);
    }
    const values = new Float32Array(bytes.buffer);
    if (values.length !== model.countParams()) throw new StudentFileError('E_WEIGHTS', `${binPath} has ${bytes.byteLength} bytes; the manifest needs ${model.countParams() * 4}`);
    if (!values.every(Number.isFinite)) throw new StudentFileError('E_WEIGHTS', `${binPath} holds NaN or infinite values`);
    setFlatWeights(model, values);
  } catch (error) {
    model.dispose();
    throw error;
  }
  return model;
}
