export { Coordinator, type CoordinatorOptions } from './coordinator.js';
export { Session, type PeerLink, type RoundRecord, type SessionConfig, type ParticipantMetrics } from './session.js';
export { createStrategy, STRATEGIES, type Strategy } from './strategies/index.js';
export { leaveOneOutMeans, meanOf, sumOf } from './aggregators/sums.js';
export { AGGREGATORS, AGGREGATOR_NAMES, aggregatorFor, aggregateExcluding, leaveOneOutAggregates, type AggregatorName } from './aggregators/index.js';
export { ALGORITHM_DEFAULTS, type AlgorithmDefaults } from './strategies/index.js';
