/**
 * A student's files in memory: model.json (tfjs's layers-model format: topology and weights
 * manifest), the weight shards, card.json and README.md. No Node imports: the Node store
 * (store.ts) writes them to a folder, the browser participant page offers them as a download.
 */
import * as tf from '@tensorflow/tfjs';
import { cardReadme, CARD_FORMAT, type ModelCard, type Provenance } from './card.js';
import { quantizeWeights, type Quantization } from './quantize.js';

/** tfjs's usual shard size (tfjs-converter and `model.save` to files): 4 MiB. */
const SHARD_BYTES = 4 * 1024 * 1024;
export const MODEL_JSON = 'model.json';
export const CARD_JSON = 'card.json';

/** The facts a caller knows about a student; the card adds the model, the weights and the code. */
export type CardFacts = Omit<ModelCard, 'format' | 'output' | 'model' | 'weights' | 'provenance'> & { architecture: string; backend: string };

export interface ModelArtifacts {
  modelTopology: object;
  weightSpecs: tf.io.WeightsManifestEntry[];
  weightData: ArrayBuffer;
}

/**
 * The model's topology and weights exactly as `model.save` hands them to an IO handler (the
 * weights' original names, shapes and dtypes, their bytes in order), read synchronously: a
 * checkpoint taken between two training steps is one consistent snapshot.
 */
export function modelArtifacts(model: tf.LayersModel): ModelArtifacts {
  const weights = model.weights;
  const values = model.getWeights();
  const weightSpecs = weights.map((w, i): tf.io.WeightsManifestEntry => ({ name: w.originalName, shape: values[i]!.shape, dtype: values[i]!.dtype as 'float32' | 'int32' }));
  const parts = values.map((v, i) => {
    if (v.dtype !== 'float32' && v.dtype !== 'int32') throw new Error(`weight ${weights[i]!.originalName}: dtype ${v.dtype} cannot be saved`);
    const data = v.dataSync() as Float32Array | Int32Array;
    return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  });
  const weightData = new Uint8Array(parts.reduce((a, p) => a + p.byteLength, 0));
  let offset = 0;
  for (const p of parts) {
    weightData.set(p, offset);
    offset += p.byteLength;
  }
  return { modelTopology: model.toJSON(null, false) as object, weightSpecs, weightData: weightData.buffer };
}

function layerSummary(model: tf.LayersModel): string[] {
  return model.layers.map((layer) => {
    const shape = layer.outputShape;
    const dims = Array.isArray(shape[0]) ? (shape as number[][]).map((s) => `[${s.slice(1).join(',')}]`).join('+') : `[${(shape as number[]).slice(1).join(',')}]`;
    return `${layer.getClassName()}${dims}`;
  });
}

/** The card of a model from what the caller knows and where the code comes from; weights are filled in by studentFiles. */
export function cardFor(model: tf.LayersModel, facts: CardFacts, code: Omit<Provenance, 'backend' | 'createdAt'>): ModelCard {
  const { architecture, backend, ...rest } = facts;
  return {
    format: CARD_FORMAT,
    ...rest,
    output: 'logits',
    model: { architecture, parameters: model.countParams(), layers: layerSummary(model) },
    weights: { dtype: 'float32', bytes: 0, files: {} },
    provenance: { ...code, backend, createdAt: new Date().toISOString() },
  };
}

export interface StudentFiles {
  /** File name → bytes, model.json and the weight shards first. */
  files: Map<string, Uint8Array>;
  card?: ModelCard;
  weightBytes: number;
}

/**
 * The files of a student folder, quantising first when asked; the card's weights entry gets
 * the dtype, the bytes and, given a hash function, each shard's digest.
 */
export function studentFiles(
  artifacts: ModelArtifacts,
  card: ModelCard | undefined,
  options: { quantize?: Quantization; hash?: (bytes: Uint8Array) => string; convertedBy: string },
): StudentFiles {
  let { weightSpecs, weightData } = artifacts;
  if (options.quantize !== undefined) ({ specs: weightSpecs, data: weightData } = quantizeWeights(weightSpecs, weightData, options.quantize));
  const bytes = new Uint8Array(weightData);
  const shards = Math.max(1, Math.ceil(bytes.byteLength / SHARD_BYTES));
  const weights = new Map<string, Uint8Array>();
  for (let k = 0; k < shards; k++) weights.set(`group1-shard${k + 1}of${shards}.bin`, bytes.subarray(k * SHARD_BYTES, Math.min(bytes.byteLength, (k + 1) * SHARD_BYTES)));
  const modelJson = {
    format: 'layers-model',
    generatedBy: `TensorFlow.js tfjs-layers v${tf.version_layers}`,
    convertedBy: options.convertedBy,
    modelTopology: artifacts.modelTopology,
    weightsManifest: [{ paths: [...weights.keys()], weights: weightSpecs }],
  };
  const files = new Map<string, Uint8Array>([[MODEL_JSON, new TextEncoder().encode(JSON.stringify(modelJson))], ...weights]);
  let finalCard: ModelCard | undefined;
  if (card !== undefined) {
    const hash = options.hash;
    finalCard = {
      ...card,
      weights: { dtype: options.quantize ?? 'float32', bytes: bytes.byteLength, files: hash === undefined ? {} : Object.fromEntries([...weights].map(([name, b]) => [name, `sha256:${hash(b)}`])) },
    };
    files.set(CARD_JSON, new TextEncoder().encode(`${JSON.stringify(finalCard, null, 2)}\n`));
    files.set('README.md', new TextEncoder().encode(cardReadme(finalCard)));
  }
  return { files, card: finalCard, weightBytes: bytes.byteLength };
}
