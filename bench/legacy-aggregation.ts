/**
 * The aggregation paths as they were at commit a04f524, before checks were fused with sums and
 * done once per round, kept so that bench/aggregation.ts can measure each fix against what it
 * replaced in the same run, and so that the tests can hold the new code to the old results, bit
 * for bit. Built from the public aggregators, which still check every contribution on every
 * call, exactly as the old code called them; fd's classTeacher is copied verbatim.
 * Nothing outside bench/ and test/ uses these.
 */
import { leaveOneOutMeans, meanOf, sumOf } from '../server/aggregators/sums.js';
import { checkContributions } from '../server/aggregators/aggregator.js';
import { eraCore } from '../server/aggregators/era.js';
import { AGGREGATORS, aggregatorFor, type Aggregator, type AggregatorName, type AggregatorOptions, type Contribution } from '../server/aggregators/index.js';
import type { Contribution as StrategyContribution } from '../protocol/index.js';

const PLAIN_MEANS: ReadonlySet<string> = new Set(['mean', 'mean-logits']);

/** The mean aggregator before: every value checked for finiteness, then summed. */
export function legacyMean(contributions: readonly Contribution[], options: AggregatorOptions): Float32Array {
  return meanOf(checkContributions('mean', contributions, options));
}

/**
 * The aggregator called `name` as it was: checkContributions (every value scanned), then its
 * math. The means and ERA now fuse the check with their sum; the others are unchanged.
 */
export function legacyAggregator(name: string): Aggregator {
  aggregatorFor(name);
  if (PLAIN_MEANS.has(name)) return (c, o) => meanOf(checkContributions(name, c, o));
  if (name === 'era') return (c, o) => eraCore(c, checkContributions('era', c, o), o);
  return AGGREGATORS[name as AggregatorName];
}

/** aggregateExcluding before: the whole set checked, then the aggregator (which checks the others again). */
export function legacyAggregateExcluding(name: string, contributions: readonly Contribution[], participant: string, options: AggregatorOptions): Float32Array {
  const aggregate = legacyAggregator(name);
  const arrays = checkContributions(name, contributions, options);
  const index = contributions.findIndex((c) => c.participant === participant);
  if (index < 0) return aggregate(contributions, options);
  if (arrays.length < 2) throw new Error(`${name}: ${participant} is the only contributor; there is nobody else to aggregate`);
  if (PLAIN_MEANS.has(name)) {
    const sum = sumOf(arrays);
    const own = arrays[index]!;
    const others = arrays.length - 1;
    const target = new Float32Array(sum.length);
    for (let i = 0; i < sum.length; i++) target[i] = (sum[i]! - own[i]!) / others;
    return target;
  }
  return aggregate(contributions.filter((_, k) => k !== index), options);
}

/** leaveOneOutAggregates before: the means from one sum after a full check; every other aggregator checked 2n times. */
export function legacyLeaveOneOutAggregates(name: string, contributions: readonly Contribution[], options: AggregatorOptions): Map<string, Float32Array> {
  aggregatorFor(name);
  if (contributions.length < 2) throw new Error(`${name}: leave-one-out aggregates need at least 2 contributors; got ${contributions.length}`);
  const targets = new Map<string, Float32Array>();
  if (PLAIN_MEANS.has(name)) {
    const arrays = checkContributions(name, contributions, options);
    leaveOneOutMeans(arrays).forEach((target, k) => targets.set(contributions[k]!.participant, target));
    return targets;
  }
  for (const { participant } of contributions) targets.set(participant, legacyAggregateExcluding(name, contributions, participant, options));
  return targets;
}

/** The dml strategy's aggregate before: every leave-one-out target, then the ensemble, each checking and summing on its own. */
export function legacyDml(name: AggregatorName, contributions: readonly Contribution[], learners: readonly string[], options: AggregatorOptions) {
  const others = contributions.length >= 2 ? legacyLeaveOneOutAggregates(name, contributions, options) : new Map<string, Float32Array>();
  const targets = new Map(
    learners.map((p) => {
      const values = others.get(p);
      return [p, values === undefined ? null : { values, shape: [options.rows, options.classes] }];
    }),
  );
  return { targets, ensemble: legacyAggregator(name)(contributions, options) };
}

/** The fd strategy's aggregate before: each learner's class teacher summed from scratch over the others, O(n²). */
export function legacyFd(contributions: readonly StrategyContribution[], learners: readonly string[], C: number) {
  const targets = new Map(learners.map((p) => [p, classTeacher(contributions.filter((c) => c.participant !== p), C)]));
  return { targets, ensemble: classTeacher(contributions, C)?.values ?? null };
}

function classTeacher(contributions: readonly StrategyContribution[], C: number) {
  if (contributions.length === 0) return null;
  const sum = new Float64Array(C * C);
  const holders = new Array<number>(C).fill(0);
  const counts = new Array<number>(C).fill(0);
  for (const { values, labelCounts } of contributions) {
    for (let c = 0; c < C; c++) {
      const n = labelCounts![c]!;
      if (n === 0) continue;
      holders[c]!++;
      counts[c]! += n;
      for (let k = 0; k < C; k++) sum[c * C + k]! += values[c * C + k]!;
    }
  }
  const values = new Float32Array(C * C);
  for (let c = 0; c < C; c++) {
    if (holders[c] === 0) continue;
    for (let k = 0; k < C; k++) values[c * C + k] = sum[c * C + k]! / holders[c]!;
  }
  return { values, shape: [C, C], counts };
}
