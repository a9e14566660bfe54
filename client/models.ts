/**
 * Student architectures. Every model outputs logits (no softmax layer): losses and soft
 * predictions apply the temperature themselves.
 */
import * as tf from '@tensorflow/tfjs';

export const MODELS = ['mlp', 'cnn'] as const;
export type ModelName = (typeof MODELS)[number];

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
  switch (spec.name) {
    case 'mlp':
      // 784-256-128-10, the MLP of the performance issue and a common MNIST baseline.
      // Flat features (CSV) go straight in; images are flattened first.
      if (spec.inputShape.length === 1) layers.push(tf.layers.dense({ inputShape: spec.inputShape, units: 256, activation: 'relu', kernelInitializer: init() }));
      else layers.push(tf.layers.flatten({ inputShape: spec.inputShape }), dense(256, 'relu'));
      layers.push(dense(128, 'relu'));
      break;
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
      throw new Error(`unknown model "${String(spec.name)}"; choose one of ${MODELS.join(', ')}`);
  }
  layers.push(dense(spec.numClasses, 'linear'));
  return tf.sequential({ layers });
}
