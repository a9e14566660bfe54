/**
 * The model card saved beside a student (card.json, and README.md for people): what the model
 * classifies, what input it takes and how that input was scaled, how it was trained, how well
 * it did, and where it came from — enough to use the model without codistill and to trace it
 * back to a run. No Node imports: the browser participant page writes cards too.
 */
import type { Quantization } from './quantize.js';

export const CARD_FORMAT = 'codistill-model-card/1';

/** How the training features were made from the numbers in the site's files. */
export interface Preprocessing {
  /**
   * u8 values (IDX images, the MNIST family) were divided by this before training: 255 puts
   * pixels in [0, 1]. Values of other files (CSV, float IDX) were used as they are.
   */
  u8Divisor: number;
  /** The range of the training features after that scaling, to spot data scaled otherwise. */
  featureRange: [number, number];
  description: string;
}

export interface ModelCard {
  format: typeof CARD_FORMAT;
  task: 'classification';
  /** Class k is output k; names when the training data had string labels. */
  classes: { count: number; names?: string[] };
  input: { shape: number[]; dtype: 'float32'; preprocessing: Preprocessing };
  output: 'logits';
  model: { architecture: string; parameters: number; layers: string[] };
  weights: { dtype: 'float32' | Quantization; bytes: number; files: Record<string, string> };
  training: {
    session?: string;
    participant?: string;
    algorithm?: string;
    role?: string;
    rounds?: number;
    epochs?: number;
    batchSize?: number;
    learningRate?: number;
    trainSamples?: number;
    data: { source: string; hash: string };
    seed?: number;
    /** Absent for a finished run; e.g. "checkpoint after round 5" for a checkpoint. */
    status?: string;
  };
  /** Accuracy on the site's own validation split and, in simulations, on the held-out test set. */
  metrics: { validation?: { accuracy: number; samples: number }; heldOut?: { accuracy: number; samples: number } };
  provenance: Provenance;
  /** What happened to the model after training, e.g. a quantised export. */
  derivedFrom?: { path: string; weights: string; note: string };
}

/** The preprocessing record of training features: u8Divisor as the loader applied it. */
export function preprocessingOf(x: Float32Array, u8Divisor: number, source: string): Preprocessing {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of x) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const description = u8Divisor === 1
    ? `${source}: feature values used as they are (no scaling); training features lay in [${lo}, ${hi}]`
    : `${source}: u8 values (pixels 0–255) divided by ${u8Divisor}, so features lie in [${lo}, ${hi}]; values of CSV or float files are used as they are`;
  return { u8Divisor, featureRange: [lo === Infinity ? 0 : lo, hi === -Infinity ? 0 : hi], description };
}

/** What made the model: codistill and tfjs versions, the git commit when known, the backend and runtime. */
export interface Provenance {
  codistill: string;
  commit: string | null;
  dirty: boolean | null;
  tfjs: string;
  backend: string;
  /** `node v20.…`, or `browser: <user agent>`. */
  runtime: string;
  createdAt: string;
}

const pct = (x: number) => `${(100 * x).toFixed(2)}%`;

/** README.md beside card.json: the card in words, and how to load the model with plain tfjs. */
export function cardReadme(card: ModelCard): string {
  const t = card.training;
  const m = card.metrics;
  const lines = [
    `# codistill student${t.participant === undefined ? '' : ` ${t.participant}`}${t.session === undefined ? '' : ` (session ${t.session})`}`,
    '',
    `A tfjs layers model (\`model.json\` + weights) that classifies inputs of shape [${card.input.shape.join(', ')}] into ${card.classes.count} classes` +
      `${card.classes.names === undefined ? ` (0–${card.classes.count - 1})` : `: ${card.classes.names.join(', ')}`}. It outputs **logits**: apply softmax for probabilities.`,
    '',
    `- Input: float32 [batch, ${card.input.shape.join(', ')}]. Preprocessing: ${card.input.preprocessing.description}.`,
    `- Architecture: ${card.model.architecture}, ${card.model.parameters.toLocaleString('en-US')} parameters (${card.model.layers.join(' → ')}).`,
    `- Weights: ${card.weights.dtype}, ${card.weights.bytes.toLocaleString('en-US')} bytes.`,
    `- Training${t.status === undefined ? '' : ` (${t.status})`}: ${[t.algorithm === undefined ? undefined : `algorithm ${t.algorithm}`, t.rounds === undefined ? undefined : `${t.rounds} rounds`, t.role, t.epochs === undefined ? undefined : `${t.epochs} local epoch${t.epochs === 1 ? '' : 's'} per round`, t.trainSamples === undefined ? undefined : `${t.trainSamples} private samples`, t.seed === undefined ? undefined : `seed ${t.seed}`].filter((s) => s !== undefined).join(', ')}.`,
    `- Data: ${t.data.source} (hash ${t.data.hash}).`,
    ...(m.validation === undefined ? [] : [`- Validation accuracy (this site's own held-out split, ${m.validation.samples} samples): ${pct(m.validation.accuracy)}.`]),
    ...(m.heldOut === undefined ? [] : [`- Held-out test accuracy (${m.heldOut.samples} samples): ${pct(m.heldOut.accuracy)}.`]),
    `- Made by codistill ${card.provenance.codistill}${card.provenance.commit === null ? '' : ` (commit ${card.provenance.commit.slice(0, 12)}${card.provenance.dirty ? ', uncommitted changes' : ''})`}, tfjs ${card.provenance.tfjs} on ${card.provenance.backend}, ${card.provenance.createdAt}.`,
    ...(card.derivedFrom === undefined ? [] : [`- ${card.derivedFrom.note}`]),
    '',
    'Load it in any tfjs program (browser: `tf.loadLayersModel(\'https://…/model.json\')`; Node with tfjs-node: `tf.loadLayersModel(\'file://…/model.json\')`),',
    'or with codistill: `codistill predict --model DIR --data FILE`, `codistill evaluate --model DIR --data FILE`.',
    '',
  ];
  return lines.join('\n');
}
