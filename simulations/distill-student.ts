/**
 * Keeps the student of `codistill distill`. runDistillation (client/distill/recipes.ts) disposes
 * every model it built before it returns and offers no hook, so until it does (the hook wanted:
 * an `onStudent(model: FeatureModel)` option called before the models are disposed), this
 * snapshots each plain FeatureModel as it is disposed — its logits output as a single-output
 * layers model, weights read synchronously — and afterwards picks the one that is the reported
 * student: its architecture, then its test errors recomputed from the snapshot, must match the
 * report. A student that cannot be told apart or represented (ONE's gated ensemble is computed
 * outside the layers graph) is not saved, and the reason is returned.
 */
import * as tf from '@tensorflow/tfjs';
import { describeArchitecture, distillData, FeatureModel, type DistillOptions, type DistillReport } from '../client/distill/index.js';
import { modelArtifacts, preprocessingOf, saveStudent, type Quantization } from '../client/student-io/index.js';

export interface Snapshot {
  architecture: string;
  artifacts: ReturnType<typeof modelArtifacts>;
}

/** Runs `body` while every disposed plain FeatureModel is snapshotted first. */
/**
 * `--save DIR`, `--no-save` and `--quantize D` taken out of distill's arguments (its own parser
 * does not know them); the rest are passed on.
 */
export function takeSaveFlags(args: string[]): { rest: string[]; save?: string; noSave: boolean; quantize?: string } {
  const rest: string[] = [];
  let save: string | undefined;
  let quantize: string | undefined;
  let noSave = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const [flag, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    if (flag === '--no-save') noSave = true;
    else if (flag === '--save' || flag === '--quantize') {
      const value = inline ?? args[++i];
      if (value === undefined || value.startsWith('--')) throw new Error(`${flag} needs a value`);
      if (flag === '--save') save = value;
      else quantize = value;
    } else rest.push(a);
  }
  return { rest, save, noSave, quantize };
}

export async function withDisposedSnapshots<T>(body: () => Promise<T>): Promise<{ value: T; snapshots: Snapshot[] }> {
  const snapshots: Snapshot[] = [];
  const dispose = FeatureModel.prototype.dispose;
  FeatureModel.prototype.dispose = function (this: FeatureModel) {
    if (this.spec.architecture.kind === 'plain') {
      const logits = tf.model({ inputs: this.model.inputs, outputs: this.model.outputs[0]! });
      snapshots.push({ architecture: describeArchitecture(this.spec.architecture), artifacts: modelArtifacts(logits) });
    }
    dispose.call(this);
  };
  try {
    return { value: await body(), snapshots };
  } finally {
    FeatureModel.prototype.dispose = dispose;
  }
}

/** The snapshot that is the report's student, loaded as a tfjs model; or why there is none. */
export async function distilledStudent(report: DistillReport, options: DistillOptions, snapshots: Snapshot[]): Promise<tf.LayersModel | string> {
  if (options.method === 'one') return 'the ONE student is a gated ensemble of branches computed outside the layers graph; it is not saved as a single layers model';
  const { test } = distillData(options);
  const matches: tf.LayersModel[] = [];
  for (const s of snapshots.filter((c) => c.architecture === report.student.architecture)) {
    const model = await tf.loadLayersModel(tf.io.fromMemory(s.artifacts));
    const errors = tf.tidy(() => {
      const predicted = (model.predict(tf.tensor(test.x, [test.y.length, ...test.sampleShape])) as tf.Tensor2D).argMax(1);
      return tf.notEqual(predicted, tf.tensor1d(test.y, 'int32')).sum().dataSync()[0]!;
    });
    if (errors === report.student.errors) matches.push(model);
    else model.dispose();
  }
  // ban's generations and the kd baseline share the student's architecture; the test errors tell
  // them apart unless two made exactly as many errors, and then the later one is the student
  // (disposed last: ban's last generation; kd's student is disposed before its baseline, so a tie there is refused).
  if (matches.length === 1 || (matches.length > 1 && options.method === 'ban')) {
    const chosen = matches.pop()!;
    for (const m of matches) m.dispose();
    return chosen;
  }
  for (const m of matches) m.dispose();
  return matches.length === 0
    ? `no model built during the run matches the reported student (${report.student.architecture}, ${report.student.errors} errors)`
    : `${matches.length} models of the student's architecture made ${report.student.errors} test errors; which is the student cannot be told`;
}

/** Saves the run's student with its card (simulations/distill-student.ts finds it); returns the line to print. */
export async function saveDistilledStudent(report: DistillReport, options: DistillOptions, snapshots: Snapshot[], dir: string, backend: string, quantize?: Quantization): Promise<string> {
  const student = await distilledStudent(report, options, snapshots);
  if (typeof student === 'string') return `student not saved: ${student}`;
  try {
    const { train } = distillData(options);
    const saved = saveStudent(dir, student, {
      task: 'classification',
      classes: { count: train.numClasses },
      input: { shape: train.sampleShape, dtype: 'float32', preprocessing: preprocessingOf(train.x, 255, report.data.source) },
      architecture: report.student.architecture,
      training: {
        algorithm: `distill ${report.method}`, epochs: report.student.stages.reduce((a, s) => a + s.epochs, 0), batchSize: options.batchSize, learningRate: options.learningRate,
        trainSamples: report.data.train, data: { source: report.data.source, hash: `sha256:${report.data.trainHash} (training split)` }, seed: options.seed,
      },
      metrics: { heldOut: { accuracy: report.student.accuracy, samples: report.data.test } },
      backend,
    }, quantize === undefined ? {} : { quantize });
    return `student saved to ${saved.dir} (${saved.card.weights.dtype} weights, ${saved.weightBytes.toLocaleString('en-US')} bytes; model.json, card.json, README.md)`;
  } finally {
    student.dispose();
  }
}
