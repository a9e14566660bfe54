/**
 * Keeps the student of `codistill distill`: runDistillation hands its trained student to
 * `onStudent` before it disposes its models, and the student's logits output is kept as a plain
 * layers model (weights read synchronously, the bytes model.save writes), to be saved with its
 * card once the report is complete. ONE's student is a gated ensemble computed outside the
 * layers graph: it is not a single layers model, and is not saved.
 */
import * as tf from '@tensorflow/tfjs';
import { distillData, type DistillHooks, type DistillOptions, type DistillReport } from '../client/distill/index.js';
import { modelArtifacts, preprocessingOf, saveStudent, type Quantization } from '../client/student-io/index.js';

/** The trained student, taken before the run disposes it. */
export interface KeptStudent {
  artifacts: ReturnType<typeof modelArtifacts>;
}

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

/** Hooks for runDistillation that keep its student, and what they kept. */
export function keepStudent(): { hooks: DistillHooks; kept: { student?: KeptStudent } } {
  const kept: { student?: KeptStudent } = {};
  const hooks: DistillHooks = {
    onStudent(model) {
      const logits = tf.model({ inputs: model.model.inputs, outputs: model.model.outputs[0]! });
      kept.student = { artifacts: modelArtifacts(logits) };
    },
  };
  return { hooks, kept };
}

/** Saves the run's student with its card (simulations/distill-student.ts finds it); returns the line to print. */
export async function saveDistilledStudent(report: DistillReport, options: DistillOptions, kept: KeptStudent | undefined, dir: string, backend: string, quantize?: Quantization): Promise<string> {
  if (kept === undefined) {
    return options.method === 'one'
      ? 'student not saved: the ONE student is a gated ensemble of branches computed outside the layers graph, not a single layers model'
      : 'student not saved: the run handed over no student';
  }
  const student = await tf.loadLayersModel(tf.io.fromMemory(kept.artifacts));
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
