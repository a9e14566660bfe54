/**
 * The aggregator registry: one line per aggregator, plus the leave-one-out forms that DML-style
 * strategies send each participant (the aggregate of the *others*).
 */
import { leaveOneOutFromSum, meanFromSum } from '../aggregate.js';
import { checkContributions, checkedSum, type Aggregator, type AggregatorCore, type AggregatorOptions, type Contribution } from './aggregator.js';
import { entropyWeighted, entropyWeightedCore } from './entropy-weighted.js';
import { era, eraCore } from './era.js';
import { labelWeighted, labelWeightedCore } from './label-weighted.js';
import { meanLogits, meanLogitsCore } from './mean-logits.js';
import { mean, meanCore } from './mean.js';
import { median, medianCore } from './median.js';
import { sampleWeighted, sampleWeightedCore } from './sample-weighted.js';
import { leaveOneOutMedians, leaveOneOutTrimmedMeans } from './order-statistics.js';
import { trimCount, trimmedMean, trimmedMeanCore } from './trimmed-mean.js';

export type { Aggregator, AggregatorOptions, Contribution } from './aggregator.js';
export { ERA_DEFAULT_TEMPERATURE } from './era.js';
export { TRIMMED_MEAN_DEFAULT_FRACTION, trimmedPerSide } from './trimmed-mean.js';

export type AggregatorName =
  | 'mean'
  | 'mean-logits'
  | 'sample-weighted'
  | 'label-weighted'
  | 'entropy-weighted'
  | 'era'
  | 'median'
  | 'trimmed-mean';

export const AGGREGATORS: Readonly<Record<AggregatorName, Aggregator>> = {
  mean,
  'mean-logits': meanLogits,
  'sample-weighted': sampleWeighted,
  'label-weighted': labelWeighted,
  'entropy-weighted': entropyWeighted,
  era,
  median,
  'trimmed-mean': trimmedMean,
};

/** Each aggregator without checkContributions, for callers that checked the whole set once (leave-one-out). */
const CORES: Readonly<Record<AggregatorName, AggregatorCore>> = {
  mean: meanCore,
  'mean-logits': meanLogitsCore,
  'sample-weighted': sampleWeightedCore,
  'label-weighted': labelWeightedCore,
  'entropy-weighted': entropyWeightedCore,
  era: eraCore,
  median: medianCore,
  'trimmed-mean': trimmedMeanCore,
};

export const AGGREGATOR_NAMES = Object.keys(AGGREGATORS) as readonly AggregatorName[];

export function isAggregatorName(name: string): name is AggregatorName {
  // Object.hasOwn, not `in`: "constructor" or "toString" must not pass for an aggregator.
  return Object.hasOwn(AGGREGATORS, name);
}

/** The aggregator called `name`, or an error that lists the names there are. */
export function aggregatorFor(name: string): Aggregator {
  if (!isAggregatorName(name)) {
    throw new Error(`unknown aggregator "${name}"; choose one of ${AGGREGATOR_NAMES.join(', ')}`);
  }
  return AGGREGATORS[name];
}

/** Aggregators whose aggregate is the plain mean of the values, so that S − own works. */
const PLAIN_MEANS: ReadonlySet<string> = new Set<AggregatorName>(['mean', 'mean-logits']);

/**
 * The aggregate of every contribution except `participant`'s: what a DML-style strategy sends
 * that participant. For the plain means it is (S − p_own)/(n − 1) from one float64 sum (Zhang
 * et al. 2018; the trick of leaveOneOutMeans); every other aggregator is recomputed over the
 * others. A participant that contributed nothing this round is excluded trivially: it gets the
 * aggregate of all contributions. At least one contribution must remain.
 */
export function aggregateExcluding(
  name: AggregatorName | string,
  contributions: readonly Contribution[],
  participant: string,
  options: AggregatorOptions,
): Float32Array {
  aggregatorFor(name);
  const core = CORES[name as AggregatorName];
  // The whole set is checked, the left-out contribution included: a bad upload is refused the
  // same way whichever target is being computed. Once: the others pass every check the whole
  // set passed, so the aggregator's core runs on them without checking them again.
  const plain = PLAIN_MEANS.has(name);
  const checked = plain ? checkedSum(name, contributions, options) : { arrays: checkContributions(name, contributions, options), sum: undefined };
  const { arrays } = checked;
  const index = contributions.findIndex((c) => c.participant === participant);
  if (index < 0) return checked.sum !== undefined ? meanFromSum(checked.sum, arrays.length) : core(contributions, arrays, options);
  if (arrays.length < 2) {
    throw new Error(`${name}: ${participant} is the only contributor; there is nobody else to aggregate`);
  }
  if (checked.sum !== undefined) {
    const { sum } = checked;
    const own = arrays[index]!;
    const others = arrays.length - 1;
    const target = new Float32Array(sum.length);
    for (let i = 0; i < sum.length; i++) target[i] = (sum[i]! - own[i]!) / others;
    return target;
  }
  return core(without(contributions, index), without(arrays, index), options);
}

/**
 * Every participant's leave-one-out aggregate, keyed by participant. For the plain means all n
 * targets come from one float64 sum, O(n·P·C) in all (leaveOneOutMeans); the median and the
 * trimmed mean from one sort per coordinate, O(n log n·P·C); the other aggregators are
 * recomputed n times over n − 1 contributions, O(n²·P·C), after one check of the whole set.
 */
export function leaveOneOutAggregates(
  name: AggregatorName | string,
  contributions: readonly Contribution[],
  options: AggregatorOptions,
): Map<string, Float32Array> {
  return leaveOneOutWithEnsemble(name, contributions, options, false).targets;
}

/**
 * leaveOneOutAggregates and the aggregate of all contributions (what DML journals as its
 * ensemble), from one check of the contributions and, for the plain means, one sum: the same
 * targets and the same ensemble, to the bit, as leaveOneOutAggregates and then the aggregator.
 */
export function leaveOneOutAndEnsemble(
  name: AggregatorName | string,
  contributions: readonly Contribution[],
  options: AggregatorOptions,
): { targets: Map<string, Float32Array>; ensemble: Float32Array } {
  const { targets, ensemble } = leaveOneOutWithEnsemble(name, contributions, options, true);
  return { targets, ensemble: ensemble! };
}

function leaveOneOutWithEnsemble(
  name: AggregatorName | string,
  contributions: readonly Contribution[],
  options: AggregatorOptions,
  withEnsemble: boolean,
): { targets: Map<string, Float32Array>; ensemble?: Float32Array } {
  aggregatorFor(name);
  if (contributions.length < 2) {
    throw new Error(`${name}: leave-one-out aggregates need at least 2 contributors; got ${contributions.length}`);
  }
  const targets = new Map<string, Float32Array>();
  if (PLAIN_MEANS.has(name)) {
    const { arrays, sum } = checkedSum(name, contributions, options);
    leaveOneOutFromSum(sum, arrays).forEach((target, k) => targets.set(contributions[k]!.participant, target));
    return { targets, ensemble: withEnsemble ? meanFromSum(sum, arrays.length) : undefined };
  }
  const core = CORES[name as AggregatorName];
  const arrays = checkContributions(name, contributions, options);
  // The median and the trimmed mean: sorted once per coordinate rather than selected n times, O(n log n).
  const sorted = name === 'median'
    ? leaveOneOutMedians(arrays, options.rows, options.classes)
    : name === 'trimmed-mean'
      ? leaveOneOutTrimmedMeans(arrays, options.rows, options.classes, trimCount(options, arrays.length - 1))
      : undefined;
  if (sorted !== undefined) {
    sorted.forEach((target, k) => targets.set(contributions[k]!.participant, target));
    return { targets, ensemble: withEnsemble ? core(contributions, arrays, options) : undefined };
  }
  contributions.forEach(({ participant }, k) => targets.set(participant, core(without(contributions, k), without(arrays, k), options)));
  return { targets, ensemble: withEnsemble ? core(contributions, arrays, options) : undefined };
}

function without<T>(items: readonly T[], index: number): T[] {
  return items.filter((_, k) => k !== index);
}
