/**
 * Differential privacy for uploads: the zCDP accountant against values computed by hand, the
 * clipping, the noise's statistics from a seeded generator, the mechanism per knowledge kind,
 * and a real session on 127.0.0.1 whose coordinator accepts the noisy uploads and receives ε.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../client/backend.js';
import { subset } from '../../client/data/dataset.js';
import { loadMnist, splitDataset } from '../../client/data/mnist.js';
import { partition } from '../../client/data/partition.js';
import { SeededRandom } from '../../client/data/random.js';
import { createModel } from '../../client/models.js';
import { runParticipant } from '../../client/participant.js';
import {
  addGaussianNoise,
  checkPrivacySettings,
  clampToSimplex,
  clipRows,
  GaussianUploads,
  gaussianRho,
  ZcdpAccountant,
  zcdpEpsilon,
} from '../../client/privacy.js';
import { Student } from '../../client/student.js';
import { Coordinator } from '../../server/coordinator.js';
import type { SessionConfig } from '../../server/session.js';

const rel = (actual: number, expected: number) => Math.abs(actual - expected) / Math.abs(expected);
const LN_1E5 = Math.log(1e5);

describe('the zCDP accountant (Bun & Steinke 2016)', () => {
  // Golden values computed once by hand (Python, math.sqrt / math.log), not by the code under test.
  it('gives ρ = Δ²/(2σ²) for one Gaussian release', () => {
    expect(rel(gaussianRho(2, 3), 0.2222222222222222)).toBeLessThan(1e-9);
    expect(rel(gaussianRho(Math.SQRT2, 1), 1)).toBeLessThan(1e-9);
    expect(gaussianRho(0, 1)).toBe(0);
  });

  it('converts ρ to ε(δ) = ρ + 2√(ρ ln(1/δ))', () => {
    expect(rel(zcdpEpsilon(0.5, 1e-5), 5.298525912188081)).toBeLessThan(1e-9);
    expect(rel(zcdpEpsilon(10, 1e-5), 31.459660262893472)).toBeLessThan(1e-9);
    expect(rel(zcdpEpsilon(1.5, 1e-6), 10.604562776310878)).toBeLessThan(1e-9);
    expect(zcdpEpsilon(0, 1e-5)).toBe(0);
  });

  it('adds ρ over releases, so ε grows with every round', () => {
    const accountant = new ZcdpAccountant();
    const golden = [7.786140424415112, 11.597051824376162, 14.753940002383997];
    for (const expected of golden) {
      accountant.addGaussian(Math.SQRT2, 1);
      expect(rel(accountant.epsilon(1e-5), expected)).toBeLessThan(1e-9);
    }
    expect(accountant.rho).toBeCloseTo(3, 12);
    expect(accountant.releases).toBe(3);
  });

  it('refuses settings that void the guarantee, naming the field', () => {
    expect(() => checkPrivacySettings({ clip: -1, noiseMultiplier: 1, delta: 1e-5 })).toThrow('privacy.clip: must be a finite number > 0 (got -1)');
    expect(() => checkPrivacySettings({ clip: 1, noiseMultiplier: 0, delta: 1e-5 })).toThrow(/privacy\.noiseMultiplier: must be a finite number > 0 .*\(got 0\)/);
    expect(() => checkPrivacySettings({ clip: 1, noiseMultiplier: 1, delta: 1 })).toThrow('privacy.delta: must lie in (0, 1) (got 1)');
    expect(() => new GaussianUploads({ clip: 1, noiseMultiplier: 1, delta: 1e-5, seed: 1.5 })).toThrow('privacy.seed');
    expect(() => gaussianRho(1, 0)).toThrow(/σ > 0/);
  });
});

describe('clipping, noise and post-processing', () => {
  it('scales each row down to L2 norm C and leaves shorter rows alone', () => {
    const values = Float32Array.from([3, 4, 0.3, 0.4, -6, 8]);
    expect(clipRows(values, 2, 1)).toBe(2);
    expect([...values].map((v) => Number(v.toFixed(6)))).toEqual([0.6, 0.8, 0.3, 0.4, -0.6, 0.8]);
    expect(() => clipRows(new Float32Array(5), 2, 1)).toThrow(/not whole rows of 2/);
  });

  it('draws N(0, σ²) noise whose mean and variance match, from a seeded generator', () => {
    const n = 200_000;
    const sigma = 2;
    const values = new Float32Array(n).fill(5);
    addGaussianNoise(values, sigma, new SeededRandom(42));
    let mean = 0;
    for (const v of values) mean += v / n;
    let variance = 0;
    for (const v of values) variance += (v - mean) ** 2 / (n - 1);
    // Four standard errors: σ/√n for the mean, σ²·√(2/(n−1)) for the variance.
    expect(Math.abs(mean - 5)).toBeLessThan((4 * sigma) / Math.sqrt(n));
    expect(Math.abs(variance - sigma ** 2)).toBeLessThan(4 * sigma ** 2 * Math.sqrt(2 / (n - 1)));
    const again = new Float32Array(n).fill(5);
    addGaussianNoise(again, sigma, new SeededRandom(42));
    expect(again).toEqual(values);
  });

  it('clamps noisy rows at 0 and renormalises them onto the simplex, uniform when nothing is left', () => {
    const values = Float32Array.from([0.5, -0.2, 1.5, -1, -2, -0.1]);
    clampToSimplex(values, 3);
    expect([...values].map((v) => Number(v.toFixed(6)))).toEqual([0.25, 0, 0.75, 0.333333, 0.333333, 0.333333]);
  });
});

describe('the Gaussian mechanism on each knowledge kind', () => {
  const C = 10;

  it('reference-logits: each row clipped to C plus N(0, (zC)²) per coordinate, ρ = (2C)²/(2σ²) per release', () => {
    const rows = 20_000;
    const row = [3, 4, 0, 0, 0, 0, 0, 0, 0, 0]; // norm 5, clipped to [0.6, 0.8, 0, …] at C = 1
    const values = new Float32Array(rows * C);
    for (let r = 0; r < rows; r++) values.set(row, r * C);
    const before = Float32Array.from(values);
    const mechanism = new GaussianUploads({ clip: 1, noiseMultiplier: 0.5, delta: 1e-5, seed: 7 });
    const sent = mechanism.transform({ values, shape: [rows, C] }, { kind: 'reference-logits', numClasses: C, round: 1 });
    expect(values).toEqual(before); // the caller's share is not modified
    const sigma = 0.5;
    for (const [k, clipped] of [[0, 0.6], [1, 0.8], [5, 0]] as const) {
      let mean = 0;
      for (let r = 0; r < rows; r++) mean += sent.values[r * C + k]! / rows;
      let variance = 0;
      for (let r = 0; r < rows; r++) variance += (sent.values[r * C + k]! - mean) ** 2 / (rows - 1);
      expect(Math.abs(mean - clipped)).toBeLessThan((4 * sigma) / Math.sqrt(rows));
      expect(Math.abs(variance - sigma ** 2)).toBeLessThan(4 * sigma ** 2 * Math.sqrt(2 / (rows - 1)));
    }
    // Δ = 2C = 2, σ = 0.5: ρ = 4 / 0.5 = 8.
    expect(rel(mechanism.spent().rho, 8)).toBeLessThan(1e-9);
    expect(rel(mechanism.spent().epsilon, zcdpEpsilon(8, 1e-5))).toBeLessThan(1e-12);
  });

  it('reference-predictions: noisy rows are put back on the simplex; Δ = √2·min(C, 1); same seed, same noise', () => {
    const probs = new Float32Array(50 * C).fill(0.1);
    const settings = { clip: 0.5, noiseMultiplier: 1, delta: 1e-5, seed: 3 };
    const a = new GaussianUploads(settings).transform({ values: probs, shape: [50, C] }, { kind: 'reference-predictions', numClasses: C, round: 1 });
    const b = new GaussianUploads(settings);
    const bSent = b.transform({ values: probs, shape: [50, C] }, { kind: 'reference-predictions', numClasses: C, round: 1 });
    expect(bSent.values).toEqual(a.values);
    expect(a.values).not.toEqual(probs);
    for (let r = 0; r < 50; r++) {
      const row = a.values.subarray(r * C, (r + 1) * C);
      expect(Math.min(...row)).toBeGreaterThanOrEqual(0);
      expect(row.reduce((s, p) => s + p, 0)).toBeCloseTo(1, 5);
    }
    const other = new GaussianUploads({ ...settings, seed: 4 }).transform({ values: probs, shape: [50, C] }, { kind: 'reference-predictions', numClasses: C, round: 1 });
    expect(other.values).not.toEqual(a.values);
    // Δ = √2 · 0.5, σ = 0.5: ρ = (2 · 0.25) / (2 · 0.25) = 1 per release.
    expect(rel(b.spent().rho, 1)).toBeLessThan(1e-9);
    expect(rel(b.spent().epsilon, 7.786140424415112)).toBeLessThan(1e-9);
  });

  it('class-logits: each record clipped before the per-class mean; Δ = 2C / (smallest class held)', () => {
    const K = 3;
    // Five records: class 0 holds 3, class 1 holds 2, class 2 none.
    const logits = Float32Array.from([30, 40, 0, 0.3, 0.4, 0, 0, 0, 5, 0, 10, 0, 0, 0, 2]);
    const labels = Int32Array.from([0, 0, 0, 1, 1]);
    const mechanism = new GaussianUploads({ clip: 5, noiseMultiplier: 1e-6, delta: 1e-5, seed: 1 });
    const sent = mechanism.transform(
      { values: new Float32Array(K * K), shape: [K, K], labelCounts: [3, 2, 0], sampleCount: 5, records: { values: logits, labels } },
      { kind: 'class-logits', numClasses: K, round: 1 },
    );
    // Clipped at 5: [3, 4, 0], [0.3, 0.4, 0], [0, 0, 5] → class 0 mean [1.1, 4.4/3, 5/3];
    // [0, 5, 0], [0, 0, 2] → class 1 mean [0, 2.5, 1]; class 2 stays 0 (no noise: nothing to protect).
    const expected = [1.1, 4.4 / 3, 5 / 3, 0, 2.5, 1, 0, 0, 0];
    sent.values.forEach((v, i) => expect(v).toBeCloseTo(expected[i]!, 4));
    expect(sent.records).toBeUndefined(); // never sent
    expect(sent.labelCounts).toEqual([3, 2, 0]);
    // Δ = 2·5/2 = 5, σ = 5e-6: ρ = 25 / (2 · 25e-12) = 5e11.
    expect(rel(mechanism.spent().rho, 5e11)).toBeLessThan(1e-9);
    expect(() => mechanism.transform({ values: new Float32Array(K * K), shape: [K, K] }, { kind: 'class-logits', numClasses: K, round: 2 }))
      .toThrow(/per-record logits/);
    expect(() => mechanism.transform({ values: new Float32Array(4), shape: [4] }, { kind: 'weights', numClasses: K, round: 2 })).toThrow(/FedAvg shares weights/);
  });
});

describe('private uploads through a real coordinator', () => {
  let coordinator: Coordinator;
  beforeAll(async () => {
    await selectBackend();
    coordinator = await Coordinator.start();
  });
  afterAll(async () => coordinator.close());

  const ROUNDS = 3;
  const privacy = { clip: 1, noiseMultiplier: 1, delta: 1e-5 };

  async function run(algorithm: 'dml' | 'fd', id: string) {
    const split = splitDataset(loadMnist(), { test: 300, reference: 200 }, 11);
    const shards = partition(split.pool.y, 10, 3, { kind: 'dirichlet', alpha: 0.5 }, 11);
    const tokens = Array.from({ length: 3 }, (_, i) => ({ id: `p${i}`, token: `privacy-token-${i}-${Math.random()}` }));
    const config: SessionConfig = {
      id, algorithm, rounds: ROUNDS, participants: tokens, minParticipants: 3, numClasses: 10,
      referenceSize: algorithm === 'fd' ? 0 : 200, referencePerRound: 200, temperature: 3, alpha: 0.5, uploadDtype: 'float16',
      roundTimeoutMs: 60_000, trainTimeoutMs: 60_000, onRoundFailure: 'stop', seed: 11, maxMessageBytes: 1 << 20,
    };
    const session = coordinator.createSession(config);
    const ended = new Promise((resolve) => session.once('end', resolve));
    const trains = tokens.map((_, i) => subset(split.pool, shards.indices[i]!.slice(0, 300)));
    const students = tokens.map((_, i) => new Student(createModel({ name: 'mlp', inputShape: [28, 28, 1], numClasses: 10, seed: 50 + i }), {
      sampleShape: [28, 28, 1], numClasses: 10, learningRate: 1e-3, seed: i,
    }));
    // p0 and p1 upload privately; p2 does not, and must report no privacy spent.
    const summaries = await Promise.all(tokens.map(({ token }, i) => runParticipant({
      url: coordinator.url, session: id, token, student: students[i]!, epochs: 1, batchSize: 32,
      data: { train: trains[i]!, reference: split.reference.x },
      ...(i < 2 ? { privacy: { ...privacy, seed: 100 + i } } : {}),
    })));
    await ended;
    for (const s of students) s.dispose();
    return { session, summaries, trains };
  }

  it('dml: the coordinator accepts every noisy (re-normalised) upload and receives ε each round, growing as ρ = r', async () => {
    const { session, summaries } = await run('dml', 'privacy-dml');
    expect(session.history.map((r) => r.round)).toEqual([1, 2, 3]);
    for (const record of session.history) {
      expect([...record.contributors].sort()).toEqual(['p0', 'p1', 'p2']);
      // C = 1, z = 1: Δ = √2, σ = 1, so ρ = 1 per round and ε = r + 2√(r ln 10⁵).
      const expected = record.round + 2 * Math.sqrt(record.round * LN_1E5);
      for (const p of ['p0', 'p1']) {
        const spent = record.reports[p]?.privacy;
        expect(spent?.releases).toBe(record.round);
        expect(spent?.delta).toBe(1e-5);
        expect(rel(spent!.epsilon, expected)).toBeLessThan(1e-9);
      }
      expect(record.reports.p2?.privacy).toBeUndefined();
    }
    const epsilons = summaries[0]!.rounds.map((r) => r.privacy!.epsilon);
    expect(epsilons).toHaveLength(ROUNDS);
    for (let i = 1; i < epsilons.length; i++) expect(epsilons[i]!).toBeGreaterThan(epsilons[i - 1]!);
  });

  it('fd: ε follows the smallest class each participant holds, ρ = 2 / (z² n_min²) per round', async () => {
    const { session, trains } = await run('fd', 'privacy-fd');
    expect(session.history.map((r) => r.round)).toEqual([1, 2, 3]);
    for (const [i, train] of trains.slice(0, 2).entries()) {
      const counts = new Array<number>(10).fill(0);
      for (const y of train.y) counts[y]!++;
      const smallest = Math.min(...counts.filter((c) => c > 0));
      for (const record of session.history) {
        const rho = (record.round * 2) / (smallest * smallest);
        expect(record.contributors).toContain(`p${i}`);
        expect(rel(record.reports[`p${i}`]!.privacy!.epsilon, rho + 2 * Math.sqrt(rho * LN_1E5))).toBeLessThan(1e-9);
      }
    }
  });
});
