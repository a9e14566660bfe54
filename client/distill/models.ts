/**
 * Feature models: tfjs functional models (tf.model with several outputs) that return their
 * logits together with named intermediate activations, which the feature-based losses read.
 * client/models.ts builds sequential students with the logits alone; the same layer lists are
 * available here as `mlp` and `cnn` (architecture.ts).
 *
 * Feature names count layers of each type from 1: `conv1`, `pool1`, `dense1`, … — the
 * activation after the layer's ReLU (convolutions and dense layers) or after pooling. In a ONE
 * model the branch layers are named `b0.dense1`, `b1.dense1`, …, and the gate is `gate`.
 */
import * as tf from '@tensorflow/tfjs';
import { describeArchitecture, type Architecture, type LayerSpec } from './architecture.js';
import { gatedEnsemble } from './terms.js';
import type { ModelOutputs } from './types.js';

export interface FeatureModelSpec {
  architecture: Architecture;
  /** Per-sample input shape, e.g. [28, 28, 1]. */
  inputShape: number[];
  numClasses: number;
  /** Seeds the weight initialisers, so a run can be repeated exactly. */
  seed: number;
}

export class FeatureModel {
  readonly model: tf.LayersModel;
  readonly spec: FeatureModelSpec;
  /** Names of the model's outputs, in order: `logits` (or the branches and `gate`), then the features. */
  readonly outputNames: readonly string[];
  /** Output shapes without the batch axis, by name. */
  readonly outputShapes: Readonly<Record<string, number[]>>;

  constructor(model: tf.LayersModel, spec: FeatureModelSpec, outputNames: string[]) {
    this.model = model;
    this.spec = spec;
    this.outputNames = outputNames;
    const shapes: Record<string, number[]> = {};
    model.outputs.forEach((o, i) => (shapes[outputNames[i]!] = o.shape.slice(1) as number[]));
    this.outputShapes = shapes;
  }

  get description(): string {
    return describeArchitecture(this.spec.architecture);
  }

  get parameterCount(): number {
    return this.model.countParams();
  }

  /** The model's trainable variables (for an optimizer's explicit var list). */
  trainableVariables(): tf.Variable[] {
    return this.model.trainableWeights.map((w) => w.read() as tf.Variable);
  }

  /**
   * One forward pass. `training` switches BatchNorm (ONE's gate) to batch statistics and lets
   * it update its moving averages, as in tfjs' own fit().
   */
  forward(x: tf.Tensor, training: boolean): ModelOutputs {
    const raw = this.model.apply(x, { training });
    const outputs = Array.isArray(raw) ? raw : [raw];
    const byName: Record<string, tf.Tensor> = {};
    this.outputNames.forEach((name, i) => (byName[name] = outputs[i] as tf.Tensor));
    const features: Record<string, tf.Tensor> = {};
    for (const name of this.outputNames) if (name !== 'logits' && name !== 'gate' && !/^branch\d+$/.test(name)) features[name] = byName[name]!;
    const architecture = this.spec.architecture;
    if (architecture.kind === 'plain') return { logits: byName.logits as tf.Tensor2D, features };
    const branches = Array.from({ length: architecture.branches }, (_, i) => byName[`branch${i}`] as tf.Tensor2D);
    const gate = byName.gate as tf.Tensor2D;
    return { logits: gatedEnsemble(branches, gate), features, branches, gate };
  }

  dispose(): void {
    this.model.dispose();
  }
}

/** Builds the functional model for a spec; equal specs give equal initial weights. */
export function buildFeatureModel(spec: FeatureModelSpec): FeatureModel {
  let nextSeed = spec.seed;
  const kernelInitializer = () => tf.initializers.glorotUniform({ seed: nextSeed++ });
  const input = tf.input({ shape: spec.inputShape });
  const named: Array<[string, tf.SymbolicTensor]> = [];

  /** Applies a layer list; records each layer's output as a feature under `prefix` + its name. */
  const stack = (from: tf.SymbolicTensor, layers: readonly LayerSpec[], prefix: string): tf.SymbolicTensor => {
    const counts = { dense: 0, conv: 0, pool: 0 };
    let x = from;
    for (const layer of layers) {
      // The layer is named like its feature, so tests and users can find it with model.getLayer().
      const name = `${prefix}${layer.type}${++counts[layer.type]}`;
      switch (layer.type) {
        case 'dense':
          if (x.shape.length > 2) x = tf.layers.flatten().apply(x) as tf.SymbolicTensor;
          x = tf.layers.dense({ name, units: layer.units, activation: 'relu', kernelInitializer: kernelInitializer() }).apply(x) as tf.SymbolicTensor;
          break;
        case 'conv':
          x = tf.layers
            .conv2d({ name, filters: layer.filters, kernelSize: layer.kernelSize, activation: 'relu', kernelInitializer: kernelInitializer() })
            .apply(x) as tf.SymbolicTensor;
          break;
        case 'pool':
          x = tf.layers.maxPooling2d({ name, poolSize: layer.size }).apply(x) as tf.SymbolicTensor;
          break;
      }
      named.push([name, x]);
    }
    return x;
  };
  const logitsOf = (x: tf.SymbolicTensor, name: string): tf.SymbolicTensor => {
    const flat = x.shape.length > 2 ? (tf.layers.flatten().apply(x) as tf.SymbolicTensor) : x;
    return tf.layers.dense({ name, units: spec.numClasses, activation: 'linear', kernelInitializer: kernelInitializer() }).apply(flat) as tf.SymbolicTensor;
  };

  const architecture = spec.architecture;
  const heads: Array<[string, tf.SymbolicTensor]> = [];
  if (architecture.kind === 'plain') {
    heads.push(['logits', logitsOf(stack(input, architecture.layers, ''), 'logits')]);
  } else {
    const shared = stack(input, architecture.shared, '');
    for (let b = 0; b < architecture.branches; b++) heads.push([`branch${b}`, logitsOf(stack(shared, architecture.branch, `b${b}.`), `branch${b}`)]);
    // The gate reads the shared features, globally average-pooled when spatial (as the
    // authors' code does with AvgPool2d over the whole map).
    let g = shared.shape.length > 2 ? (tf.layers.globalAveragePooling2d({}).apply(shared) as tf.SymbolicTensor) : shared;
    g = tf.layers.dense({ name: 'gate_fc', units: architecture.branches, kernelInitializer: kernelInitializer() }).apply(g) as tf.SymbolicTensor;
    if (architecture.gate === 'fc-bn-relu') {
      g = tf.layers.batchNormalization({ name: 'gate_bn' }).apply(g) as tf.SymbolicTensor;
      g = tf.layers.reLU({ name: 'gate_relu' }).apply(g) as tf.SymbolicTensor;
    }
    heads.push(['gate', tf.layers.softmax({ name: 'gate' }).apply(g) as tf.SymbolicTensor]);
  }
  const outputs = [...heads, ...named];
  const model = tf.model({ inputs: input, outputs: outputs.map(([, t]) => t) });
  return new FeatureModel(model, spec, outputs.map(([name]) => name));
}
