/**
 * 8. Students (issue 14, "Speed and size"): a briefly trained MLP and CNN saved as students
 *    (client/student-io) and used the way `codistill export` and `codistill predict` use them:
 *    weight bytes on disk as float32, float16 and uint8 with the held-out accuracy of each;
 *    loadStudent's time; single-sample latency; and the throughput of `codistill predict`'s
 *    path (predictProbabilities) on 10,000 rows against Student.predict, interleaved.
 */
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { loadMnist, splitDataset } from '../client/data/mnist.js';
import { createModel, type ModelName } from '../client/models.js';
import { Student } from '../client/student.js';
import { exportStudent, loadStudent, preprocessingOf, readStudent, saveStudent, type CardFacts, type LoadedStudent } from '../client/student-io/index.js';
import { accuracy } from '../simulations/metrics.js';
import { predictProbabilities } from '../simulations/predict.js';
import { bytesText, figure, fmt, interleaved, median, now, type Benchmark, type Figure, type Table } from './harness.js';

const INPUT = [28, 28, 1];
const CLASSES = 10;
const HELD_OUT = 2000;
/**
 * The mnist package holds 10,000 digits: 2,000 held out, the other 8,000 trained on for two
 * epochs of batches of 32, 500 Adam steps in all, so that the accuracy quantisation may cost is
 * well above chance.
 */
const EPOCHS = 2;
const BATCH = 32;
const THROUGHPUT_ROWS = 10_000;
/** Issue 14: uint8 weights may cost at most half a point of held-out accuracy. */
const UINT8_BOUND_POINTS = 0.5;
/** Issue 14: `codistill predict` within 1.2× of Student.predict's time on the same rows. */
const PREDICT_PATH_BOUND = 1.2;

type Weights = 'float32' | 'float16' | 'uint8';
const WEIGHTS: readonly Weights[] = ['float32', 'float16', 'uint8'];

/** Bytes of the weight shards (group1-shard1of1.bin, …) in a student folder, as on disk. */
function weightBytesOnDisk(dir: string): number {
  return readdirSync(dir).filter((f) => f.endsWith('.bin')).reduce((a, f) => a + statSync(join(dir, f)).size, 0);
}

/** Nearest-rank percentile (p in (0, 100]) of unsorted values. */
function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}

const points = (x: number) => `${x > 0 ? '+' : ''}${x.toFixed(2)}`;

export const studentsBenchmark: Benchmark = {
  id: 'students',
  title: '8. Students: size and speed',
  async run({ quick, log }) {
    const reps = quick ? 3 : 7;
    const latencyCalls = quick ? 100 : 300;
    const latencyWarmup = 30;
    const all = loadMnist();
    const split = splitDataset(all, { test: HELD_OUT, reference: 0 }, 1);
    const test = split.test;
    const train = split.pool;
    // Speed does not depend on which digits: the first 10,000 of the set, as in section 2.
    const rows = Math.min(THROUGHPUT_ROWS, all.y.length);
    const throughputX = all.x.subarray(0, rows * 784);
    const root = mkdtempSync(join(tmpdir(), 'codistill-bench-students-'));
    const sizeRows: Table['rows'] = [];
    const speedRows: Table['rows'] = [];
    const figures: Figure[] = [];
    const notes: string[] = [];
    try {
      for (const name of ['mlp', 'cnn'] as ModelName[]) {
        const NAME = name.toUpperCase();
        const trained = new Student(createModel({ name, inputShape: INPUT, numClasses: CLASSES, seed: 1 }), { sampleShape: INPUT, numClasses: CLASSES, learningRate: 1e-3, seed: 1 });
        const fit = await trained.train({ labeled: train }, { epochs: EPOCHS, batchSize: BATCH, alpha: 1, temperature: 1 });
        const inMemory = await trained.evaluate(test);
        log(`  ${name}: trained ${fit.steps} steps of ${BATCH} in ${fmt(fit.ms / 1000)} s; held-out accuracy ${(100 * inMemory.accuracy).toFixed(2)} %`);

        const dirs: Record<Weights, string> = { float32: join(root, name), float16: join(root, `${name}-float16`), uint8: join(root, `${name}-uint8`) };
        const facts: CardFacts = {
          task: 'classification',
          classes: { count: CLASSES },
          input: { shape: INPUT, dtype: 'float32', preprocessing: preprocessingOf(train.x, 255, 'MNIST (mnist package)') },
          architecture: name,
          training: { algorithm: 'local', epochs: EPOCHS, batchSize: BATCH, learningRate: 1e-3, trainSamples: train.y.length, data: { source: 'MNIST (mnist package), bench split seed 1', hash: 'bench' }, seed: 1 },
          metrics: { heldOut: { accuracy: inMemory.accuracy, samples: HELD_OUT } },
          backend: tf.getBackend(),
        };
        saveStudent(dirs.float32, trained.model, facts);
        trained.dispose();
        // The quantised copies as `codistill export` makes them: from the float32 folder.
        exportStudent(dirs.float32, dirs.float16, 'float16');
        exportStudent(dirs.float32, dirs.uint8, 'uint8');

        // Each folder loaded once (float32 first: a `codistill predict` process loads one student, once),
        // then its held-out accuracy through the predict path.
        const bytes = {} as Record<Weights, number>;
        const loadMs = {} as Record<Weights, number>;
        const readMs = {} as Record<Weights, number>;
        const correct = {} as Record<Weights, number>;
        let loadedFloat32: LoadedStudent | undefined;
        for (const w of WEIGHTS) {
          bytes[w] = weightBytesOnDisk(dirs[w]);
          const started = now();
          const loaded = await loadStudent(dirs[w]);
          loadMs[w] = now() - started;
          // After loadStudent, so that its figure is of the first read of this folder: the file reading and checks alone, without tfjs.
          const readStarted = now();
          readStudent(dirs[w]);
          readMs[w] = now() - readStarted;
          const probs = predictProbabilities(loaded.model, test.x, loaded.inputShape, loaded.numClasses);
          correct[w] = Math.round(accuracy(probs, test.y, CLASSES) * HELD_OUT);
          if (w === 'float32') loadedFloat32 = loaded;
          else loaded.model.dispose();
        }
        const loaded = loadedFloat32!;
        // In points of accuracy, from counts: a multiple of 100 / 2,000 = 0.05, exact in binary.
        const change = (w: Weights) => (100 * (correct[w] - correct.float32)) / HELD_OUT;
        const accuracyText = (w: Weights) => `${((100 * correct[w]) / HELD_OUT).toFixed(2)} %`;
        if (correct.float32 !== Math.round(inMemory.accuracy * HELD_OUT)) {
          notes.push(`${NAME}: the float32 student as loaded gets ${correct.float32} of ${HELD_OUT} held-out digits right, the model in memory before saving ${Math.round(inMemory.accuracy * HELD_OUT)}; they should agree.`);
        }
        for (const w of WEIGHTS) {
          sizeRows.push([name, w, bytes[w].toLocaleString('en-US'), bytesText(bytes[w]), w === 'float32' ? '1' : fmt(bytes[w] / bytes.float32), accuracyText(w), w === 'float32' ? '—' : points(change(w)), fmt(loadMs[w]), fmt(readMs[w])]);
        }
        log(`    weights float32 ${bytesText(bytes.float32)}, float16 ${bytesText(bytes.float16)} (${fmt(bytes.float16 / bytes.float32)}×), uint8 ${bytesText(bytes.uint8)} (${fmt(bytes.uint8 / bytes.float32)}×)`);
        if (loadMs.float16 > 2 * loadMs.float32) {
          notes.push(`${NAME}: the float16 folder took ${fmt(loadMs.float16)} ms to load against ${fmt(loadMs.float32)} ms for float32 and ${fmt(loadMs.uint8)} ms for uint8; readStudent alone, which decodes every float16 weight in JavaScript to check that none is NaN or infinite, took ${fmt(readMs.float16)} ms timed on its own (${fmt(readMs.float32)} ms for float32).`);
        }
        log(`    held-out accuracy float32 ${accuracyText('float32')}, float16 ${points(change('float16'))} points, uint8 ${points(change('uint8'))} points; loadStudent float32 ${fmt(loadMs.float32)} ms`);

        // Single-sample latency: one row per call through the predict path, rows taken in turn.
        const d = 784;
        const one = (i: number) => predictProbabilities(loaded.model, test.x.subarray((i % HELD_OUT) * d, ((i % HELD_OUT) + 1) * d), loaded.inputShape, loaded.numClasses);
        for (let i = 0; i < latencyWarmup; i++) one(i);
        const latencies: number[] = [];
        for (let i = 0; i < latencyCalls; i++) {
          const started = now();
          one(latencyWarmup + i);
          latencies.push(now() - started);
        }
        const p50 = percentile(latencies, 50);
        const p99 = percentile(latencies, 99);
        log(`    single-sample predict over ${latencyCalls} calls: p50 ${fmt(p50)} ms, p99 ${fmt(p99)} ms`);

        // Throughput: the same loaded model through both paths, interleaved.
        const student = new Student(loaded.model, { sampleShape: loaded.inputShape, numClasses: loaded.numClasses, learningRate: 1e-3, seed: 1 });
        log(`    ${rows.toLocaleString('en-US')} rows: codistill predict's path vs Student.predict, ${reps} interleaved reps`);
        let pathOut: Float32Array | undefined;
        let studentOut: Float32Array | undefined;
        const times = await interleaved({
          path: async () => (pathOut = predictProbabilities(loaded.model, throughputX, loaded.inputShape, loaded.numClasses)),
          student: async () => (studentOut = await student.predict(throughputX, 1)),
        }, { warmup: 1, reps });
        let maxDiff = 0;
        for (let i = 0; i < pathOut!.length; i++) maxDiff = Math.max(maxDiff, Math.abs(pathOut![i]! - studentOut![i]!));
        student.dispose();
        const pathMs = median(times.path!);
        const studentMs = median(times.student!);
        const pathRate = rows / (pathMs / 1000);
        const studentRate = rows / (studentMs / 1000);
        log(`    predict path ${fmt(pathRate)} rows/s, Student.predict ${fmt(studentRate)} rows/s (ratio of times ${fmt(pathMs / studentMs)}); largest probability difference ${maxDiff.toExponential(1)}`);
        speedRows.push([name, fmt(loadMs.float32), fmt(p50), fmt(p99), fmt(pathMs), fmt(pathRate), fmt(studentMs), fmt(studentRate), fmt(pathMs / studentMs), maxDiff === 0 ? '0' : maxDiff.toExponential(1)]);

        for (const w of ['float16', 'uint8'] as const) {
          figures.push(figure({
            id: `students.${name}.${w}-bytes`,
            label: `${NAME} ${w} weights on disk vs float32`,
            value: bytes[w], unit: 'bytes',
            baseline: { label: 'float32 weights', value: bytes.float32, unit: 'bytes' },
          }));
        }
        figures.push(figure({
          id: `students.${name}.uint8-accuracy`,
          label: `${NAME} uint8 weights: |change| of held-out accuracy vs float32 (${HELD_OUT.toLocaleString('en-US')} digits)`,
          value: Math.abs(change('uint8')), unit: 'points',
          // Accuracy on 2,000 digits moves in steps of 0.05 points: < 0.525 is ≤ 0.5.
          target: { on: 'value', op: '<', goal: UINT8_BOUND_POINTS + 50 / HELD_OUT },
          note: `float32 ${accuracyText('float32')}, uint8 ${accuracyText('uint8')} (${points(change('uint8'))}); the target is ≤ ${UINT8_BOUND_POINTS} points, in steps of 0.05`,
        }));
        figures.push(figure({
          id: `students.${name}.float16-accuracy`,
          label: `${NAME} float16 weights: change of held-out accuracy vs float32`,
          value: change('float16'), unit: 'points',
          note: `float16 ${accuracyText('float16')}`,
        }));
        figures.push(figure({
          id: `students.${name}.load`,
          label: `${NAME} loadStudent of the float32 folder, once`,
          value: loadMs.float32, unit: 'ms',
        }));
        figures.push(figure({
          id: `students.${name}.latency`,
          label: `${NAME} single-sample prediction of the loaded student, p50 of ${latencyCalls} calls`,
          value: p50, unit: 'ms',
          note: `p99 ${fmt(p99)} ms`,
        }));
        figures.push(figure({
          id: `students.${name}.predict-path`,
          label: `${NAME} codistill predict's path (predictProbabilities) on ${rows.toLocaleString('en-US')} rows vs Student.predict, time`,
          value: pathMs, unit: 'ms',
          baseline: { label: 'Student.predict (T = 1), same model and rows', value: studentMs, unit: 'ms' },
          target: { on: 'ratio', op: '<', goal: PREDICT_PATH_BOUND },
          note: `${fmt(pathRate)} vs ${fmt(studentRate)} rows/s`,
        }));
      }
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
    return {
      method: [
        `Each model trained from seed 1 on the ${train.y.length.toLocaleString('en-US')} MNIST digits not held out, ${EPOCHS} epochs of batches of ${BATCH} (${EPOCHS * Math.ceil(train.y.length / BATCH)} Adam steps), saved with saveStudent in a temporary folder, then exported to float16 and uint8 with exportStudent (as \`codistill export\` does); sizes are the weight files' bytes on disk.`,
        `Held-out accuracy: ${HELD_OUT.toLocaleString('en-US')} MNIST digits never trained on (splitDataset seed 1), each folder loaded with loadStudent and run through predictProbabilities (simulations/predict.ts, what \`codistill predict\` and \`evaluate\` call after loading).`,
        'loadStudent timed once per folder, float32 first, in a process whose tfjs is already warm from training; the files were just written, so they come from the page cache. readStudent (the reading and checking of the files inside loadStudent, without tfjs) timed once after it.',
        `Single-sample latency: ${latencyCalls} calls of predictProbabilities on one row each after ${latencyWarmup} untimed ones, every call timed.`,
        `Throughput: ${rows.toLocaleString('en-US')} rows through predictProbabilities and through Student.predict (T = 1) wrapping the same loaded model, interleaved, one warm-up, median of ${reps}.`,
      ],
      tables: [
        { caption: 'Weights on disk and held-out accuracy', columns: ['model', 'weights', 'bytes', 'size', 'vs float32', 'held-out accuracy', 'change (points)', 'loadStudent ms', 'readStudent ms (after it)'], rows: sizeRows },
        {
          caption: `Loading and predicting on ${tf.getBackend()}`,
          columns: ['model', 'loadStudent ms (float32)', 'single-sample p50 ms', 'p99 ms', `predict path ms / ${rows.toLocaleString('en-US')} rows`, 'rows/s', 'Student.predict ms', 'rows/s', 'time ratio', 'largest |Δp|'],
          rows: speedRows,
        },
      ],
      figures,
      notes,
    };
  },
};
