/**
 * A server strategy: how a session configures each round and aggregates the knowledge that
 * arrives. It meets the participant's procedure only through protocol types.
 */
import type { Contribution, Knowledge } from '../../protocol/index.js';
import { aggregatorFor } from '../aggregators/index.js';
import { sampleReferencePerRound } from './reference-ids.js';

export type { Contribution };
export type { Knowledge } from '../../protocol/index.js';

export interface RoundPlan {
  /** Reference sample ids every participant predicts on (empty when no reference set is used). */
  referenceIds: number[];
}

/** What one participant learns from in a round. */
export interface Target {
  values: Float32Array;
  shape: number[];
  /** Per-class sample counts behind the target (class-logits). */
  counts?: number[];
}

export interface Aggregate {
  /** What each learning contributor receives; null when it has no peers to learn from. */
  targets: Map<string, Target | null>;
  /** One aggregate over all contributors, for metrics and the journal (null when none applies). */
  ensemble: Float32Array | null;
}

export interface StrategySettings {
  referenceSize: number;
  referencePerRound: number;
  seed: number;
  numClasses: number;
  /** The aggregator a prediction-based strategy combines contributions with (server/aggregators). */
  aggregator?: string;
  /** Sharpening temperature of ERA (DS-FL), 0 < T < 1. */
  sharpenTemperature?: number;
  /** Fraction trimmed on each side by the trimmed mean. */
  trimFraction?: number;
  /** Tokens per reference window, in sessions of per-token knowledge (reference-token-predictions). */
  positions?: number;
}

/** What a strategy does each round; its descriptor says what it is. */
export interface StrategyRounds {
  configureRound(round: number): RoundPlan;
  /**
   * Aggregates one round's validated contributions. `learners` are the contributors that get a
   * target (teacher-only participants contribute but never learn).
   */
  aggregate(contributions: readonly Contribution[], learners: readonly string[], rows: number): Aggregate;
}

/** Each algorithm's session defaults: the settings its paper uses or that we measured to work. */
export interface AlgorithmDefaults {
  temperature: number;
  alpha: number;
  aggregator?: string;
  sharpenTemperature?: number;
}

/**
 * One algorithm's server side, as the registry (index.ts) knows it: a strategy file exports one
 * of these and the registry lists it on one line. The session picks its mode from it; the CLIs'
 * choices, a config's defaults and the README's table all derive from the descriptors.
 */
export interface StrategyDescriptor {
  readonly name: string;
  /** Synchronous rounds with a barrier, or asynchronous exchange with checkpoints (co-distillation). */
  readonly mode: 'sync' | 'async';
  readonly knowledge: Knowledge;
  readonly defaults: AlgorithmDefaults;
  /** One line for tables and --help: the method and its source. */
  readonly summary: string;
  create(settings: StrategySettings): StrategyRounds;
  /**
   * What a participant makes of a secure round's sum S over n members (server/secure-rounds.ts),
   * for an algorithm that works from sums: 'others', its leave-one-out (S − own)/(n − 1); 'all',
   * the mean S/n. Absent: the algorithm cannot run under secure aggregation.
   */
  readonly secureTargets?: 'others' | 'all';
  /**
   * True for an algorithm that also runs on language models: with the session's tokenizer and
   * positions set, it exchanges reference-token-predictions ([rows, positions, vocab]) in place
   * of its reference-predictions.
   */
  readonly perToken?: true;
}

/** A strategy at work in a session: its descriptor's identity and its rounds. */
export interface Strategy extends StrategyRounds {
  readonly name: string;
  readonly knowledge: Knowledge;
  readonly mode: 'sync' | 'async';
}

/** The options an aggregator takes, from a strategy's settings, for a round of `rows` samples. */
export function aggregatorOptions(settings: StrategySettings, rows: number) {
  return { rows, classes: settings.numClasses, temperature: settings.sharpenTemperature, trimFraction: settings.trimFraction };
}

/**
 * Rounds in which every learner gets the one aggregate of all contributions on the round's
 * reference rows (DS-FL, FedMD, KDCL, co-distillation's pull), by the session's aggregator or
 * the algorithm's own; the reference ids sampled per round unless `configureRound` says otherwise.
 */
export function ensembleForAll(settings: StrategySettings, defaultAggregator: string, configureRound: StrategyRounds['configureRound'] = sampleReferencePerRound(settings)): StrategyRounds {
  const aggregator = aggregatorFor(settings.aggregator ?? defaultAggregator);
  return {
    configureRound,
    // Per token (positions set): every position of every window is one distribution over the vocabulary.
    aggregate: (contributions, learners, rows) => {
      const { positions } = settings;
      const shape = positions === undefined ? [rows, settings.numClasses] : [rows, positions, settings.numClasses];
      return sameTargetForAll(aggregator(contributions, aggregatorOptions(settings, positions === undefined ? rows : rows * positions)), shape, learners);
    },
  };
}

/** One aggregate sent to every learner alike (DS-FL, FedMD, FedAvg, co-distillation's pull). */
export function sameTargetForAll(values: Float32Array, shape: number[], learners: readonly string[]): Aggregate {
  const target = { values, shape };
  return { targets: new Map(learners.map((p) => [p, target])), ensemble: values };
}
