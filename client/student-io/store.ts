/**
 * A student on disk, as a standard tfjs layers model: `model.json` (topology and weights
 * manifest, the format tfjs's own `model.save` writes) and `group1-shardKofN.bin` weight files,
 * plus `card.json` and `README.md` (card.ts). Any tfjs program loads it with
 * `tf.loadLayersModel`; tfjs-node is not needed to write or read it here (plain node:fs).
 *
 * A save is atomic at the folder level: everything is written and flushed into a hidden folder
 * beside the target, then the old folder (if any) is renamed away, the new one renamed into
 * place, and the old one deleted. A crash mid-write leaves the previous student untouched (and a
 * `.NAME.partial-…` folder to delete); only between the two renames — microseconds — would the
 * target be absent, with both complete copies beside it.
 */
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { CodedError } from '../../protocol/errors.js';
import { CARD_FORMAT, type ModelCard } from './card.js';
import { CARD_JSON, cardFor, MODEL_JSON, modelArtifacts, studentFiles, type CardFacts, type ModelArtifacts } from './model-files.js';
import { codeProvenance } from './provenance.js';
import { specByteLength, type Quantization } from './quantize.js';

export class StudentFileError extends CodedError<'E_SAVE' | 'E_MODEL' | 'E_WEIGHTS' | 'E_CARD' | 'E_SHAPE'> {
  override readonly name = 'StudentFileError';
}

/** What a student's files hold, read into memory: topology, weight specs and bytes, card. */
export interface StudentArtifacts {
  modelTopology: object;
  weightSpecs: tf.io.WeightsManifestEntry[];
  weightData: ArrayBuffer;
  /** The files the weights came from, in manifest order, with their sizes. */
  weightFiles: Array<{ path: string; bytes: number }>;
  card?: ModelCard;
  /** The folder the files are in. */
  dir: string;
}

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/**
 * Refuses, before any training, a save folder that cannot be written: its parent cannot be
 * created or written, it is a file, or it holds files that are not a saved student (a save
 * replaces the folder as a whole, so it must not be someone's documents).
 */
export function probeSaveDir(dir: string): void {
  checkReplaceable(dir);
  probeFolder(dirname(resolve(dir)), dir);
}

/** A save replaces `dir` as a whole: only a student folder, an empty folder or nothing may be there. */
export function checkReplaceable(dir: string): void {
  const target = resolve(dir);
  if (existsSync(target)) {
    if (!statSync(target).isDirectory()) throw new StudentFileError('E_SAVE', `${dir} is a file; the student is saved as a folder (model.json, weights, card.json): choose another path`);
    const entries = readdirSync(target);
    if (entries.length > 0 && !entries.includes(MODEL_JSON)) {
      throw new StudentFileError('E_SAVE', `${dir} holds files that are not a saved student (${entries.slice(0, 5).join(', ')}${entries.length > 5 ? ', …' : ''}); a save replaces the whole folder: choose an empty or new one`);
    }
  }
}

/**
 * Refuses a folder that is to hold student folders (a simulation's `<out>/students/`) when it
 * cannot be created or written.
 */
export function probeFolder(folder: string, wanted = folder): void {
  try {
    mkdirSync(folder, { recursive: true });
    const probe = join(folder, `.probe-${process.pid}-${randomBytes(4).toString('hex')}`);
    closeSync(openSync(probe, 'wx'));
    unlinkSync(probe);
  } catch (error) {
    throw new StudentFileError('E_SAVE', `cannot write the student to ${wanted}: ${(error as Error).message}`);
  }
}

export interface SaveOptions {
  quantize?: Quantization;
  /** Test seam: called after each file is written into the temporary folder (may throw, or kill the process). */
  afterFile?: (name: string) => void;
}

export interface SavedStudent {
  dir: string;
  files: string[];
  /** Bytes of the weight files. */
  weightBytes: number;
  card: ModelCard;
}

/** Saves a student with its card, atomically (see the file's comment); synchronous, so it snapshots the model as it is now. */
export function saveStudent(dir: string, model: tf.LayersModel, facts: CardFacts, options: SaveOptions = {}): SavedStudent {
  return writeStudent(dir, modelArtifacts(model), cardFor(model, facts, { ...codeProvenance(), runtime: `node ${process.version}` }), options);
}

/**
 * Writes topology + weights (+ card) as a student folder, quantising first when asked; fills
 * the card's weights entry (dtype, bytes, each file's sha256).
 */
export function writeStudent(dir: string, artifacts: ModelArtifacts, card: ModelCard | undefined, options: SaveOptions = {}): SavedStudent {
  checkReplaceable(dir);
  const built = studentFiles(artifacts, card, { quantize: options.quantize, hash: sha256, convertedBy: `codistill ${codeProvenance().codistill}` });
  commitFolder(dir, built.files, options.afterFile);
  return { dir, files: [...built.files.keys()], weightBytes: built.weightBytes, card: built.card! };
}

/** Writes files into a hidden folder beside `dir`, flushes them, then swaps it into place. */
export function commitFolder(dir: string, files: Map<string, Uint8Array>, afterFile?: (name: string) => void): void {
  const target = resolve(dir);
  const parent = dirname(target);
  const tag = `${process.pid}-${randomBytes(4).toString('hex')}`;
  const partial = join(parent, `.${basename(target)}.partial-${tag}`);
  mkdirSync(parent, { recursive: true });
  mkdirSync(partial);
  try {
    for (const [name, bytes] of files) {
      const fd = openSync(join(partial, name), 'wx');
      try {
        let written = 0;
        while (written < bytes.byteLength) written += writeSync(fd, bytes, written, bytes.byteLength - written);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      afterFile?.(name);
    }
    syncFolder(partial);
    if (existsSync(target)) {
      const previous = join(parent, `.${basename(target)}.previous-${tag}`);
      renameSync(target, previous);
      try {
        renameSync(partial, target);
      } catch (error) {
        renameSync(previous, target);
        throw error;
      }
      rmSync(previous, { recursive: true, force: true });
    } else {
      renameSync(partial, target);
    }
    syncFolder(parent);
  } catch (error) {
    rmSync(partial, { recursive: true, force: true });
    throw new StudentFileError('E_SAVE', `could not save the student to ${dir} (${(error as Error).message}); ${existsSync(join(target, MODEL_JSON)) ? 'the student saved there before is unchanged' : 'nothing was saved'}`);
  }
}

function syncFolder(path: string): void {
  try {
    const fd = openSync(path, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // Some file systems cannot fsync a folder; the renames are still atomic.
  }
}

// ---------------------------------------------------------------- reading

function readJson(path: string, what: string, code: 'E_MODEL' | 'E_CARD'): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new StudentFileError(code, `${path}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message}${code === 'E_MODEL' ? ' (a student folder holds model.json, its weight files and card.json)' : ''}`);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new StudentFileError(code, `${path} is not ${what}: it is not JSON (${(error as Error).message})`);
  }
}

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

/** Checks one weights-manifest entry: name, shape, dtype, and a quantisation tfjs can decode. */
function checkSpec(spec: unknown, file: string): tf.io.WeightsManifestEntry {
  if (!isObject(spec) || typeof spec.name !== 'string' || !Array.isArray(spec.shape) || !spec.shape.every((d) => Number.isInteger(d) && (d as number) >= 0) || typeof spec.dtype !== 'string') {
    throw new StudentFileError('E_MODEL', `${file}: weightsManifest has an entry without a name, a shape of non-negative integers and a dtype: ${JSON.stringify(spec).slice(0, 120)}`);
  }
  if (!['float32', 'int32', 'bool'].includes(spec.dtype)) throw new StudentFileError('E_MODEL', `${file}: weight ${spec.name} has dtype ${spec.dtype}; a layers model's weights are float32 or int32`);
  const q = spec.quantization;
  if (q !== undefined) {
    if (!isObject(q) || !['uint8', 'uint16', 'float16'].includes(q.dtype as string)) {
      throw new StudentFileError('E_WEIGHTS', `${file}: weight ${spec.name} has quantization ${JSON.stringify(q)}; tfjs decodes uint8, uint16 (with scale and min) and float16`);
    }
    if (q.dtype !== 'float16') {
      const missing = ['scale', 'min'].filter((k) => typeof q[k] !== 'number' || !Number.isFinite(q[k]));
      if (missing.length > 0) throw new StudentFileError('E_WEIGHTS', `${file}: weight ${spec.name} is quantised as ${String(q.dtype)} but has no valid ${missing.join(' or ')}; it cannot be dequantised`);
    } else if (spec.dtype !== 'float32') {
      throw new StudentFileError('E_WEIGHTS', `${file}: weight ${spec.name} is ${spec.dtype}, which float16 quantisation does not support`);
    }
  }
  return spec as unknown as tf.io.WeightsManifestEntry;
}

/**
 * Reads and checks a student folder (or a model.json path): a layers model's model.json, every
 * weight file it lists with exactly the bytes its manifest needs, finite float32 weights, and
 * card.json when present (its weight-file hashes must match). Each problem is one error naming
 * the file and what is wrong.
 */
export function readStudent(path: string): StudentArtifacts {
  const modelPath = path.endsWith('.json') && !(existsSync(path) && statSync(path).isDirectory()) ? path : join(path, MODEL_JSON);
  const dir = dirname(modelPath);
  const json = readJson(modelPath, 'a tfjs model.json', 'E_MODEL');
  if (!isObject(json)) throw new StudentFileError('E_MODEL', `${modelPath} is not a tfjs model.json: expected an object with modelTopology and weightsManifest`);
  const topology = json.modelTopology;
  const layersTopology = isObject(topology) && (typeof topology.class_name === 'string' || (isObject(topology.model_config) && typeof topology.model_config.class_name === 'string'));
  if (json.format === 'graph-model' || (isObject(topology) && 'node' in topology)) {
    throw new StudentFileError('E_MODEL', `${modelPath} is a tfjs graph model (a converted TensorFlow SavedModel), not a layers model; codistill trains and reads layers models`);
  }
  if ((json.format !== undefined && json.format !== 'layers-model') || !layersTopology) {
    throw new StudentFileError('E_MODEL', `${modelPath} is not a tfjs layers model: ${json.format !== undefined && json.format !== 'layers-model' ? `its format is "${String(json.format)}"` : 'its modelTopology has no class_name (Sequential, Model, …)'}`);
  }
  if (!Array.isArray(json.weightsManifest) || !json.weightsManifest.every((g) => isObject(g) && Array.isArray(g.paths) && g.paths.every((p) => typeof p === 'string') && Array.isArray(g.weights))) {
    throw new StudentFileError('E_MODEL', `${modelPath}: weightsManifest must be a list of { paths: [file names], weights: [entries] }`);
  }
  const groups = json.weightsManifest as Array<{ paths: string[]; weights: unknown[] }>;
  const weightSpecs: tf.io.WeightsManifestEntry[] = [];
  const buffers: Uint8Array[] = [];
  const weightFiles: Array<{ path: string; bytes: number }> = [];
  /** For each spec, the file its first byte is in, to name it when its values are bad. */
  const fileOfSpec: string[] = [];
  for (const group of groups) {
    const specs = group.weights.map((s) => checkSpec(s, modelPath));
    const needed = specs.reduce((a, s) => a + specByteLength(s), 0);
    const parts = group.paths.map((p) => {
      if (p.includes('..') || p.startsWith('/')) throw new StudentFileError('E_MODEL', `${modelPath}: weight file "${p}" is outside the model's folder`);
      const file = join(dir, p);
      try {
        const b = new Uint8Array(readFileSync(file));
        weightFiles.push({ path: file, bytes: b.byteLength });
        return b;
      } catch (error) {
        throw new StudentFileError('E_WEIGHTS', `${file}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message} (listed in ${modelPath}'s weightsManifest)`);
      }
    });
    const got = parts.reduce((a, b) => a + b.byteLength, 0);
    if (got !== needed) {
      const names = group.paths.map((p) => join(dir, p)).join(', ');
      throw new StudentFileError('E_WEIGHTS', `${names}: ${got} bytes, but ${modelPath}'s weightsManifest needs ${needed} for its ${specs.length} weights (${got < needed ? 'truncated' : 'too long'}: a partial copy or the wrong file?)`);
    }
    let offset = 0;
    for (const spec of specs) {
      let at = offset;
      let k = 0;
      while (k < parts.length - 1 && at >= parts[k]!.byteLength) at -= parts[k++]!.byteLength;
      fileOfSpec.push(join(dir, group.paths[k] ?? ''));
      offset += specByteLength(spec);
    }
    weightSpecs.push(...specs);
    buffers.push(...parts);
  }
  const weightData = new Uint8Array(buffers.reduce((a, b) => a + b.byteLength, 0));
  let at = 0;
  for (const b of buffers) {
    weightData.set(b, at);
    at += b.byteLength;
  }
  // Garbled bytes decode to NaN or ±Inf more often than not; a trained model has neither.
  let offset = 0;
  weightSpecs.forEach((spec, i) => {
    const length = specByteLength(spec);
    if (spec.dtype === 'float32' && (spec.quantization === undefined || spec.quantization.dtype === 'float16')) {
      const bytes = weightData.buffer.slice(offset, offset + length);
      const bad = spec.quantization === undefined ? firstNonFiniteFloat32(new Float32Array(bytes)) : firstNonFiniteFloat16(new Uint16Array(bytes));
      if (bad !== undefined) throw new StudentFileError('E_WEIGHTS', `${fileOfSpec[i]}: weight ${spec.name} holds ${bad.value} at index ${bad.index}; the file is corrupt`);
    }
    offset += length;
  });

  let card: ModelCard | undefined;
  const cardPath = join(dir, CARD_JSON);
  if (existsSync(cardPath)) {
    const raw = readJson(cardPath, 'a codistill model card', 'E_CARD');
    if (!isObject(raw) || raw.format !== CARD_FORMAT || !isObject(raw.classes) || !Number.isInteger(raw.classes.count) || !isObject(raw.input) || !Array.isArray(raw.input.shape)) {
      throw new StudentFileError('E_CARD', `${cardPath} is not a codistill model card (${CARD_FORMAT}: format, classes.count, input.shape)`);
    }
    card = raw as unknown as ModelCard;
    for (const file of weightFiles) {
      const expected = card.weights?.files?.[basename(file.path)];
      if (expected === undefined) continue;
      const actual = `sha256:${sha256(new Uint8Array(readFileSync(file.path)))}`;
      if (actual !== expected) throw new StudentFileError('E_WEIGHTS', `${file.path}: its sha256 differs from the one ${cardPath} recorded when it was saved; the file is corrupt or was replaced`);
    }
  }
  return { modelTopology: topology as object, weightSpecs, weightData: weightData.buffer, weightFiles, card, dir };
}

export interface LoadedStudent {
  model: tf.LayersModel;
  card?: ModelCard;
  artifacts: StudentArtifacts;
  /** Output units and per-sample input shape, read from the model. */
  numClasses: number;
  inputShape: number[];
}

/**
 * Loads a saved student (a folder, or a model.json path) with tfjs's own loader, after
 * readStudent's checks; the card, when present, must agree with the model on classes and input.
 */
export async function loadStudent(path: string): Promise<LoadedStudent> {
  const artifacts = readStudent(path);
  const modelPath = join(artifacts.dir, MODEL_JSON);
  let model: tf.LayersModel;
  try {
    model = await tf.loadLayersModel(tf.io.fromMemory({ modelTopology: artifacts.modelTopology, weightSpecs: artifacts.weightSpecs, weightData: artifacts.weightData }));
  } catch (error) {
    throw new StudentFileError('E_MODEL', `${path.endsWith('.json') ? path : modelPath}: tfjs cannot build the model (${(error as Error).message})`);
  }
  if (model.inputs.length !== 1 || model.outputs.length !== 1) {
    model.dispose();
    throw new StudentFileError('E_MODEL', `${modelPath}: the model has ${model.inputs.length} inputs and ${model.outputs.length} outputs; a student has one of each (class logits)`);
  }
  const numClasses = model.outputs[0]!.shape.at(-1) as number;
  const inputShape = model.inputs[0]!.shape.slice(1) as number[];
  const card = artifacts.card;
  if (card !== undefined) {
    const cardPath = join(artifacts.dir, CARD_JSON);
    const problem = card.classes.count !== numClasses
      ? `says ${card.classes.count} classes; the model in ${modelPath} outputs ${numClasses}`
      : card.classes.names !== undefined && card.classes.names.length !== numClasses
        ? `names ${card.classes.names.length} classes; the model in ${modelPath} outputs ${numClasses}`
        : card.input.shape.join(',') !== inputShape.join(',')
          ? `says input shape [${card.input.shape.join(', ')}]; the model in ${modelPath} takes [${inputShape.join(', ')}]`
          : undefined;
    if (problem !== undefined) {
      model.dispose();
      throw new StudentFileError('E_CARD', `${cardPath} ${problem}; the card does not describe this model`);
    }
  }
  return { model, card, artifacts, numClasses, inputShape };
}

/**
 * A quantised copy of a saved float32 student, with its card (weights entry and derivedFrom
 * updated). Returns the sizes of both weight sets.
 */
export function exportStudent(from: string, to: string, quantize: Quantization): { fromBytes: number; toBytes: number; saved: SavedStudent } {
  const source = readStudent(from);
  const already = source.weightSpecs.find((s) => s.quantization !== undefined);
  if (already !== undefined) {
    throw new StudentFileError('E_WEIGHTS', `${join(source.dir, MODEL_JSON)}: weight ${already.name} is already quantised (${already.quantization!.dtype}); export from the float32 student`);
  }
  if (resolve(to) === resolve(source.dir)) throw new StudentFileError('E_SAVE', `--out ${to} is the source folder; write the quantised copy elsewhere`);
  probeSaveDir(to);
  const card: ModelCard | undefined = source.card === undefined ? undefined : {
    ...source.card,
    derivedFrom: { path: resolve(source.dir), weights: 'float32', note: `Weights quantised to ${quantize} by \`codistill export\` from the float32 student at ${resolve(source.dir)}; the metrics above are the float32 model's.` },
  };
  const saved = writeStudent(to, source, card, { quantize });
  return { fromBytes: source.weightData.byteLength, toBytes: saved.weightBytes, saved };
}

function firstNonFiniteFloat32(values: Float32Array): { index: number; value: number } | undefined {
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (v - v !== 0) return { index: i, value: v };
  }
  return undefined;
}

/** The first float16 whose exponent bits are all ones (±Inf, NaN), read from its bits: no decoding. */
function firstNonFiniteFloat16(bits: Uint16Array): { index: number; value: number } | undefined {
  for (let i = 0; i < bits.length; i++) {
    const h = bits[i]!;
    if ((h & 0x7c00) === 0x7c00) return { index: i, value: (h & 0x03ff) !== 0 ? Number.NaN : h & 0x8000 ? -Infinity : Infinity };
  }
  return undefined;
}

