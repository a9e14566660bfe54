/** The strategies' aggregation against hand-computed values, and the knowledge checks they rely on. */
import { describe, expect, it } from 'vitest';
import { packTensor, readContribution, type Contribution } from '../../protocol/index.js';
import { aggregatorFor } from '../../server/aggregators/index.js';
import { ALGORITHM_NAMES, createStrategy, STRATEGIES } from '../../server/strategies/index.js';

const settings = { referenceSize: 4, referencePerRound: 4, seed: 1, numClasses: 2 };
const c = (participant: string, values: number[], extra: Partial<Contribution> = {}): Contribution => ({
  participant, values: new Float32Array(values), ...extra,
});

describe('strategies', () => {
  it('fd: the teacher of class c is the mean of the others holding c; counts say who holds what', () => {
    const fd = createStrategy('fd', settings);
    // Two classes; rows are classes, columns logits. b holds no class-1 sample.
    const contributions = [
      c('a', [2, 0, 0, 4], { labelCounts: [5, 1] }),
      c('b', [4, 2, 0, 0], { labelCounts: [3, 0] }),
      c('d', [6, 4, 1, 3], { labelCounts: [2, 7] }),
    ];
    const { targets } = fd.aggregate(contributions, ['a', 'b', 'd'], 0);
    expect([...targets.get('a')!.values]).toEqual([5, 3, 1, 3]); // class 0: mean(b, d); class 1: d only
    expect(targets.get('a')!.counts).toEqual([5, 7]);
    expect([...targets.get('b')!.values]).toEqual([4, 2, 0.5, 3.5]); // class 1: mean(a, d)
    expect([...targets.get('d')!.values]).toEqual([3, 1, 0, 4]); // class 1: a only
    // A class nobody else holds: zero vector and count 0, so the participant skips it.
    const alone = fd.aggregate([c('a', [2, 0, 0, 4], { labelCounts: [5, 1] }), c('b', [4, 2, 9, 9], { labelCounts: [3, 0] })], ['a'], 0);
    expect([...alone.targets.get('a')!.values]).toEqual([4, 2, 0, 0]);
    expect(alone.targets.get('a')!.counts).toEqual([3, 0]);
  });

  it('fedavg: every learner gets the sample-weighted mean of the weights', () => {
    const fedavg = createStrategy('fedavg', settings);
    const w = (participant: string, values: number[], sampleCount: number): Contribution => ({ participant, values: new Float32Array(values), sampleCount });
    const { targets } = fedavg.aggregate([w('a', [1, 2, 3], 1), w('b', [4, 5, 6], 3)], ['a', 'b'], 0);
    expect([...targets.get('a')!.values]).toEqual([3.25, 4.25, 5.25]);
    expect(targets.get('b')!.values).toBe(targets.get('a')!.values);
  });

  it('dsfl and fedmd: one global target for everyone, own contribution included', () => {
    const p = (participant: string, values: number[]): Contribution => ({ participant, values: new Float32Array(values) });
    const contributions = [p('a', [0.9, 0.1]), p('b', [0.6, 0.4])];
    const dsfl = createStrategy('dsfl', { ...settings, sharpenTemperature: 0.1 }).aggregate(contributions, ['a', 'b'], 1);
    const era = aggregatorFor('era')(contributions, { rows: 1, classes: 2, temperature: 0.1 });
    expect([...dsfl.targets.get('a')!.values]).toEqual([...era]);
    expect(dsfl.targets.get('b')!.values).toBe(dsfl.targets.get('a')!.values);
    expect(era[0]).toBeGreaterThan(0.75); // sharper than the mean 0.75
    const fedmd = createStrategy('fedmd', settings).aggregate([p('a', [2, -2]), p('b', [0, 4])], ['a', 'b'], 1);
    expect([...fedmd.targets.get('a')!.values]).toEqual([1, 1]);
  });

  it('refuses unknown algorithms, including names of Object.prototype', () => {
    expect(() => createStrategy('constructor', settings)).toThrow(`unknown algorithm "constructor"; choose one of ${ALGORITHM_NAMES.join(', ')}`);
    expect(ALGORITHM_NAMES).toContain('dml');
  });
});

describe('knowledge checks', () => {
  const expectation = { kind: 'class-logits' as const, round: 3, numClasses: 2, rows: 0 };
  const logits = packTensor(new Float32Array([1, 2, 3, 4]), [2, 2], 'float32');
  const code = (f: () => unknown) => {
    try {
      f();
      return 'ok';
    } catch (error) {
      return (error as Error).message; // a ProtocolError's message starts with its code
    }
  };

  it('class-logits need [C, C] values and one count per class', () => {
    expect(code(() => readContribution('a', { kind: 'class-logits', values: logits, labelCounts: [1, 2] }, expectation))).toBe('ok');
    expect(code(() => readContribution('a', { kind: 'class-logits', values: logits }, expectation))).toMatch(/^E_SCHEMA: .*labelCounts is required/);
    expect(code(() => readContribution('a', { kind: 'class-logits', values: logits, labelCounts: [1] }, expectation))).toMatch(/^E_SHAPE: .*labelCounts has 1 entries; the session has 2 classes/);
    expect(code(() => readContribution('a', { kind: 'reference-logits', values: logits }, expectation))).toMatch(/^E_SCHEMA: .*this session exchanges class-logits, not reference-logits/);
  });

  it('weights travel flat, with a sample count, and keep their length', () => {
    const e = { kind: 'weights' as const, round: 1, numClasses: 2, rows: 0 };
    const flat = packTensor(new Float32Array(6), [6], 'float32');
    expect(code(() => readContribution('a', { kind: 'weights', values: flat, sampleCount: 10 }, e))).toBe('ok');
    expect(code(() => readContribution('a', { kind: 'weights', values: flat }, e))).toMatch(/^E_SCHEMA: .*sampleCount ≥ 1 is required/);
    expect(code(() => readContribution('a', { kind: 'weights', values: packTensor(new Float32Array(6), [2, 3], 'float32'), sampleCount: 1 }, e)))
      .toMatch(/^E_SHAPE: weights for round 1: weights travel as one flat vector; got shape \[2,3\]$/);
    expect(code(() => readContribution('a', { kind: 'weights', values: flat, sampleCount: 1 }, { ...e, parameters: 7 }))).toMatch(/^E_SHAPE: .*expected \[7\]/);
  });

  it('every descriptor is complete and its strategy is what it says', () => {
    for (const name of ALGORITHM_NAMES) {
      const descriptor = STRATEGIES[name]!;
      expect(descriptor.name).toBe(name);
      expect(descriptor.summary.length, `${name}'s summary`).toBeGreaterThan(10);
      expect(descriptor.defaults.temperature).toBeGreaterThan(0);
      const strategy = createStrategy(name, settings);
      expect({ name: strategy.name, mode: strategy.mode, knowledge: strategy.knowledge }).toEqual({ name, mode: descriptor.mode, knowledge: descriptor.knowledge });
    }
  });

  it('kdcl: every learner gets the mean of all contributions, its own included', () => {
    const p = (participant: string, values: number[]): Contribution => ({ participant, values: new Float32Array(values) });
    const kdcl = createStrategy('kdcl', { ...settings, numClasses: 2 }).aggregate([p('a', [0.9, 0.1]), p('b', [0.6, 0.4]), p('c', [0.3, 0.7])], ['a', 'b'], 1);
    expect([...kdcl.targets.get('a')!.values].map((v) => +v.toFixed(6))).toEqual([0.6, 0.4]);
    expect(kdcl.targets.get('b')!.values).toBe(kdcl.targets.get('a')!.values);
    expect(kdcl.targets.has('c')).toBe(false); // c is a teacher here: it contributes and gets nothing
    expect(kdcl.targets.get('a')!.shape).toEqual([1, 2]);
  });
});

