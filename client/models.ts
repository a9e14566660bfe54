/**
 * Every model of the client, one room:
 *  - the named students of federated sessions (`mlp`, `cnn`: createModel, sequential, logits only);
 *  - the layer-list architectures of local distillation (`d512,d512`, `c8,p2,c16,p2,d64`, …,
 *    with `mlp` and `cnn` as aliases for the same networks) and ONE's multi-branch student;
 *  - feature models, which return the logits together with named intermediate activations for
 *    the feature-based loss terms (client/losses: FitNets, AT, NST): built from an architecture
 *    (buildFeatureModel), or a view of an existing sequential student sharing its weights
 *    (featureView), which is how a federated participant exposes its features.
 * Every model outputs logits (no softmax layer): losses and soft predictions apply the
 * temperature themselves.
 *
 * Feature names count layers of each type from 1: `conv1`, `pool1`, `dense1`, … — the
 * activation after the layer's ReLU (convolutions and dense layers) or after pooling; the last
 * dense layer is the logits, not a feature. In a ONE model the branch layers are named
 * `b0.dense1`, `b1.dense1`, …, and the gate is `gate`.
 */
import * as tf from '@tensorflow/tfjs';
import { gatedEnsemble } from './losses/features.js';
import { DistillError, type ModelOutputs } from './losses/types.js';

// ---------------------------------------------------------------- named students (federated)

export const MODELS = ['mlp', 'cnn'] as const;
/** `mlp` (784-256-128-C), `cnn`, or an MLP with its hidden sizes: `mlp:100` (784-100-C), `mlp:512,256`. */
export type ModelName = (typeof MODELS)[number] | `mlp:${string}`;

/** Hidden layer sizes of the default `mlp`. */
const MLP_HIDDEN = [256, 128];

/** The hidden sizes of an MLP name, or undefined for a name that is not an MLP's (cnn) or not a model at all. */
function mlpHidden(name: string): number[] | undefined {
  if (name === 'mlp') return MLP_HIDDEN;
  const sizes = /^mlp:(\d{1,5}(?:,\d{1,5})*)$/.exec(name)?.[1];
  if (sizes === undefined) return undefined;
  const hidden = sizes.split(',').map(Number);
  return hidden.every((units) => units >= 1) ? hidden : undefined;
}

/** Whether `name` names a model createModel builds. */
export function isModelName(name: string): name is ModelName {
  return name === 'cnn' || mlpHidden(name) !== undefined;
}

/** What a model name may be, for messages and --help. */
export const MODEL_NAMES_HELP = 'mlp | mlp:H1[,H2…] | cnn';

export interface ModelSpec {
  name: ModelName;
  /** Per-sample shape, e.g. [28, 28, 1]. */
  inputShape: number[];
  numClasses: number;
  /** Seeds the weight initialisers, so a run can be repeated exactly. */
  seed: number;
}

export function createModel(spec: ModelSpec): tf.LayersModel {
  let next = spec.seed;
  const init = () => tf.initializers.glorotUniform({ seed: next++ });
  const dense = (units: number, activation: 'relu' | 'linear') =>
    tf.layers.dense({ units, activation, kernelInitializer: init() });
  const layers: tf.layers.Layer[] = [];
  const hidden = mlpHidden(spec.name);
  if (hidden !== undefined) {
    // mlp: 784-256-128-10, the MLP of the performance issue and a common MNIST baseline;
    // mlp:100 is the field's benchmark 784-100-10. Flat features (CSV) go straight in; images are flattened first.
    const [first, ...rest] = hidden as [number, ...number[]];
    if (spec.inputShape.length === 1) layers.push(tf.layers.dense({ inputShape: spec.inputShape, units: first, activation: 'relu', kernelInitializer: init() }));
    else layers.push(tf.layers.flatten({ inputShape: spec.inputShape }), dense(first, 'relu'));
    for (const units of rest) layers.push(dense(units, 'relu'));
  } else switch (spec.name) {
    case 'cnn':
      // Two 5×5 convolutions with max-pooling (LeNet-like); stride-1 convolutions keep to the
      // wasm backend's native filter gradient (see client/kernels).
      layers.push(
        tf.layers.conv2d({ inputShape: spec.inputShape, filters: 8, kernelSize: 5, activation: 'relu', kernelInitializer: init() }),
        tf.layers.maxPooling2d({ poolSize: 2 }),
        tf.layers.conv2d({ filters: 16, kernelSize: 5, activation: 'relu', kernelInitializer: init() }),
        tf.layers.maxPooling2d({ poolSize: 2 }),
        tf.layers.flatten(),
        dense(64, 'relu'),
      );
      break;
    default:
      throw new Error(`unknown model "${String(spec.name)}"; choose ${MODEL_NAMES_HELP}`);
  }
  layers.push(dense(spec.numClasses, 'linear'));
  return tf.sequential({ layers });
}

// ---------------------------------------------------------------- architectures (layer lists)

/**
 * Architectures, written as short layer lists, written as short layer lists so that a teacher and a
 * student can be named on a command line or in a config file:
 *
 *   d512,d512            784-512-512-10 MLP (dense + ReLU layers; the logits layer is implicit)
 *   c8,p2,c16,p2,d64     5×5 convolutions with 8 and 16 filters, 2×2 max-pooling, dense 64
 *   c8k3                 a 3×3 convolution with 8 filters
 *
 * plus the aliases `mlp` and `cnn` (createModel's students) for the same networks. Convolutions are
 * stride 1 and 'valid' (the stride-1 filter gradient is the one the wasm backend computes
 * natively, see client/kernels). ONE's multi-branch student is a plain list split in two: the
 * first `sharedLayers` layers are shared, the rest are copied into each branch.
 */
export type LayerSpec =
  | { type: 'dense'; units: number }
  | { type: 'conv'; filters: number; kernelSize: number }
  | { type: 'pool'; size: number };

export interface PlainArchitecture {
  kind: 'plain';
  layers: LayerSpec[];
}

/** The ONE gate: FC + softmax, or FC + BatchNorm + ReLU + softmax as in the paper and its code. */
export type GateKind = 'fc' | 'fc-bn-relu';

export interface OneArchitecture {
  kind: 'one';
  shared: LayerSpec[];
  /** Layers of each branch, before its logits layer. */
  branch: LayerSpec[];
  branches: number;
  gate: GateKind;
}

export type Architecture = PlainArchitecture | OneArchitecture;

/** Named networks; `mlp` and `cnn` are createModel's students. */
export const ARCHITECTURE_ALIASES: Readonly<Record<string, string>> = {
  mlp: 'd256,d128',
  cnn: 'c8,p2,c16,p2,d64',
};

const TOKEN = /^(?:d(\d+)|c(\d+)(?:k(\d+))?|p(\d+))$/;

/** Parses `d512,d512`, `c8,p2,c16,p2,d64` or an alias into layers. */
export function parseLayers(text: string): LayerSpec[] {
  const source = ARCHITECTURE_ALIASES[text] ?? text;
  const tokens = source.split(',').map((t) => t.trim()).filter((t) => t.length > 0);
  if (tokens.length === 0) throw new DistillError('E_CONFIG', `architecture "${text}" has no layers; write e.g. d512,d512 or c8,p2,c16,p2,d64`);
  return tokens.map((token) => {
    const m = TOKEN.exec(token);
    const positive = (raw: string | undefined) => {
      const v = Number(raw);
      if (!Number.isInteger(v) || v < 1) throw new DistillError('E_CONFIG', `architecture "${text}": "${token}" needs a positive size`);
      return v;
    };
    if (m === null) {
      throw new DistillError('E_CONFIG', `architecture "${text}": cannot read "${token}"; layers are dN (dense), cN or cNkK (conv, K×K, default 5), pN (max-pool N×N)`);
    }
    if (m[1] !== undefined) return { type: 'dense', units: positive(m[1]) };
    if (m[2] !== undefined) return { type: 'conv', filters: positive(m[2]), kernelSize: m[3] === undefined ? 5 : positive(m[3]) };
    return { type: 'pool', size: positive(m[4]) };
  });
}

export function formatLayers(layers: readonly LayerSpec[]): string {
  return layers
    .map((l) => (l.type === 'dense' ? `d${l.units}` : l.type === 'conv' ? `c${l.filters}${l.kernelSize === 5 ? '' : `k${l.kernelSize}`}` : `p${l.size}`))
    .join(',');
}

export function plainArchitecture(text: string): PlainArchitecture {
  return { kind: 'plain', layers: parseLayers(text) };
}

/**
 * ONE over a plain layer list: the first `sharedLayers` layers shared (default: all but the
 * last), the rest in each of `branches` branches.
 */
export function oneArchitecture(text: string, branches: number, sharedLayers?: number, gate: GateKind = 'fc-bn-relu'): OneArchitecture {
  const layers = parseLayers(text);
  const shared = sharedLayers ?? layers.length - 1;
  if (!Number.isInteger(branches) || branches < 2) throw new DistillError('E_CONFIG', `ONE needs at least 2 branches; got ${branches}`);
  if (!Number.isInteger(shared) || shared < 1 || shared > layers.length) {
    throw new DistillError('E_CONFIG', `ONE over "${text}": shared layers must be an integer in [1, ${layers.length}]; got ${shared}`);
  }
  return { kind: 'one', shared: layers.slice(0, shared), branch: layers.slice(shared), branches, gate };
}

export function describeArchitecture(a: Architecture): string {
  if (a.kind === 'plain') return formatLayers(a.layers);
  const branch = a.branch.length > 0 ? `${formatLayers(a.branch)},logits` : 'logits';
  return `${formatLayers(a.shared)} → ${a.branches} × [${branch}], gate ${a.gate}`;
}

// ---------------------------------------------------------------- feature models

export interface FeatureModelSpec {
  architecture: Architecture;
  /** Per-sample input shape, e.g. [28, 28, 1]. */
  inputShape: number[];
  numClasses: number;
  /** Seeds the weight initialisers, so a run can be repeated exactly (NaN for a featureView, which builds no weights). */
  seed: number;
}

export class FeatureModel {
  readonly model: tf.LayersModel;
  readonly spec: FeatureModelSpec;
  /** Names of the model's outputs, in order: `logits` (or the branches and `gate`), then the features. */
  readonly outputNames: readonly string[];
  /** Output shapes without the batch axis, by name. */
  readonly outputShapes: Readonly<Record<string, number[]>>;

  /** False for a featureView: the weights belong to the model it views, and its owner disposes them. */
  private readonly ownsWeights: boolean;

  constructor(model: tf.LayersModel, spec: FeatureModelSpec, outputNames: string[], ownsWeights = true) {
    this.model = model;
    this.ownsWeights = ownsWeights;
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
    if (this.ownsWeights) this.model.dispose();
  }
}

/**
 * The features of an existing sequential student (createModel's, or any stack of dense, conv2d,
 * maxPooling2d and flatten layers ending in the logits layer), named as buildFeatureModel names
 * them: a second functional model over the same layers, so it trains the same variables.
 */
export function featureView(model: tf.LayersModel, numClasses: number): FeatureModel {
  const layers: LayerSpec[] = [];
  const named: Array<[string, tf.SymbolicTensor]> = [];
  const counts = { dense: 0, conv: 0, pool: 0 };
  const last = model.layers[model.layers.length - 1];
  for (const layer of model.layers) {
    if (layer === last) break;
    const config = layer.getConfig();
    let spec: LayerSpec;
    switch (layer.getClassName()) {
      case 'Flatten':
        continue;
      case 'Dense':
        spec = { type: 'dense', units: config.units as number };
        break;
      case 'Conv2D':
        spec = { type: 'conv', filters: config.filters as number, kernelSize: (config.kernelSize as number[])[0]! };
        break;
      case 'MaxPooling2D':
        spec = { type: 'pool', size: (config.poolSize as number[])[0]! };
        break;
      default:
        throw new DistillError('E_CONFIG', `featureView: layer "${layer.name}" is a ${layer.getClassName()}; the feature names cover dense, conv2d, maxPooling2d and flatten layers`);
    }
    layers.push(spec);
    named.push([`${spec.type}${++counts[spec.type]}`, layer.output as tf.SymbolicTensor]);
  }
  const inputShape = model.inputs[0]!.shape.slice(1) as number[];
  const view = tf.model({ inputs: model.inputs, outputs: [model.outputs[0]!, ...named.map(([, t]) => t)] });
  return new FeatureModel(view, { architecture: { kind: 'plain', layers }, inputShape, numClasses, seed: Number.NaN }, ['logits', ...named.map(([n]) => n)], false);
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
