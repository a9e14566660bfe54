/**
 * FedProto's and FedHKD's server side: the count-weighted class means against golden values
 * (computed once with numpy, independently of the code), the strategies' targets, and the checks
 * protocol makes of the class kinds before anything is averaged.
 */
import { describe, expect, it } from 'vitest';
import { packTensor, readContribution, type Contribution, type KnowledgeExpectation } from '../../protocol/index.js';
import { classMeans } from '../../server/aggregators/class-means.js';
import { createStrategy } from '../../server/strategies/index.js';

const c = (participant: string, values: number[], labelCounts: number[]): Contribution => ({
  participant, values: new Float32Array(values), labelCounts, sampleCount: labelCounts.reduce((a, b) => a + b, 0),
});

// Three classes, rows of width 2; nobody holds class 1, b holds class 0 alone.
const CONTRIBUTIONS = [
  c('a', [1, 2, 0, 0, 3, -1], [2, 0, 1]),
  c('b', [4, 0.5, 0, 0, 0, 0], [1, 0, 0]),
  c('d', [-2, 1, 0, 0, 5, 5], [3, 0, 3]),
];
const GOLDEN = { values: [0, 1.25, 0, 0, 4.5, 3.5], counts: [6, 0, 4] };

describe('class means (FedProto, FedHKD)', () => {
  it('each class is Σ_k n_kc r_kc / Σ_k n_kc; a class nobody holds stays zeros with count 0', () => {
    const { values, counts } = classMeans(CONTRIBUTIONS, 3, 2);
    expect([...values]).toEqual(GOLDEN.values);
    expect(counts).toEqual(GOLDEN.counts);
  });

  it('is not the unweighted mean of the holders (the FedProto code\'s form)', () => {
    // Unweighted, class 0 would be mean(1, 4, −2) = 1; weighted by counts 2, 1, 3 it is 0.
    expect(classMeans(CONTRIBUTIONS, 3, 2).values[0]).toBe(0);
  });

  for (const algorithm of ['fedproto', 'fedhkd']) {
    it(`${algorithm}: every learner gets the same global means with the counts, its own upload included`, () => {
      const strategy = createStrategy(algorithm, { referenceSize: 0, referencePerRound: 0, seed: 1, numClasses: 3 });
      expect(strategy.configureRound(1).referenceIds).toEqual([]);
      const { targets, ensemble } = strategy.aggregate(CONTRIBUTIONS, ['a', 'b', 'd'], 0);
      for (const p of ['a', 'b', 'd']) {
        const target = targets.get(p)!;
        expect([...target.values]).toEqual(GOLDEN.values);
        expect(target.shape).toEqual([3, 2]);
        expect(target.counts).toEqual(GOLDEN.counts);
      }
      expect([...ensemble!]).toEqual(GOLDEN.values);
    });
  }
});

describe('class kinds: what protocol refuses', () => {
  const code = (f: () => unknown) => {
    try {
      f();
      return 'ok';
    } catch (error) {
      return (error as Error).message;
    }
  };
  const representations: KnowledgeExpectation = { kind: 'class-representations', round: 2, numClasses: 2, rows: 0 };
  const upload = (values: number[], shape: number[], labelCounts?: number[], sampleCount?: number, kind: 'class-representations' | 'class-hyper-knowledge' = 'class-representations') => ({
    kind, values: packTensor(new Float32Array(values), shape, 'float32'), labelCounts, sampleCount,
  });

  it('class-representations: any width until the session has one, then that width', () => {
    expect(code(() => readContribution('a', upload([1, 2, 3, 0, 0, 0], [2, 3], [4, 0], 4), representations))).toBe('ok');
    expect(code(() => readContribution('a', upload([1, 2, 3, 4], [2, 2], [1, 1], 2), { ...representations, width: 3 }))).toMatch(/^E_SHAPE: .*expected \[2,3\]/);
    expect(code(() => readContribution('a', upload([1, 2, 3], [3], [1, 1], 2), representations))).toMatch(/^E_SHAPE: .*travel as \[classes, width\]/);
    expect(code(() => readContribution('a', upload([1, 2, 3, 4, 5, 6], [3, 2], [1, 1], 2), representations))).toMatch(/^E_SHAPE/);
  });

  it('counts: required, and they must add up to sampleCount', () => {
    expect(code(() => readContribution('a', upload([1, 2, 3, 4], [2, 2]), representations))).toMatch(/^E_SCHEMA: .*labelCounts and sampleCount are required/);
    expect(code(() => readContribution('a', upload([1, 2, 3, 4], [2, 2], [1, 1]), representations))).toMatch(/^E_SCHEMA/);
    expect(code(() => readContribution('a', upload([1, 2, 3, 4], [2, 2], [1, 1], 5), representations))).toMatch(/^E_VALUE: .*add up to 2 but sampleCount is 5/);
    expect(code(() => readContribution('a', upload([0, 0, 0, 0], [2, 2], [0, 0], 0), representations))).toMatch(/^E_VALUE: .*at least one sample/);
  });

  it('a class the sender does not hold is a row of zeros; values are finite and bounded', () => {
    expect(code(() => readContribution('a', upload([1, 2, 0, 0.5], [2, 2], [3, 0], 3), representations))).toMatch(/^E_VALUE: .*class 1 has count 0 but its row holds 0.5 at column 1/);
    expect(code(() => readContribution('a', upload([1, 2e4, 0, 0], [2, 2], [3, 0], 3), representations))).toMatch(/^E_VALUE: .*class 0, representation value 1 is 20000/);
    expect(code(() => readContribution('a', upload([1, Number.NaN, 0, 0], [2, 2], [3, 0], 3), representations))).toMatch(/^E_VALUE/);
  });

  it('class-hyper-knowledge: a representation then a soft prediction on the simplex for each held class', () => {
    const hyper: KnowledgeExpectation = { ...representations, kind: 'class-hyper-knowledge' };
    const hk = (values: number[], shape: number[], labelCounts: number[]) => upload(values, shape, labelCounts, labelCounts[0]! + labelCounts[1]!, 'class-hyper-knowledge');
    // Width 3 = one representation value + 2 classes.
    expect(code(() => readContribution('a', hk([5, 0.9, 0.1, 0, 0, 0], [2, 3], [2, 0]), hyper))).toBe('ok');
    expect(code(() => readContribution('a', hk([5, 0.9, 0.3, 0, 0, 0], [2, 3], [2, 0]), hyper))).toMatch(/^E_VALUE: .*class 0's soft prediction: row 0 sums to 1.2/);
    expect(code(() => readContribution('a', hk([0.9, 0.1, 0, 0], [2, 2], [2, 0]), hyper))).toMatch(/^E_SHAPE: .*3 ≤ w/);
  });
});
