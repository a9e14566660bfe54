/**
 * Hostile participants for the poisoning experiment: each attack's uploads are what it says,
 * they stay valid on the wire (a real coordinator aggregates exactly them), and the
 * simulation's accuracy means leave the hostile participants out.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../client/backend.js';
import { subset, type LabeledDataset } from '../../client/data/dataset.js';
import { loadMnist, splitDataset } from '../../client/data/mnist.js';
import { SeededRandom } from '../../client/data/random.js';
import { createModel } from '../../client/models.js';
import { runParticipant } from '../../client/participant.js';
import type { Share, UploadContext, UploadHook } from '../../client/procedures/index.js';
import { Student } from '../../client/student.js';
import { median } from '../../server/aggregators/median.js';
import { Coordinator } from '../../server/coordinator.js';
import { valuesDigest } from '../../server/journal.js';
import type { SessionConfig } from '../../server/session.js';
import { attackHook, attackValues, hostileParticipants } from '../../simulations/attacks.js';
import { validateExperiment } from '../../simulations/config.js';
import { DEFAULT_OPTIONS, roundRow } from '../../simulations/simulate.js';

const probs = (C: number) => ({ kind: 'reference-predictions' as const, numClasses: C, round: 1 });

describe('attacks on probability uploads', () => {
  const p = Float32Array.from([0.5, 0.3, 0.2, 0.1, 0.1, 0.8]);

  it('flipped moves the probability of class c to (c + 1) mod C', () => {
    expect([...attackValues('flipped', p, probs(3), new SeededRandom(1))]).toEqual([...Float32Array.from([0.2, 0.5, 0.3, 0.8, 0.1, 0.1])]);
    expect([...p]).toEqual([...Float32Array.from([0.5, 0.3, 0.2, 0.1, 0.1, 0.8])]); // the input is untouched
  });

  it('scaled is softmax(s·z/T) = p^s / Σ p^s: sharper, same argmax, on the simplex', () => {
    const twice = attackValues('scaled', p, probs(3), new SeededRandom(1), 2);
    // By hand: [0.25, 0.09, 0.04] / 0.38 and [0.01, 0.01, 0.64] / 0.66.
    [0.25 / 0.38, 0.09 / 0.38, 0.04 / 0.38, 0.01 / 0.66, 0.01 / 0.66, 0.64 / 0.66].forEach((v, i) => expect(twice[i]).toBeCloseTo(v, 6));
    const hundred = attackValues('scaled', p, probs(3), new SeededRandom(1), 100);
    expect(hundred[0]).toBeGreaterThan(0.999);
    expect(hundred[5]).toBeGreaterThan(0.999);
    expect(attackValues('scaled', Float32Array.from([0, 1, 0]), probs(3), new SeededRandom(1), 100)).toEqual(Float32Array.from([0, 1, 0]));
  });

  it('random draws uniform points of the simplex, seeded, independent of the honest values', () => {
    const C = 10;
    const rows = 20_000;
    const honest = new Float32Array(rows * C).fill(0.1);
    const a = attackValues('random', honest, probs(C), new SeededRandom(9));
    expect(attackValues('random', honest, probs(C), new SeededRandom(9))).toEqual(a);
    const columnMeans = new Float64Array(C);
    for (let r = 0; r < rows; r++) {
      let sum = 0;
      for (let c = 0; c < C; c++) {
        const v = a[r * C + c]!;
        expect(v).toBeGreaterThanOrEqual(0);
        sum += v;
        columnMeans[c]! += v / rows;
      }
      expect(sum).toBeCloseTo(1, 5);
    }
    // Dirichlet(1·1_10): mean 1/10, variance (C−1)/(C²(C+1)) = 9/1100 per coordinate; 5 standard errors.
    for (const m of columnMeans) expect(Math.abs(m - 0.1)).toBeLessThan(5 * Math.sqrt(9 / 1100 / rows));
  });
});

describe('attacks on logit uploads', () => {
  const z = Float32Array.from([2, -1, 0.5, 4, 0, -3]);
  it('flip the class axis, scale every value, or draw noise at the honest values\' scale', () => {
    const logits = { kind: 'class-logits' as const, numClasses: 3, round: 1 };
    expect([...attackValues('flipped', z, logits, new SeededRandom(1))]).toEqual([0.5, 2, -1, -3, 4, 0]);
    expect([...attackValues('scaled', z, logits, new SeededRandom(1), 10)]).toEqual([20, -10, 5, 40, 0, -30]);
    const noise = attackValues('random', z, logits, new SeededRandom(1));
    expect(noise).not.toEqual(z);
    expect(() => attackValues('random', new Float32Array(4), { kind: 'weights', numClasses: 3, round: 1 }, new SeededRandom(1))).toThrow(/weights uploads \(FedAvg\) are not attacked/);
  });
});

describe('who is hostile', () => {
  it('a seeded, nested choice of f of n participants, and never all of them', () => {
    const two = hostileParticipants(10, 2, 1);
    const three = hostileParticipants(10, 3, 1);
    expect(two).toHaveLength(2);
    expect(three).toHaveLength(3);
    expect(three).toEqual(expect.arrayContaining(two));
    expect(hostileParticipants(10, 3, 1)).toEqual(three);
    expect(hostileParticipants(10, 0, 1)).toEqual([]);
    expect(() => hostileParticipants(10, 10, 1)).toThrow('attack.participants: must be an integer in [0, 9]');
  });

  it('the config refuses an attack that leaves nobody honest, naming the field', () => {
    const base = { ...DEFAULT_OPTIONS, out: 'x', participants: 4 };
    expect(() => validateExperiment({ ...base, attack: { kind: 'flipped', participants: 4 } }, 'test')).toThrow(
      'attack.participants: must be fewer than participants (4): at least one participant has to stay honest (got 4)',
    );
    expect(() => validateExperiment({ ...base, attack: { kind: 'inverted', participants: 1 } }, 'test')).toThrow('attack.kind: must be one of random, flipped, scaled (got "inverted")');
    expect(validateExperiment({ ...base, attack: { kind: 'scaled', participants: 1, scale: 50 } }, 'test').attack).toEqual({ kind: 'scaled', participants: 1, scale: 50 });
  });
});

describe('simulation rows: means over the honest participants only', () => {
  it('leaves hostile participants out of the mean, the personalised mean and the consensus', () => {
    // Four test samples of two classes. p0 and p2 are honest and right on 3 and 4 of them; p1 is
    // hostile, wrong everywhere and very sure of it — enough to flip the consensus of all three.
    const test: LabeledDataset = { x: new Float32Array(4), y: Int32Array.from([0, 1, 0, 1]), sampleShape: [1], numClasses: 2 };
    const report = (index: number, rows: number[][]) => ({
      type: 'round' as const, index, round: 1, receivedTarget: true, testProbs: Float32Array.from(rows.flat()), loss: 0, trainMs: 0, numTensors: 0,
      accuracy: rows.filter((r, i) => (r[1]! > r[0]! ? 1 : 0) === test.y[i]).length / 4,
    });
    const reports = [
      report(0, [[0.6, 0.4], [0.4, 0.6], [0.6, 0.4], [0.6, 0.4]]),
      report(1, [[0, 1], [1, 0], [0, 1], [1, 0]]),
      report(2, [[0.6, 0.4], [0.4, 0.6], [0.6, 0.4], [0.3, 0.7]]),
    ];
    const sites = [[[0.5, 0.5]], [[0.5, 0.5]], [[0.5, 0.5]]];
    const honestRow = roundRow(1, reports, null, sites, [], test, performance.now(), [1]);
    expect(honestRow.accuracy).toEqual([0.75, 0, 1]);
    expect(honestRow.hostile).toEqual([1]);
    expect(honestRow.meanAccuracy).toBeCloseTo((0.75 + 1) / 2, 12);
    expect(honestRow.meanPersonalized).toBeCloseTo((0.75 + 1) / 2, 12);
    expect(honestRow.ensembleAccuracy).toBe(1); // the mean of p0 and p2 only
    const allRow = roundRow(1, reports, null, sites, [], test, performance.now(), []);
    expect(allRow.meanAccuracy).toBeCloseTo(1.75 / 3, 12);
    expect(allRow.ensembleAccuracy).toBe(0); // with p1 counted, the consensus is wrong on every sample
    expect(() => roundRow(1, reports, null, sites, [], test, performance.now(), [0, 1, 2])).toThrow(/every participant is hostile/);
  });
});

describe('a hostile participant against a real coordinator', () => {
  let coordinator: Coordinator;
  beforeAll(async () => {
    await selectBackend();
    coordinator = await Coordinator.start();
  });
  afterAll(async () => coordinator.close());

  /** Wraps a hook to keep what went in and what came out. */
  const recording = (inner: UploadHook | undefined) => {
    const seen: Array<{ input: Float32Array; sent: Float32Array; context: UploadContext }> = [];
    const hook: UploadHook = {
      transform(share: Share, context: UploadContext) {
        const input = Float32Array.from(share.values);
        const sent = inner === undefined ? share : inner.transform(share, context);
        seen.push({ input, sent: Float32Array.from(sent.values), context });
        return sent;
      },
    };
    return { hook, seen };
  };

  for (const kind of ['flipped', 'random', 'scaled'] as const) {
    it(`${kind}: the coordinator accepts and aggregates exactly the attacked uploads`, async () => {
      const split = splitDataset(loadMnist(), { test: 200, reference: 100 }, 3);
      const tokens = Array.from({ length: 3 }, (_, i) => ({ id: `p${i}`, token: `attack-token-${i}-${Math.random()}` }));
      const id = `attack-${kind}`;
      const config: SessionConfig = {
        id, algorithm: 'dml', rounds: 2, participants: tokens, minParticipants: 3, numClasses: 10, referenceSize: 100,
        referencePerRound: 100, temperature: 3, alpha: 0.5, uploadDtype: 'float32', aggregator: 'median',
        roundTimeoutMs: 60_000, trainTimeoutMs: 60_000, onRoundFailure: 'stop', seed: 3, maxMessageBytes: 1 << 20,
      };
      const session = coordinator.createSession(config);
      const ended = new Promise((resolve) => session.once('end', resolve));
      // p0 is hostile; p1 and p2 are honest and upload unchanged (a pass-through recorder).
      const recorders = [recording(attackHook({ kind }, 77)), recording(undefined), recording(undefined)];
      const students = tokens.map((_, i) => new Student(createModel({ name: 'mlp', inputShape: [28, 28, 1], numClasses: 10, seed: 20 + i }), {
        sampleShape: [28, 28, 1], numClasses: 10, learningRate: 1e-3, seed: i,
      }));
      await Promise.all(tokens.map(({ token }, i) => runParticipant({
        url: coordinator.url, session: id, token, student: students[i]!, epochs: 1, batchSize: 32,
        data: { train: subset(split.pool, Array.from({ length: 200 }, (_, k) => k + 200 * i)), reference: split.reference.x },
        uploadHook: recorders[i]!.hook,
      })));
      await ended;
      for (const s of students) s.dispose();

      const hostile = recorders[0]!.seen;
      expect(hostile.map((s) => s.context.round)).toEqual([1, 2]);
      // What the hostile participant sent is what the attack makes of its honest predictions…
      const replay = new SeededRandom(77);
      for (const { input, sent } of hostile) {
        expect(sent).toEqual(attackValues(kind, input, probs(10), replay));
        expect(sent).not.toEqual(input);
        if (kind === 'flipped') for (let k = 0; k < input.length; k++) expect(sent[k - (k % 10) + (((k % 10) + 1) % 10)]).toBe(input[k]);
      }
      // …and the coordinator took it: all three contributed, and the round's aggregate (the
      // ensemble of all contributions, here their median, in arrival order) is
      // exactly the aggregate of the recorded uploads.
      for (const record of session.history) {
        expect([...record.contributors].sort()).toEqual(['p0', 'p1', 'p2']);
        const contributions = record.contributors.map((participant) => ({
          participant, values: recorders[Number(participant.slice(1))]!.seen[record.round - 1]!.sent,
        }));
        const ensemble = median(contributions, { rows: 100, classes: 10 });
        expect(record.ensembleDigest).toBe(valuesDigest(ensemble));
        // The honest-only aggregate differs: the hostile upload was counted.
        const withoutHostile = median(contributions.filter((c) => c.participant !== 'p0'), { rows: 100, classes: 10 });
        expect(record.ensembleDigest).not.toBe(valuesDigest(withoutHostile));
      }
    });
  }
});
