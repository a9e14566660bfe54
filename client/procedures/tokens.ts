/**
 * Per-token knowledge for language-model sites (reference-token-predictions): what DML's
 * procedure does when the session exchanges distributions at every position of shared reference
 * windows instead of one per reference sample (Anil et al. 2018 co-distilled language models
 * this way).
 *   share: softmax(z/T) at every position of the round's windows, [rows, positions, vocab];
 *   learn: each step α·token-CE on a batch of private text + (1 − α)·T²·masked-mean
 *          KL(target ‖ softmax(z/T)) on a batch of the round's windows (client/losses/tokens.ts).
 */
import * as tf from '@tensorflow/tfjs';
import { selectSequences, type TokenSequences } from '../data/text-sequences.js';
import { SeededRandom } from '../data/random.js';
import { tokenCrossEntropy, tokenKdLoss } from '../losses/tokens.js';
import type { TextSite } from '../lm/site.js';
import { Adam } from '../optimizer.js';
import type { TrainResult } from '../student.js';
import type { RoundContext, Share, Target } from './procedure.js';

/** Rows per forward pass when predicting on reference windows. */
const PREDICT_BATCH = 32;

export function textSite(context: RoundContext): TextSite {
  const site = context.data.text;
  if (site === undefined) throw new Error(`session ${context.info.session} exchanges per-token knowledge: this participant needs a language model and text (data.text)`);
  if (context.info.positions !== site.reference.context) {
    throw new Error(`session ${context.info.session} has windows of ${context.info.positions} positions; this participant's reference windows have ${site.reference.context}`);
  }
  if (site.knowledge !== undefined && context.info.async !== undefined) {
    throw new Error(`session ${context.info.session} runs ${context.info.algorithm} asynchronously; an API teacher (--teacher-api) answers round by round only`);
  }
  return site;
}

/** softmax(z/T) of `site.model` at every position of the given windows, [rows, positions, vocab] row-major. */
export function tokenPredictions(site: Pick<TextSite, 'model'>, windows: TokenSequences, temperature: number): Float32Array {
  const { vocab } = site.model.spec;
  const c = windows.context;
  const out = new Float32Array(windows.count * c * vocab);
  for (let start = 0; start < windows.count; start += PREDICT_BATCH) {
    const n = Math.min(PREDICT_BATCH, windows.count - start);
    const probs = tf.tidy(() => {
      const tokens = tf.tensor2d(windows.inputs.subarray(start * c, (start + n) * c), [n, c], 'int32');
      return tf.softmax(tf.div(site.model.logits(tokens), temperature));
    });
    out.set(probs.dataSync() as Float32Array, start * c * vocab);
    probs.dispose();
  }
  return out;
}

/** The round's reference windows, in the order of its ids. */
function roundWindows(context: RoundContext, site: TextSite): TokenSequences {
  return selectSequences(site.reference, context.round.referenceIds);
}

/** The site's softmax(z/T) on the round's windows; nothing when its knowledge comes from elsewhere (an API teacher) and that has none this round. */
export async function shareTokens(context: RoundContext): Promise<Share | undefined> {
  const site = textSite(context);
  const windows = roundWindows(context, site);
  const values = site.knowledge === undefined ? tokenPredictions(site, windows, context.info.temperature) : await site.knowledge(windows, context.info.temperature, context.round.round);
  if (values === undefined) return undefined;
  return { values, shape: [context.round.referenceIds.length, site.reference.context, site.model.spec.vocab] };
}

/** What one stretch of a site's training learns from: its private text (weight α) and, with a target, the peers' distributions on these windows. */
export interface TokenTraining {
  /** Reference windows the target covers, row for row, or undefined: private text alone. */
  windows?: TokenSequences;
  /** The peers' softmax(z/T) at every position of `windows`, [rows, positions, vocab]. */
  target?: Float32Array;
  /** For a top-k target read with sparseTail "student": 1 at the entries sent (Target.support), row for row with `target`. */
  support?: Uint8Array;
  alpha: number;
  temperature: number;
  batchSize: number;
  steps: number;
}

/** Trains a site's language model; keeps its Adam state from round to round (and from one exchange to the next). */
export class TokenLearner {
  private optimizer: Adam | undefined;
  private random: SeededRandom | undefined;

  /** α weights token-CE on private text, 1 − α the peers' target; a distiller learns with α = 0, from the target alone. */
  async learn(context: RoundContext, target: Target | null, alpha = context.info.alpha): Promise<TrainResult> {
    const site = textSite(context);
    if (target === null && alpha === 0) return { loss: 0, steps: 0, samples: 0, ms: 0 };
    const windows = roundWindows(context, site);
    return this.train(site, { windows, target: target?.values, support: target?.support, alpha, temperature: context.info.temperature, batchSize: context.batchSize, steps: site.steps });
  }

  /** `steps` Adam steps: each α·token-CE on a batch of private sequences + (1 − α)·T²·KL towards the target on a batch of its windows. */
  async train(site: TextSite, training: TokenTraining): Promise<TrainResult> {
    const { alpha, temperature, steps } = training;
    const target = training.target;
    const sent = training.support;
    const windows = training.windows;
    if (target !== undefined && windows === undefined) throw new Error('a per-token target needs the windows it was computed on');
    this.optimizer ??= new Adam(site.learningRate);
    this.random ??= new SeededRandom(site.seed);
    const random = this.random;
    const vocab = site.model.spec.vocab;
    const c = site.reference.context;
    const b = training.batchSize;
    const began = performance.now();
    let total = 0;
    for (let step = 0; step < steps; step++) {
      // Between steps the event loop runs: a site that trains for minutes in the coordinator's
      // process (simulations) or a page's must still answer the link's heartbeats.
      if (step > 0) await new Promise((resolve) => setTimeout(resolve, 0));
      const own = alpha === 0 ? undefined : selectSequences(site.train, Array.from({ length: b }, () => random.int(site.train.count)));
      const peers = target === undefined ? undefined : Array.from({ length: Math.min(b, windows!.count) }, () => random.int(windows!.count));
      const value = this.optimizer.minimize(() => {
        const logits = (x: TokenSequences) => tf.reshape(site.model.logits(tf.tensor2d(x.inputs, [x.count, c], 'int32')), [-1, vocab]) as tf.Tensor2D;
        const task = own === undefined ? undefined : tokenCrossEntropy(logits(own), tf.tensor1d(own.targets, 'int32'), tf.tensor1d(own.mask));
        if (peers === undefined) return task!;
        const batch = selectSequences(windows!, peers);
        const q = new Float32Array(peers.length * c * vocab);
        peers.forEach((row, i) => q.set(target!.subarray(row * c * vocab, (row + 1) * c * vocab), i * c * vocab));
        // A top-k target under sparseTail "student": its remaining mass is completed by this model's own distribution.
        const support = sent === undefined ? undefined : new Float32Array(q.length);
        if (support !== undefined) peers.forEach((row, i) => support.set(sent!.subarray(row * c * vocab, (row + 1) * c * vocab), i * c * vocab));
        const soft = tokenKdLoss(logits(batch), tf.tensor2d(q, [peers.length * c, vocab]), tf.tensor1d(batch.mask), temperature, support && tf.tensor2d(support, [peers.length * c, vocab]));
        return task === undefined ? soft : (tf.add(tf.mul(task, alpha), tf.mul(soft, 1 - alpha)) as tf.Scalar);
      }, site.model.variables);
      const loss = value.dataSync()[0]!;
      value.dispose();
      if (!Number.isFinite(loss)) throw new Error(`E_DIVERGED: the language model's loss is ${loss} at step ${step + 1}; lower the learning rate`);
      total += loss;
    }
    return { loss: steps === 0 ? 0 : total / steps, steps, samples: steps * b, ms: performance.now() - began };
  }
}
