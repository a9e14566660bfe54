/**
 * Hostile participants, for robustness experiments only: they run the honest procedure (train,
 * predict, report) and rewrite what they upload through the participant's upload hook (the
 * same hook point as differential privacy). Every attack keeps the upload valid on the wire —
 * the same shape and, for probabilities, rows on the simplex — since the coordinator would
 * simply refuse anything else, and a refused upload poisons nothing.
 *
 * For probability uploads (`reference-predictions`, softmax(z/T) per reference sample):
 *   - `random`:  every row replaced by a uniform draw from the simplex (Dirichlet(1, …, 1),
 *                as normalised Exp(1) variates);
 *   - `flipped`: the label permuted, class c → (c + 1) mod C: p'_{(c+1) mod C} = p_c, so the
 *                participant is as confident as before, about the wrong class;
 *   - `scaled`:  the logits scaled by a factor s: softmax(s·z/T) = p^s / Σ_k p_k^s, computed
 *                from p as exp(s·(ln p − ln max p)) normalised. An over-sharpened (nearly
 *                one-hot) softmax that stays on the simplex and keeps the argmax: it pushes
 *                the participant's own mistakes with full confidence. Against honest peers
 *                sharing soft softmax(z/T) at T > 1 it is not mild: a few one-hot votes
 *                outweigh many flat ones in a mean (experiments/poisoning/RESULTS.md).
 * For logit uploads (`reference-logits`, `class-logits`): `random` draws N(0, s²) with s the
 * standard deviation of the honest values (same scale, so not trivially spotted); `flipped`
 * permutes the class axis the same way; `scaled` multiplies every value by s — the unbounded
 * version of the attack. Weights (FedAvg) are not attacked here.
 */
import { SeededRandom } from '../client/data/random.js';
import type { Share, UploadContext, UploadHook } from '../client/procedures/procedure.js';

export const ATTACK_KINDS = ['random', 'flipped', 'scaled'] as const;
export type AttackKind = (typeof ATTACK_KINDS)[number];

/** The factor `scaled` multiplies logits by when the config gives none. */
export const DEFAULT_ATTACK_SCALE = 100;

export interface AttackSpec {
  kind: AttackKind;
  /** How many of the participants are hostile (0: a clean run). */
  participants: number;
  /** The logit factor of `scaled` [DEFAULT_ATTACK_SCALE]. */
  scale?: number;
}

/**
 * Which participants are hostile: the first f of a seeded permutation of 0…n−1, so that the
 * hostile set does not depend on the partition order, and the sets for f = 2 and f = 3 are
 * nested (the honest participants of the larger attack are honest in the smaller one too).
 * Returned in increasing order.
 */
export function hostileParticipants(n: number, f: number, seed: number): number[] {
  if (!Number.isInteger(f) || f < 0 || f >= n) throw new RangeError(`attack.participants: must be an integer in [0, ${n - 1}] so that one participant stays honest (got ${f})`);
  // An odd constant keeps this stream apart from the partition's, which uses the seed itself.
  const order = new SeededRandom((seed ^ 0x9e3779b9) >>> 0).shuffle(Array.from({ length: n }, (_, i) => i));
  return order.slice(0, f).sort((a, b) => a - b);
}

/** The attacked copy of `values` ([rows, C] row-major); `values` itself is left as it was. */
export function attackValues(kind: AttackKind, values: Float32Array, context: UploadContext, random: SeededRandom, scale = DEFAULT_ATTACK_SCALE): Float32Array {
  const C = context.numClasses;
  if (context.kind === 'weights') throw new Error('attack: weights uploads (FedAvg) are not attacked; choose a prediction-based algorithm');
  if (values.length % C !== 0) throw new RangeError(`attack: ${values.length} values are not whole rows of ${C} classes`);
  const probabilities = context.kind === 'reference-predictions';
  const out = new Float32Array(values.length);
  switch (kind) {
    case 'flipped':
      for (let start = 0; start < values.length; start += C) for (let c = 0; c < C; c++) out[start + ((c + 1) % C)] = values[start + c]!;
      return out;
    case 'random': {
      if (probabilities) {
        for (let start = 0; start < values.length; start += C) {
          let sum = 0;
          for (let c = 0; c < C; c++) sum += out[start + c] = -Math.log(1 - random.next());
          for (let c = 0; c < C; c++) out[start + c] = out[start + c]! / sum;
        }
        return out;
      }
      let mean = 0;
      for (const v of values) mean += v / values.length;
      let variance = 0;
      for (const v of values) variance += (v - mean) ** 2 / values.length;
      const sd = Math.sqrt(variance) || 1;
      for (let i = 0; i < out.length; i++) out[i] = sd * random.normal();
      return out;
    }
    case 'scaled':
      if (!probabilities) {
        for (let i = 0; i < out.length; i++) out[i] = scale * values[i]!;
        return out;
      }
      for (let start = 0; start < values.length; start += C) {
        let max = 0;
        for (let c = 0; c < C; c++) max = Math.max(max, values[start + c]!);
        let sum = 0;
        // p = 0 stays 0 (exp(s·−∞)); the largest entry becomes exp(0) = 1 before normalising.
        for (let c = 0; c < C; c++) {
          const p = values[start + c]!;
          sum += out[start + c] = p > 0 ? Math.exp(scale * (Math.log(p) - Math.log(max))) : 0;
        }
        for (let c = 0; c < C; c++) out[start + c] = out[start + c]! / sum;
      }
      return out;
  }
}

/** The upload hook of one hostile participant; its randomness is seeded, so runs repeat. */
export function attackHook(spec: Pick<AttackSpec, 'kind' | 'scale'>, seed: number): UploadHook {
  const random = new SeededRandom(seed);
  return {
    transform(share: Share, context: UploadContext): Share {
      const { records: _, ...rest } = share;
      return { ...rest, values: attackValues(spec.kind, share.values, context, random, spec.scale) };
    },
  };
}
