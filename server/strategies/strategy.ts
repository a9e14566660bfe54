/**
 * A server strategy: how a session configures each round and aggregates the knowledge that
 * arrives. It meets the participant's procedure only through protocol types.
 */
export type Knowledge = 'reference-predictions' | 'none';

export interface RoundPlan {
  /** Reference sample ids every participant predicts on (empty when nothing is exchanged). */
  referenceIds: number[];
}

export interface Aggregate {
  /** What each contributor receives; null when it has no peers to learn from. */
  targets: Map<string, Float32Array | null>;
  /** The full-ensemble mean over all contributors, for metrics. */
  ensemble: Float32Array;
}

export interface StrategySettings {
  referenceSize: number;
  referencePerRound: number;
  seed: number;
}

export interface Strategy {
  readonly name: string;
  readonly knowledge: Knowledge;
  configureRound(round: number): RoundPlan;
  /** Aggregates validated uploads, keyed by participant, each [referenceIds.length × numClasses]. */
  aggregate(uploads: ReadonlyMap<string, Float32Array>): Aggregate;
}
