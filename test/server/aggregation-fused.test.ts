/**
 * The aggregation fixes must not change a single bit or a single error: the mean (and ERA) check
 * finiteness on their float64 sum instead of on every value; leave-one-out aggregates and the dml
 * strategy check the contributions once per round; fd builds every learner's teacher from one
 * sum when that sum is provably exact. Each is held here to the code it replaced
 * (bench/legacy-aggregation.ts, which calls the aggregators the old way and keeps fd's old
 * O(n²) teacher verbatim), on ordinary inputs and on the hostile ones: NaN, ±Inf (opposite
 * infinities in one coordinate, whose sum is NaN), a participant twice, wrong lengths, missing
 * counts, signed zeros, and values that make float64 sums round.
 */
import { describe, expect, it } from 'vitest';
import { SeededRandom } from '../../client/data/random.js';
import { legacyAggregateExcluding, legacyAggregator, legacyDml, legacyFd, legacyLeaveOneOutAggregates } from '../../bench/legacy-aggregation.js';
import { firstNonFiniteSum, sumOf } from '../../server/aggregators/sums.js';
import { checkContributions, checkedSum } from '../../server/aggregators/aggregator.js';
import {
  AGGREGATOR_NAMES,
  AGGREGATORS,
  aggregateExcluding,
  leaveOneOutAggregates,
  leaveOneOutAndEnsemble,
  type AggregatorOptions,
  type Contribution,
} from '../../server/aggregators/index.js';
import { createStrategy } from '../../server/strategies/index.js';
import type { Contribution as Upload } from '../../protocol/index.js';

const OPTIONS: AggregatorOptions = { rows: 4, classes: 3 };

const bits = (a: Float32Array | Float64Array) => Array.from(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));

/** The result or the error message, for comparing two implementations outcome for outcome. */
function outcome<T>(fn: () => T): T | string {
  try {
    return fn();
  } catch (error) {
    return `${(error as Error).constructor.name}: ${(error as Error).message}`;
  }
}

function probabilities(random: SeededRandom, rows: number, classes: number): Float32Array {
  const v = new Float32Array(rows * classes);
  for (let r = 0; r < rows; r++) {
    let sum = 0;
    for (let k = 0; k < classes; k++) sum += v[r * classes + k] = random.next() ** 3;
    for (let k = 0; k < classes; k++) v[r * classes + k]! /= sum;
  }
  return v;
}

/** n contributions, some of them broken in one of the ways a library caller (or a bug) could break them. */
function contributions(random: SeededRandom, n: number, damage: number): Contribution[] {
  const { rows, classes } = OPTIONS;
  const list: Contribution[] = Array.from({ length: n }, (_, k) => ({
    participant: `p${k}`,
    values: probabilities(random, rows, classes),
    sampleCount: random.int(50),
    labelCounts: Array.from({ length: classes }, () => random.int(5)),
  }));
  const k = random.int(n);
  const i = random.int(rows * classes);
  switch (damage) {
    case 1:
      list[k]!.values[i] = Number.NaN;
      break;
    case 2:
      list[k]!.values[i] = random.next() < 0.5 ? Infinity : -Infinity;
      break;
    case 3: // opposite infinities in one coordinate: the sum is NaN, not ±Inf
      list[k]!.values[i] = Infinity;
      list[(k + 1) % n]!.values[i] = -Infinity;
      break;
    case 4:
      if (n > 1) list[k]!.participant = list[(k + 1 + random.int(n - 1)) % n]!.participant;
      break;
    case 5:
      list[k]!.values = list[k]!.values.subarray(1);
      break;
    case 6: // two faults: which one is named depends on the order the checks run in
      list[k]!.values[i] = Number.NaN;
      list[(k + 1) % n]!.participant = list[(k + 2) % n]!.participant;
      break;
    case 7:
      delete list[k]!.sampleCount;
      delete list[(k + 1) % n]!.labelCounts;
      break;
    case 8:
      list[k]!.values.fill(-0);
      list[(k + 1) % n]!.values[i] = 3.4e38;
      break;
    default:
      break;
  }
  return list;
}

describe('checks fused with the sum', () => {
  it('checkedSum accepts, sums and refuses exactly as checkContributions then sumOf', () => {
    const random = new SeededRandom(5);
    let refused = 0;
    for (let trial = 0; trial < 3_000; trial++) {
      const list = contributions(random, 2 + random.int(6), trial % 9);
      const options = trial % 50 === 0 ? { rows: 0, classes: 3 } : OPTIONS;
      const expected = outcome(() => sumOf(checkContributions('mean', list, options)));
      const got = outcome(() => checkedSum('mean', list, options).sum);
      if (typeof expected === 'string') {
        refused++;
        expect(got, `trial ${trial}`).toBe(expected);
      } else {
        expect(bits(got as Float64Array), `trial ${trial}`).toEqual(bits(expected));
      }
    }
    expect(refused).toBeGreaterThan(1_000);
  });

  it('a float64 sum of float32 values is finite exactly when every value is', () => {
    const extremes = [3.4028234663852886e38, -3.4028234663852886e38, 1e-45, -0, 0];
    const many = Array.from({ length: 1000 }, () => Float32Array.from(extremes));
    expect(firstNonFiniteSum(sumOf(many))).toBe(-1);
    for (const bad of [Number.NaN, Infinity, -Infinity]) {
      const list = many.map((v) => v.slice());
      list[500]![2] = bad;
      expect(firstNonFiniteSum(sumOf(list))).toBe(2);
    }
  });

  it('every aggregator gives the old results and the old errors', () => {
    const random = new SeededRandom(6);
    for (let trial = 0; trial < 600; trial++) {
      const list = contributions(random, 2 + random.int(6), trial % 9);
      for (const name of AGGREGATOR_NAMES) {
        const expected = outcome(() => legacyAggregator(name)(list, OPTIONS));
        const got = outcome(() => AGGREGATORS[name](list, OPTIONS));
        if (typeof expected === 'string') expect(got, `${name}, trial ${trial}`).toBe(expected);
        else expect(bits(got as Float32Array), `${name}, trial ${trial}`).toEqual(bits(expected));
      }
    }
  });
});

describe('leave-one-out aggregates checked once', () => {
  it('give every aggregator the old targets, ensemble and errors, for all n and for one left out', () => {
    const random = new SeededRandom(7);
    for (let trial = 0; trial < 300; trial++) {
      const list = contributions(random, 1 + random.int(6), trial % 9);
      for (const name of AGGREGATOR_NAMES) {
        const label = `${name}, trial ${trial}`;
        const expected = outcome(() => legacyLeaveOneOutAggregates(name, list, OPTIONS));
        const got = outcome(() => leaveOneOutAggregates(name, list, OPTIONS));
        const both = outcome(() => leaveOneOutAndEnsemble(name, list, OPTIONS));
        if (typeof expected === 'string') {
          expect(got, label).toBe(expected);
          expect(both, label).toBe(expected);
        } else {
          const targets = got as Map<string, Float32Array>;
          expect([...targets.keys()], label).toEqual([...expected.keys()]);
          for (const [p, target] of expected) expect(bits(targets.get(p)!), `${label}, ${p}`).toEqual(bits(target));
          const combined = both as { targets: Map<string, Float32Array>; ensemble: Float32Array };
          for (const [p, target] of expected) expect(bits(combined.targets.get(p)!), `${label}, ${p}`).toEqual(bits(target));
          expect(bits(combined.ensemble), label).toEqual(bits(legacyAggregator(name)(list, OPTIONS)));
        }
        const someone = random.next() < 0.2 ? 'nobody' : list[random.int(list.length)]!.participant;
        const one = outcome(() => legacyAggregateExcluding(name, list, someone, OPTIONS));
        const oneNow = outcome(() => aggregateExcluding(name, list, someone, OPTIONS));
        if (typeof one === 'string') expect(oneNow, `${label}, without ${someone}`).toBe(one);
        else expect(bits(oneNow as Float32Array), `${label}, without ${someone}`).toEqual(bits(one));
      }
    }
  });

  it('the dml strategy sends the old targets and journals the old ensemble', () => {
    const random = new SeededRandom(8);
    for (const aggregator of AGGREGATOR_NAMES) {
      const strategy = createStrategy('dml', { referenceSize: 4, referencePerRound: 4, seed: 1, numClasses: 3, aggregator });
      for (let trial = 0; trial < 40; trial++) {
        const list = contributions(random, 1 + random.int(6), trial % 2 === 0 ? 0 : 8).map((c) => ({ ...c, kind: 'reference-predictions' as const }));
        const learners = list.map((c) => c.participant).filter(() => random.next() < 0.8);
        const expected = outcome(() => legacyDml(aggregator, list, learners, OPTIONS));
        const got = outcome(() => strategy.aggregate(list, learners, 4));
        if (typeof expected === 'string') {
          expect(got, aggregator).toBe(expected);
          continue;
        }
        const now = got as ReturnType<typeof strategy.aggregate>;
        expect(bits(now.ensemble!), aggregator).toEqual(bits(expected.ensemble));
        expect([...now.targets.keys()]).toEqual([...expected.targets.keys()]);
        for (const [p, target] of expected.targets) {
          if (target === null) expect(now.targets.get(p)).toBeNull();
          else expect(bits(now.targets.get(p)!.values), `${aggregator}, ${p}`).toEqual(bits(target.values));
        }
      }
    }
  });
});

describe('fd from one sum', () => {
  const C = 4;
  const fd = createStrategy('fd', { referenceSize: 0, referencePerRound: 0, seed: 1, numClasses: C });

  function uploads(random: SeededRandom, n: number, values: (k: number, e: number) => number): Upload[] {
    return Array.from({ length: n }, (_, k) => ({
      participant: `p${k}`,
      kind: 'class-logits' as const,
      values: Float32Array.from({ length: C * C }, (_, e) => values(k, e)),
      // Class 3 is held by nobody; the others by most.
      labelCounts: Array.from({ length: C }, (_, c) => (c === 3 || random.next() < 0.2 ? 0 : 1 + random.int(40))),
    }));
  }

  function expectSame(list: Upload[], learners: string[], label: string): void {
    const expected = legacyFd(list, learners, C);
    const got = fd.aggregate(list, learners, 0);
    if (expected.ensemble === null) expect(got.ensemble, label).toBeNull();
    else expect(bits(got.ensemble!), label).toEqual(bits(expected.ensemble));
    expect([...got.targets.keys()], label).toEqual([...expected.targets.keys()]);
    for (const [p, target] of expected.targets) {
      const now = got.targets.get(p)!;
      if (target === null) {
        expect(now, `${label}, ${p}`).toBeNull();
        continue;
      }
      expect(bits(now.values), `${label}, ${p}`).toEqual(bits(target.values));
      expect(now.counts, `${label}, ${p}`).toEqual(target.counts);
      expect(now.shape).toEqual(target.shape);
    }
  }

  it('gives every learner the teacher summed over the others, to the bit, for ordinary logits', () => {
    const random = new SeededRandom(9);
    for (const n of [1, 2, 3, 10, 60]) {
      const list = uploads(random, n, () => (random.next() - 0.5) * 16);
      // Learners: most contributors, and one that contributed nothing (it gets everyone's teacher).
      expectSame(list, [...list.map((c) => c.participant).filter(() => random.next() < 0.9), 'outsider'], `n=${n}`);
    }
    expectSame([], ['p0'], 'no contributions');
  });

  it('stays exact where S − own would round: tiny values beside large ones, signed zeros, huge logits', () => {
    const random = new SeededRandom(10);
    const awkward = [1e-30, -1e-30, 3e38, -3e38, 1, 2 ** -24, -0, 0, 1e-45, 12345.678];
    const list = uploads(random, 12, () => awkward[random.int(awkward.length)]!);
    // The case is a real one: somewhere the shortcut (S − own)/(holders − 1) differs from the
    // sum over the others, so the exactness test must have sent that element the long way.
    let differs = false;
    for (const learner of list) {
      const others = list.filter((c) => c !== learner);
      for (let c = 0; c < C; c++) {
        if (learner.labelCounts![c] === 0) continue;
        const holders = others.filter((o) => o.labelCounts![c] !== 0);
        for (let k = 0; k < C; k++) {
          const e = c * C + k;
          let sequential = 0;
          for (const o of holders) sequential += o.values[e]!;
          let total = 0;
          for (const o of list) if (o.labelCounts![c] !== 0) total += o.values[e]!;
          if (holders.length > 0 && Math.fround(sequential / holders.length) !== Math.fround((total - learner.values[e]!) / holders.length)) differs = true;
        }
      }
    }
    expect(differs).toBe(true);
    expectSame(list, list.map((c) => c.participant), 'awkward values');
  });

  it('stays exact on both sides of the exactness test: ±1 beside 2^-k, all with full 24-bit mantissas', () => {
    // With every mantissa bit in use, a value's ulp is its lowest bit, so the test's bound and
    // the point where float64 sums start to round lie within two bits of each other: k from 15
    // to 40 crosses both, and a bound a few bits too loose would let a rounded shortcut through.
    const random = new SeededRandom(11);
    const full = 1 + 2 ** -23;
    for (let trial = 0; trial < 300; trial++) {
      const list = uploads(random, 3 + random.int(8), () => [full, -full, 3 * full, full * 2 ** -(15 + random.int(26))][random.int(4)]!);
      expectSame(list, list.map((c) => c.participant), `trial ${trial}`);
    }
  });

  it('falls back to the old sums for counts that are not whole numbers', () => {
    const random = new SeededRandom(12);
    const list = uploads(random, 5, () => random.next());
    list[2]!.labelCounts = [0.1, 0.2, 0.3, 0];
    expectSame(list, list.map((c) => c.participant), 'fractional counts');
  });
});
