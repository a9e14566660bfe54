/**
 * The aggregator registry: one line per aggregator (each file exports its descriptor), plus the
 * leave-one-out forms that DML-style strategies send each participant (the aggregate of the
 * *others*), derived from the descriptors.
 */
import { checkContributions, checkedSum, type AggregatorDescriptor, type AggregatorOptions, type AggregatorSettings, type Contribution } from './aggregator.js';
import { entropyWeightedAggregator } from './entropy-weighted.js';
import { eraAggregator } from './era.js';
import { labelWeightedAggregator } from './label-weighted.js';
import { meanLogitsAggregator } from './mean-logits.js';
import { meanAggregator } from './mean.js';
import { medianAggregator } from './median.js';
import { sampleWeightedAggregator } from './sample-weighted.js';
import { leaveOneOutFromSum, meanFromSum } from './sums.js';
import { trimmedMeanAggregator } from './trimmed-mean.js';

export type { Aggregator, AggregatorDescriptor, AggregatorOptions, Contribution } from './aggregator.js';
export { ERA_DEFAULT_TEMPERATURE } from './era.js';
export { TRIMMED_MEAN_DEFAULT_FRACTION, trimmedPerSide } from './trimmed-mean.js';

const DESCRIPTORS = [
  meanAggregator,
  meanLogitsAggregator,
  sampleWeightedAggregator,
  labelWeightedAggregator,
  entropyWeightedAggregator,
  eraAggregator,
  medianAggregator,
  trimmedMeanAggregator,
] as const;

export type AggregatorName = (typeof DESCRIPTORS)[number]['name'];

const BY_NAME: ReadonlyMap<string, AggregatorDescriptor> = new Map(DESCRIPTORS.map((d) => [d.name, d]));

export const AGGREGATORS = Object.fromEntries(DESCRIPTORS.map((d) => [d.name, d.aggregate])) as Readonly<Record<AggregatorName, AggregatorDescriptor['aggregate']>>;

export const AGGREGATOR_NAMES: readonly AggregatorName[] = DESCRIPTORS.map((d) => d.name);

export function isAggregatorName(name: string): name is AggregatorName {
  // A Map, not an object's keys: "constructor" or "toString" must not pass for an aggregator.
  return BY_NAME.has(name);
}

/** The descriptor of the aggregator called `name`, or an error that lists the names there are. */
export function aggregatorDescriptor(name: string): AggregatorDescriptor {
  const descriptor = BY_NAME.get(name);
  if (descriptor === undefined) throw new Error(`unknown aggregator "${name}"; choose one of ${AGGREGATOR_NAMES.join(', ')}`);
  return descriptor;
}

/** The aggregator called `name`, or an error that lists the names there are. */
export function aggregatorFor(name: string): AggregatorDescriptor['aggregate'] {
  return aggregatorDescriptor(name).aggregate;
}

/** What is wrong with a session's settings for the aggregator `name` (an unknown name included). */
export function aggregatorConfigProblems(name: string, settings: AggregatorSettings): string[] {
  const descriptor = BY_NAME.get(name);
  if (descriptor === undefined) return [`unknown aggregator "${name}"; choose one of ${AGGREGATOR_NAMES.join(', ')}`];
  return descriptor.configProblems?.(settings) ?? [];
}

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
  const descriptor = aggregatorDescriptor(name);
  // The whole set is checked, the left-out contribution included: a bad upload is refused the
  // same way whichever target is being computed. Once: the others pass every check the whole
  // set passed, so the aggregator's core runs on them without checking them again.
  const checked = descriptor.plainMean ? checkedSum(name, contributions, options) : { arrays: checkContributions(name, contributions, options), sum: undefined };
  const { arrays } = checked;
  const index = contributions.findIndex((c) => c.participant === participant);
  if (index < 0) return checked.sum !== undefined ? meanFromSum(checked.sum, arrays.length) : descriptor.core(contributions, arrays, options);
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
  return descriptor.core(without(contributions, index), without(arrays, index), options);
}

/**
 * Every participant's leave-one-out aggregate, keyed by participant. For the plain means all n
 * targets come from one float64 sum, O(n·P·C) in all (leaveOneOutMeans); an aggregator with a
 * leave-one-out of its own (the median and the trimmed mean: one sort per coordinate,
 * O(n log n·P·C)) uses it; the others are recomputed n times over n − 1 contributions,
 * O(n²·P·C), after one check of the whole set.
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
  const descriptor = aggregatorDescriptor(name);
  if (contributions.length < 2) {
    throw new Error(`${name}: leave-one-out aggregates need at least 2 contributors; got ${contributions.length}`);
  }
  const byParticipant = (list: readonly Float32Array[]) => new Map(list.map((target, k) => [contributions[k]!.participant, target]));
  if (descriptor.plainMean) {
    const { arrays, sum } = checkedSum(name, contributions, options);
    return { targets: byParticipant(leaveOneOutFromSum(sum, arrays)), ensemble: withEnsemble ? meanFromSum(sum, arrays.length) : undefined };
  }
  const arrays = checkContributions(name, contributions, options);
  const targets = descriptor.leaveOneOut !== undefined
    ? descriptor.leaveOneOut(arrays, options)
    : contributions.map((_, k) => descriptor.core(without(contributions, k), without(arrays, k), options));
  return { targets: byParticipant(targets), ensemble: withEnsemble ? descriptor.core(contributions, arrays, options) : undefined };
}

function without<T>(items: readonly T[], index: number): T[] {
  return items.filter((_, k) => k !== index);
}
