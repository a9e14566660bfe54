/**
 * Optional differential privacy for what a participant uploads: per-vector L2 clipping to a
 * bound C, Gaussian noise of standard deviation σ = z·C on every coordinate, and an accountant
 * that composes the releases of every round.
 *
 * Accounting is in zero-concentrated DP (ρ-zCDP), Bun & Steinke 2016, "Concentrated
 * Differential Privacy: Simplifications, Extensions, and Lower Bounds", TCC:
 *   - the Gaussian mechanism with L2 sensitivity Δ and noise N(0, σ²·I) is ρ-zCDP with
 *     ρ = Δ² / (2σ²)                                              (Proposition 1.6);
 *   - releases compose by adding their ρ                          (Lemma 1.7 / 2.3);
 *   - ρ-zCDP implies (ε, δ)-DP for every δ > 0 with
 *     ε = ρ + 2·√(ρ · ln(1/δ))                                    (Proposition 1.3).
 * The conversion is the simple one from the paper; tighter ones exist (Canonne, Kamath &
 * Steinke 2020), so the ε reported here is an upper bound, never an underestimate.
 *
 * What is protected depends on the knowledge kind — and only these statements are claimed:
 *
 * - `class-logits` (FD): the upload is, per class c, the mean of the logit vectors of the n_c
 *   private samples labelled c. Each sample's logit vector is clipped to ‖·‖₂ ≤ C *before* the
 *   mean. Neighbouring data sets differ in the features of one private record with the same
 *   label (label-preserving replace-one): only the row of that record's class moves, by at most
 *   2C / n_c, so the release has Δ = max_c 2C / n_c over the classes held (n_c > 0). The
 *   per-class counts travel exactly (the coordinator needs them), so the labels and the class
 *   sizes are *not* protected, and adding or removing a record is not covered either.
 *   This holds for a given model: the logits are also a function of the private data through
 *   the student's training, which this module does not make private (that would need DP
 *   training, e.g. DP-SGD). So ε bounds what the uploaded class means reveal about a record
 *   beyond what the model already does; it is not record-level DP of the whole training run.
 *
 * - `reference-predictions` and `reference-logits` (DML, FedMD, co-distillation): the upload is
 *   the student's predictions on *public* reference samples. A private record affects them only
 *   through training, with no bound on how much, so this mechanism gives **no record-level DP
 *   of the training set**. What it bounds is what each released vector reveals at the clipping
 *   scale: neighbouring releases differ in the prediction for one reference sample in each
 *   round (one row replaced by any other row inside the clipping ball). For logits that row
 *   moves by at most 2C; for probabilities, which lie in the positive orthant with ‖p‖₂ ≤ 1,
 *   clipped rows a, b satisfy ‖a − b‖² = ‖a‖² + ‖b‖² − 2a·b ≤ 2·min(C, 1)², so Δ = √2·min(C, 1).
 *   Rows of other reference samples changing as well cost that many times more.
 *
 * After noise, probabilities leave the simplex (the coordinator refuses such rows), so each
 * noisy row is clamped at 0 and renormalised to sum 1 (uniform if nothing positive is left).
 * That is post-processing of the noisy release and changes no guarantee (Dwork & Roth 2014,
 * "The Algorithmic Foundations of Differential Privacy", Proposition 2.1; for zCDP, Bun &
 * Steinke 2016, Lemma 1.8).
 *
 * The noise comes from a SeededRandom, so a simulation is reproducible. That is deliberate and
 * fine for experiments; a deployment that relies on the guarantee must use an unpredictable
 * seed (the CLI draws one from the OS unless --privacy-seed is given), since an observer who
 * knows the seed can subtract the noise.
 */
import { SeededRandom } from './data/random.js';
import type { Share, UploadContext, UploadHook } from './procedures/procedure.js';

export interface PrivacySettings {
  /** C: the L2 bound each clipped vector (a prediction row, or one private sample's logits for FD) is scaled down to. */
  clip: number;
  /** z: the noise's standard deviation per coordinate is σ = z·C. */
  noiseMultiplier: number;
  /** The δ at which the spent ε is reported, in (0, 1). */
  delta: number;
  /** Seed of the noise; an unpredictable one when omitted. */
  seed?: number;
}

/** The privacy spent so far by one participant: its zCDP ρ and the (ε, δ) it implies. */
export interface PrivacySpent {
  epsilon: number;
  delta: number;
  rho: number;
  /** Noisy uploads made so far. */
  releases: number;
}

/** Refuses settings that would void the guarantee, naming the field. */
export function checkPrivacySettings(settings: PrivacySettings, field = 'privacy'): void {
  const rules: Array<[keyof PrivacySettings, boolean, string]> = [
    ['clip', Number.isFinite(settings.clip) && settings.clip > 0, 'must be a finite number > 0'],
    ['noiseMultiplier', Number.isFinite(settings.noiseMultiplier) && settings.noiseMultiplier > 0, 'must be a finite number > 0 (no noise is no privacy)'],
    ['delta', Number.isFinite(settings.delta) && settings.delta > 0 && settings.delta < 1, 'must lie in (0, 1)'],
    ['seed', settings.seed === undefined || (Number.isInteger(settings.seed) && settings.seed >= 0 && settings.seed <= 0xffffffff), 'must be an integer in [0, 2^32)'],
  ];
  for (const [key, ok, rule] of rules) if (!ok) throw new RangeError(`${field}.${key}: ${rule} (got ${String(settings[key])})`);
}

/** ρ of one Gaussian release: Δ² / (2σ²) (Bun & Steinke 2016, Proposition 1.6). */
export function gaussianRho(sensitivity: number, sigma: number): number {
  if (!(sensitivity >= 0) || !(sigma > 0)) throw new RangeError(`gaussianRho needs sensitivity ≥ 0 and σ > 0; got Δ = ${sensitivity}, σ = ${sigma}`);
  return (sensitivity * sensitivity) / (2 * sigma * sigma);
}

/** ε of ρ-zCDP at δ: ρ + 2√(ρ ln(1/δ)) (Bun & Steinke 2016, Proposition 1.3). */
export function zcdpEpsilon(rho: number, delta: number): number {
  if (!(rho >= 0) || !(delta > 0 && delta < 1)) throw new RangeError(`zcdpEpsilon needs ρ ≥ 0 and δ in (0, 1); got ρ = ${rho}, δ = ${delta}`);
  return rho + 2 * Math.sqrt(rho * Math.log(1 / delta));
}

/** Composes Gaussian releases in zCDP: their ρ add up. */
export class ZcdpAccountant {
  private total = 0;
  private count = 0;

  /** Records one Gaussian release; returns its ρ. */
  addGaussian(sensitivity: number, sigma: number): number {
    const rho = gaussianRho(sensitivity, sigma);
    this.total += rho;
    this.count++;
    return rho;
  }

  get rho(): number {
    return this.total;
  }

  get releases(): number {
    return this.count;
  }

  epsilon(delta: number): number {
    return zcdpEpsilon(this.total, delta);
  }
}

/**
 * Scales every row of a row-major [rows, width] array, in place, to L2 norm at most `clip`:
 * v ← v · min(1, C / ‖v‖₂) (the per-example clipping of Abadi et al. 2016, "Deep Learning with
 * Differential Privacy", CCS, Algorithm 1). Returns how many rows were scaled down.
 */
export function clipRows(values: Float32Array, width: number, clip: number): number {
  if (!Number.isInteger(width) || width < 1 || values.length % width !== 0) {
    throw new RangeError(`clipRows: ${values.length} values are not whole rows of ${width}`);
  }
  let clipped = 0;
  for (let start = 0; start < values.length; start += width) {
    let squares = 0;
    for (let k = start; k < start + width; k++) squares += values[k]! * values[k]!;
    const norm = Math.sqrt(squares);
    if (norm <= clip) continue;
    const factor = clip / norm;
    for (let k = start; k < start + width; k++) values[k] = values[k]! * factor;
    clipped++;
  }
  return clipped;
}

/** Adds N(0, σ²) to every value, in place, drawn from `random` in index order. */
export function addGaussianNoise(values: Float32Array, sigma: number, random: SeededRandom): void {
  for (let i = 0; i < values.length; i++) values[i] = values[i]! + sigma * random.normal();
}

/**
 * Post-processing back onto the simplex: every value clamped at 0, every row divided by its
 * sum; a row with nothing positive left becomes uniform (1/width).
 */
export function clampToSimplex(values: Float32Array, width: number): void {
  for (let start = 0; start < values.length; start += width) {
    let sum = 0;
    for (let k = start; k < start + width; k++) {
      if (!(values[k]! > 0)) values[k] = 0;
      sum += values[k]!;
    }
    for (let k = start; k < start + width; k++) values[k] = sum > 0 ? values[k]! / sum : 1 / width;
  }
}

/**
 * The Gaussian mechanism on a participant's uploads, with its accountant: one instance per
 * participant, for the whole session (the accountant must see every release).
 */
export class GaussianUploads implements UploadHook {
  private readonly accountant = new ZcdpAccountant();
  private readonly random: SeededRandom;
  readonly settings: Required<PrivacySettings>;

  constructor(settings: PrivacySettings) {
    checkPrivacySettings(settings);
    this.settings = { ...settings, seed: settings.seed ?? unpredictableSeed() };
    this.random = new SeededRandom(this.settings.seed);
  }

  get sigma(): number {
    return this.settings.noiseMultiplier * this.settings.clip;
  }

  /** Returns the noisy share to upload in place of `share` (which is left untouched) and records the release. */
  transform(share: Share, context: UploadContext): Share {
    const C = context.numClasses;
    const clip = this.settings.clip;
    const sigma = this.sigma;
    switch (context.kind) {
      case 'reference-predictions': {
        const values = Float32Array.from(share.values);
        clipRows(values, C, clip);
        addGaussianNoise(values, sigma, this.random);
        clampToSimplex(values, C);
        this.accountant.addGaussian(Math.SQRT2 * Math.min(clip, 1), sigma);
        return { ...share, values };
      }
      case 'reference-token-predictions':
        // One private record moves many windows' positions: the per-row clip above bounds nothing here.
        throw new Error('privacy: differential privacy of per-token knowledge (reference-token-predictions) is not supported; its sensitivity is not one row');
      case 'reference-logits': {
        const values = Float32Array.from(share.values);
        clipRows(values, C, clip);
        addGaussianNoise(values, sigma, this.random);
        this.accountant.addGaussian(2 * clip, sigma);
        return { ...share, values };
      }
      case 'class-logits': {
        const { records } = share;
        if (records === undefined) {
          throw new Error('privacy: a class-logits share must carry its per-record logits (Share.records) so that each record can be clipped before the per-class mean');
        }
        const counts = new Array<number>(C).fill(0);
        const sums = new Float64Array(C * C);
        const logits = Float32Array.from(records.values);
        clipRows(logits, C, clip);
        for (let i = 0; i < records.labels.length; i++) {
          const y = records.labels[i]!;
          counts[y]!++;
          for (let k = 0; k < C; k++) sums[y * C + k]! += logits[i * C + k]!;
        }
        const values = new Float32Array(C * C);
        let smallest = Infinity;
        for (let c = 0; c < C; c++) {
          const n = counts[c]!;
          if (n === 0) continue; // a class nobody holds carries no record and count 0: nothing to protect
          smallest = Math.min(smallest, n);
          for (let k = 0; k < C; k++) values[c * C + k] = sums[c * C + k]! / n + sigma * this.random.normal();
        }
        // Label-preserving replace-one moves one class's mean by ≤ 2C/n_c; the worst class bounds Δ.
        if (smallest < Infinity) this.accountant.addGaussian((2 * clip) / smallest, sigma);
        const { records: _, ...rest } = share;
        return { ...rest, values };
      }
      case 'weights':
        throw new Error('privacy: this mechanism protects predictions and class logits; FedAvg shares weights, which it does not cover');
      case 'class-representations':
      case 'class-hyper-knowledge':
        throw new Error(`privacy: this mechanism protects predictions and class logits; ${context.kind} (per-class mean representations) are not covered yet`);
    }
  }

  spent(): PrivacySpent {
    const { delta } = this.settings;
    return { epsilon: this.accountant.epsilon(delta), delta, rho: this.accountant.rho, releases: this.accountant.releases };
  }
}

/** A seed nobody can guess: Web Crypto, which Node and browsers share (a browser participant bundles this module). */
function unpredictableSeed(): number {
  return globalThis.crypto.getRandomValues(new Uint32Array(1))[0]!;
}
