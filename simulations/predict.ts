/**
 * `codistill predict` and `codistill evaluate`: a saved student (client/student-io) on a file of
 * samples, with the card's preprocessing, on any tfjs backend. predict writes the class and the
 * probabilities of every row; both report accuracy (and evaluate ECE and per-class accuracy)
 * when the data has labels.
 */
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../client/backend.js';
import { parseCsv } from '../client/data/csv.js';
import { findIdxPairs, loadIdxDataset, readIdxFile, readMaybeGzipped } from '../client/data/idx.js';
import { loadStudent, StudentFileError, type LoadedStudent } from '../client/student-io/index.js';
import { accuracy, argmaxRow, expectedCalibrationError, perClassAccuracy } from './metrics.js';

/** Samples to run a student on: features as the model takes them, labels when the file has them. */
export interface EvaluationData {
  x: Float32Array;
  /** Class ids in the model's numbering; absent for unlabeled data. */
  y?: Int32Array;
  sampleShape: number[];
  /** What was read, for messages. */
  description: string;
}

const PREDICT_BATCH = 512;

/**
 * Reads --data for a student: an IDX folder (its test pair if it has one, else its only pair), an IDX images file (labelled when its `…-labels-idx1-ubyte` file is beside it),
 * or a CSV file (labelled when it has the label column). u8 values are divided by the card's
 * u8Divisor (255 unless the card says otherwise), as the student's training data was; CSV values
 * are used as they are.
 */
export function loadEvaluationData(path: string, student: LoadedStudent, label = 'label'): EvaluationData {
  if (!existsSync(path)) throw new Error(`E_DATA_MISSING: --data ${path}: no such file or folder`);
  const divisor = student.card?.input.preprocessing.u8Divisor ?? 255;
  if (divisor !== 255 && divisor !== 1) throw new StudentFileError('E_CARD', `${join(student.artifacts.dir, 'card.json')}: preprocessing.u8Divisor ${divisor} is not one codistill applies (255 or 1)`);
  const scaleBytes = divisor === 255;
  // A student trained on features as read gets them as read; one trained on pixels ÷ 255 gets a
  // CSV of 0–255 pixels divided (the loader's rule), and one already in [0, 1] as it is.
  const csvScaling = scaleBytes ? 'auto' : 'none';
  let x: Float32Array;
  let y: Int32Array | undefined;
  let sampleShape: number[];
  let classNames: string[] | undefined;
  let description: string;
  if (statSync(path).isDirectory()) {
    // The folder's test pair when it has one (t10k-… or …-test), else its only pair.
    const pairs = findIdxPairs(path);
    const test = pairs.filter((p) => /(^|[-._])(t10k|test)$/.test(p.prefix));
    const pair = test.length === 1 ? test[0]! : pairs.length === 1 ? pairs[0]! : undefined;
    if (pair === undefined) {
      throw new Error(`E_DATA_AMBIGUOUS: ${path} holds ${pairs.length === 0 ? 'no IDX images/labels pair' : `the pairs ${pairs.map((p) => p.prefix).join(', ')} and no single test pair`}; give the images file itself (--data ${path}/<prefix>-images-idx3-ubyte)`);
    }
    const set = loadIdxDataset(pair.images, pair.labels, { scaleBytes });
    ({ x, y, sampleShape } = set);
    description = `IDX ${pair.images} (${set.y.length} samples)`;
  } else if (/\.csv(\.gz)?$/i.test(path)) {
    const text = new TextDecoder('utf-8').decode(readMaybeGzipped(path));
    const firstLine = text.slice(0, text.search(/\r?\n|$/)).replace(/^\uFEFF/, '');
    const labelled = firstLine.split(',').map((s) => s.trim().replace(/^"|"$/g, '')).includes(label);
    if (labelled) {
      const data = parseCsv(text, path, { label, scaling: csvScaling });
      ({ x, y, sampleShape } = data);
      classNames = data.classNames;
    } else {
      // No label column: the rows are features alone. A throwaway label column lets the parser check every value.
      const lines = text.split(/\r?\n/).filter((l) => l.length > 0);
      const withLabel = [`${lines[0]},__codistill_no_label`, ...lines.slice(1).map((l) => `${l},0`)].join('\n');
      const data = parseCsv(withLabel, path, { label: '__codistill_no_label', scaling: csvScaling });
      ({ x, sampleShape } = data);
    }
    description = `CSV ${path} (${x.length / sampleShape.reduce((a, b) => a * b, 1)} rows${labelled ? '' : ', no label column'})`;
  } else {
    const images = readIdxFile(path);
    const n = images.shape[0] ?? 0;
    const sample = images.shape.slice(1);
    sampleShape = sample.length === 2 ? [sample[0]!, sample[1]!, 1] : sample;
    x = images.dtype === 'u8' && scaleBytes ? Float32Array.from(images.data as ArrayLike<number>, (v) => v / 255) : Float32Array.from(images.data as ArrayLike<number>);
    // Labels beside it: the same prefix with -labels-idx1-ubyte, when the folder has that pair.
    const pair = findIdxPairs(dirname(path)).find((p) => basename(p.images) === basename(path));
    if (pair !== undefined) {
      y = Int32Array.from(readIdxFile(pair.labels).data as ArrayLike<number>);
      if (y.length !== n) throw new Error(`E_IDX_COUNT: ${path} holds ${n} images but ${pair.labels} holds ${y.length} labels`);
    }
    description = `IDX ${path} (${n} samples${y === undefined ? ', no labels file beside it' : ''})`;
  }
  return fitToStudent({ x, y, sampleShape, description }, student, path, classNames);
}

/**
 * Checks that data and student fit: the same number of features per sample (reshaped when only
 * the shape differs, e.g. 784 CSV columns for a [28, 28, 1] model) and labels within the model's
 * classes (by name when both have names). One message names both sides when they do not fit.
 */
function fitToStudent(data: EvaluationData, student: LoadedStudent, path: string, classNames?: string[]): EvaluationData {
  const where = student.artifacts.dir;
  const want = student.inputShape;
  const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
  if (size(data.sampleShape) !== size(want)) {
    throw new StudentFileError('E_SHAPE', `--data ${path} holds samples of shape [${data.sampleShape.join(', ')}] (${size(data.sampleShape)} values); the model at ${where} takes [${want.join(', ')}] (${size(want)} values)`);
  }
  let y = data.y;
  const classes = student.numClasses;
  const names = student.card?.classes.names;
  if (y !== undefined && classNames !== undefined) {
    if (names === undefined) throw new StudentFileError('E_SHAPE', `--data ${path} has class names (${classNames.slice(0, 5).join(', ')}…); the model at ${where} has numbered classes 0–${classes - 1}`);
    const unknown = classNames.filter((n) => !names.includes(n));
    if (unknown.length > 0) throw new StudentFileError('E_SHAPE', `--data ${path} has classes ${unknown.join(', ')} that the model at ${where} does not know (its classes: ${names.join(', ')})`);
    const remap = classNames.map((n) => names.indexOf(n));
    y = Int32Array.from(y, (c) => remap[c]!);
  }
  if (y !== undefined) {
    let max = -1;
    for (const c of y) if (c > max) max = c;
    if (max >= classes) {
      throw new StudentFileError('E_SHAPE', `--data ${path} has labels up to ${max} (${max + 1} classes); the model at ${where} classifies ${classes} classes (0–${classes - 1})`);
    }
  }
  const range = student.card?.input.preprocessing.featureRange;
  if (range !== undefined) {
    let hi = -Infinity;
    for (const v of data.x) if (v > hi) hi = v;
    if (hi > 2 * Math.max(1, range[1])) {
      process.stderr.write(`warning: --data ${path} has features up to ${hi}; the student trained on [${range[0]}, ${range[1]}] (${student.card!.input.preprocessing.description})\n`);
    }
  }
  return { ...data, y, sampleShape: want };
}

/** softmax(logits) of every row, in batches of 512 — the way a participant evaluates its student. */
export function predictProbabilities(model: tf.LayersModel, x: Float32Array, sampleShape: number[], numClasses: number): Float32Array {
  const d = sampleShape.reduce((a, b) => a * b, 1);
  const count = x.length / d;
  const out = new Float32Array(count * numClasses);
  for (let start = 0; start < count; start += PREDICT_BATCH) {
    const rows = Math.min(PREDICT_BATCH, count - start);
    const result = tf.tidy(() => {
      const batch = tf.tensor(x.subarray(start * d, (start + rows) * d), [rows, ...sampleShape]);
      return tf.softmax(tf.div(model.predict(batch, { batchSize: rows }) as tf.Tensor2D, 1));
    });
    out.set(result.dataSync() as Float32Array, start * numClasses);
    result.dispose();
  }
  return out;
}

/** counts[true][predicted]. */
export function confusionMatrix(probs: Float32Array, labels: Int32Array, numClasses: number): number[][] {
  const m = Array.from({ length: numClasses }, () => new Array<number>(numClasses).fill(0));
  labels.forEach((y, i) => m[y]![argmaxRow(probs, numClasses, i)]!++);
  return m;
}

export interface EvaluationReport {
  model: string;
  data: string;
  samples: number;
  accuracy: number;
  /** Expected calibration error, 15 equal-width bins (simulations/metrics.ts). */
  ece: number;
  perClassAccuracy: Array<number | null>;
  confusion: number[][];
  classes: string[];
  backend: string;
}

export function evaluationReport(student: LoadedStudent, data: EvaluationData, probs: Float32Array, backend: string): EvaluationReport {
  const c = student.numClasses;
  const y = data.y!;
  return {
    model: student.artifacts.dir,
    data: data.description,
    samples: y.length,
    accuracy: accuracy(probs, y, c),
    ece: expectedCalibrationError(probs, y, c, 15),
    perClassAccuracy: perClassAccuracy(probs, y, c).map((a) => (Number.isNaN(a) ? null : a)),
    confusion: confusionMatrix(probs, y, c),
    classes: student.card?.classes.names ?? Array.from({ length: c }, (_, k) => String(k)),
    backend,
  };
}

function formatConfusion(report: EvaluationReport): string {
  const width = Math.max(5, ...report.classes.map((n) => n.length), ...report.confusion.flat().map((k) => String(k).length)) + 1;
  const head = `${'true\\pred'.padEnd(10)}${report.classes.map((n) => n.padStart(width)).join('')}`;
  return [head, ...report.confusion.map((row, k) => `${report.classes[k]!.padEnd(10)}${row.map((v) => String(v).padStart(width)).join('')}`)].join('\n');
}

const USAGE_PREDICT = `usage: codistill predict --model DIR --data FILE|FOLDER [--out preds.csv] [--label COLUMN] [--backend NAME]
  Runs a saved student on samples (CSV, an IDX images file, or an IDX folder), applying the
  preprocessing its card records; writes each row's class and probabilities to --out
  [predictions.csv] and, when the data has labels, prints accuracy and the confusion matrix.
`;
const USAGE_EVALUATE = `usage: codistill evaluate --model DIR --data FILE|FOLDER [--out metrics.json] [--label COLUMN] [--backend NAME]
  Accuracy, expected calibration error (15 bins) and per-class accuracy of a saved student on
  labelled data; printed and written to --out [DIR/evaluation-<data>.json].
`;

function parse(args: string[]) {
  const { values } = parseArgs({
    args,
    strict: true,
    options: { model: { type: 'string' }, data: { type: 'string' }, out: { type: 'string' }, label: { type: 'string' }, backend: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  return values;
}

export async function runPredictCommand(args: string[], mode: 'predict' | 'evaluate'): Promise<number> {
  const usage = mode === 'predict' ? USAGE_PREDICT : USAGE_EVALUATE;
  let v: ReturnType<typeof parse>;
  try {
    v = parse(args);
  } catch (error) {
    process.stderr.write(`codistill ${mode}: ${(error as Error).message}\n\n${usage}`);
    return 2;
  }
  if (v.help === true) {
    process.stdout.write(usage);
    return 0;
  }
  if (v.model === undefined || v.data === undefined) {
    process.stderr.write(`codistill ${mode}: missing --${v.model === undefined ? 'model' : 'data'}\n\n${usage}`);
    return 2;
  }
  try {
    const backend = await selectBackend(v.backend);
    const student = await loadStudent(v.model);
    try {
      const data = loadEvaluationData(v.data, student, v.label);
      const probs = predictProbabilities(student.model, data.x, data.sampleShape, student.numClasses);
      const c = student.numClasses;
      const rows = probs.length / c;
      const say = (line: string) => process.stdout.write(`${line}\n`);
      say(`student ${student.artifacts.dir} (${student.card?.model.architecture ?? 'no card'}, ${c} classes, weights ${student.card?.weights.dtype ?? 'float32'}) on ${backend}; data: ${data.description}`);
      if (mode === 'evaluate' && data.y === undefined) throw new Error(`E_DATA: --data ${v.data} has no labels; evaluate needs them (predict runs without)`);
      const report = data.y === undefined ? undefined : evaluationReport(student, data, probs, backend);
      if (mode === 'predict') {
        const out = v.out ?? 'predictions.csv';
        const names = student.card?.classes.names ?? Array.from({ length: c }, (_, k) => String(k));
        const lines = [`row,class,${names.map((n) => `p_${n}`).join(',')}${data.y === undefined ? '' : ',label'}`];
        for (let i = 0; i < rows; i++) {
          const p = Array.from(probs.subarray(i * c, (i + 1) * c), (q) => q.toPrecision(6));
          lines.push(`${i},${names[argmaxRow(probs, c, i)]},${p.join(',')}${data.y === undefined ? '' : `,${names[data.y[i]!]}`}`);
        }
        mkdirSync(dirname(out), { recursive: true });
        writeFileSync(out, `${lines.join('\n')}\n`);
        say(`${rows} predictions written to ${out}`);
        if (report !== undefined) say(`accuracy ${(100 * report.accuracy).toFixed(2)}% (${Math.round(report.accuracy * rows)}/${rows})\n\nconfusion matrix (rows: true class, columns: predicted):\n${formatConfusion(report)}`);
      } else {
        const r = report!;
        say(`accuracy ${(100 * r.accuracy).toFixed(2)}% (${Math.round(r.accuracy * rows)}/${rows}), ECE (15 bins) ${r.ece.toFixed(4)}`);
        say(`per-class accuracy: ${r.perClassAccuracy.map((a, k) => `${r.classes[k]} ${a === null ? '—' : `${(100 * a).toFixed(1)}%`}`).join(', ')}`);
        const out = v.out ?? join(student.artifacts.dir, `evaluation-${basename(v.data).replace(/[^\w.-]+/g, '_')}.json`);
        mkdirSync(dirname(out), { recursive: true });
        writeFileSync(out, `${JSON.stringify(r, null, 2)}\n`);
        say(`metrics written to ${out}`);
      }
      return 0;
    } finally {
      student.model.dispose();
    }
  } catch (error) {
    process.stderr.write(`codistill ${mode}: ${(error as Error).message}\n`);
    return error instanceof StudentFileError ? 2 : 1;
  }
}

/** For export: the data's accuracy under a student, or undefined without labels. */
export async function accuracyOn(studentDir: string, dataPath: string, label?: string): Promise<number | undefined> {
  const student = await loadStudent(studentDir);
  try {
    const data = loadEvaluationData(dataPath, student, label);
    if (data.y === undefined) return undefined;
    return accuracy(predictProbabilities(student.model, data.x, data.sampleShape, student.numClasses), data.y, student.numClasses);
  } finally {
    student.model.dispose();
  }
}

