/**
 * 2. Prediction: samples/s of the soft predictions a participant uploads (Student.predict,
 *    softmax(z/T)) on 10,000 reference samples, against plain tfjs model.predict + softmax on the
 *    same model and samples in the same process.
 */
import * as tf from '@tensorflow/tfjs';
import { loadMnist } from '../client/data/mnist.js';
import { createModel, type ModelName } from '../client/models.js';
import { Student } from '../client/student.js';
import { modelFlops } from './flops.js';
import { legacyPredict } from './legacy.js';
import { figure, fmt, interleaved, median, type Benchmark, type Figure, type Table } from './harness.js';

const INPUT: [number, number, number] = [28, 28, 1];
const TEMPERATURE = 3;
const SAMPLES = 10_000;
/** Student.predict's own batch size, so the baseline does the same work per call. */
const PLAIN_BATCH = 512;

export const predictionBenchmark: Benchmark = {
  id: 'prediction',
  title: '2. Prediction',
  async run({ quick, log }) {
    const all = loadMnist();
    const count = Math.min(SAMPLES, all.y.length);
    const x = all.x.subarray(0, count * 784);
    const reps = quick ? 3 : 5;
    const rows: Table['rows'] = [];
    const figures: Figure[] = [];
    for (const name of ['mlp', 'cnn'] as ModelName[]) {
      const model = createModel({ name, inputShape: INPUT, numClasses: 10, seed: 1 });
      const student = new Student(model, { sampleShape: INPUT, numClasses: 10, learningRate: 1e-3, seed: 1 });
      const input = tf.tensor4d(x, [count, ...INPUT]);
      const plain = async () => {
        const probs = tf.tidy(() => tf.softmax(tf.div(model.predict(input, { batchSize: PLAIN_BATCH }) as tf.Tensor2D, TEMPERATURE)));
        const values = await probs.data();
        probs.dispose();
        return values;
      };
      log(`  ${name}: Student.predict vs model.predict on ${count} samples, ${reps} interleaved reps`);
      const before = () => legacyPredict(model, [...INPUT], 10, x, TEMPERATURE);
      const times = await interleaved({ student: () => student.predict(x, TEMPERATURE), plain, before }, { warmup: 1, reps });
      input.dispose();
      const flops = modelFlops(model).forward;
      const studentRate = count / (median(times.student!) / 1000);
      const plainRate = count / (median(times.plain!) / 1000);
      const beforeRate = count / (median(times.before!) / 1000);
      student.dispose();
      rows.push([name, fmt(median(times.student!)), fmt(studentRate), fmt(beforeRate), fmt(median(times.plain!)), fmt(plainRate), fmt((studentRate * flops) / 1e9)]);
      log(`    Student.predict ${fmt(studentRate)} samples/s, model.predict ${fmt(plainRate)} samples/s`);
      figures.push(figure({
        id: `prediction.${name}`,
        label: `${name.toUpperCase()} soft predictions on ${count.toLocaleString('en-US')} samples (Student.predict) vs model.predict + softmax`,
        value: studentRate, unit: 'samples/s',
        baseline: { label: `model.predict, batch ${PLAIN_BATCH}`, value: plainRate, unit: 'samples/s' },
      }));
      figures.push(figure({
        id: `prediction.${name}.fix`,
        label: `${name.toUpperCase()} Student.predict now vs before the fix (one predict call per 512 rows, values read outside tf.tidy)`,
        value: studentRate, unit: 'samples/s',
        baseline: { label: 'Student.predict before (bench/legacy.ts)', value: beforeRate, unit: 'samples/s' },
      }));
    }
    return {
      method: [
        `${count.toLocaleString('en-US')} MNIST samples, softmax(z/${TEMPERATURE}) read back to a Float32Array; untrained models (speed does not depend on the weights).`,
        `Baselines: model.predict(batchSize ${PLAIN_BATCH}) + softmax + data() on one tensor of all samples, and Student.predict as it was before the fix (bench/legacy.ts); all interleaved, median of ${reps}.`,
      ],
      tables: [{
        caption: `Soft predictions on ${tf.getBackend()}`,
        columns: ['model', 'Student.predict ms', 'samples/s', 'samples/s before the fix', 'model.predict ms', 'samples/s', 'forward GFLOP/s (Student)'],
        rows,
      }],
      figures,
      notes: [],
    };
  },
};
