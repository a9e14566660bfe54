/**
 * Which sessions can run under secure aggregation, and why the others cannot: the coordinator
 * then sees only sums (server/secure-rounds.ts), so the algorithm must build its targets from a
 * sum (its descriptor's secureTargets) and its aggregator must be a plain mean of the values.
 */
import { MAX_SECURE_MEMBERS, SECURE_KINDS } from '../protocol/secure/index.js';
import { aggregatorDescriptor, isAggregatorName } from './aggregators/index.js';
import { strategyDescriptor } from './strategies/index.js';

export interface SecureAggregationSettings {
  /** Shares that rebuild a member's secret (Shamir's t): any t survivors can unmask; t − 1 colluding with the coordinator learn nothing. */
  threshold: number;
}

/** Everything wrong with running this session under secure aggregation; empty when it can. */
export function secureAggregationProblems(
  c: { algorithm: string; aggregator?: string; minParticipants: number; secureAggregation: SecureAggregationSettings },
  contributors: number,
): string[] {
  const problems: string[] = [];
  const { threshold } = c.secureAggregation;
  if (contributors > MAX_SECURE_MEMBERS) {
    problems.push(`secure aggregation holds at most ${MAX_SECURE_MEMBERS} contributors (fixed-point sums and Shamir's GF(2^8) shares); the session lists ${contributors}`);
  }
  if (!(Number.isInteger(threshold) && threshold >= 2 && threshold <= contributors)) {
    problems.push(`secureAggregation.threshold must be an integer in [2, ${contributors}] (the contributors; got ${threshold})`);
  }
  let descriptor;
  try {
    descriptor = strategyDescriptor(c.algorithm);
  } catch {
    return problems; // the unknown algorithm is reported where the session is created
  }
  const workable = 'dml and fd (leave-one-out from the sum), fedmd, kdcl, and dsfl with --aggregator mean (the mean of all)';
  if (descriptor.mode !== 'sync' || descriptor.secureTargets === undefined || !SECURE_KINDS.includes(descriptor.knowledge as never)) {
    problems.push(`secure aggregation cannot run ${c.algorithm}: it does not build its targets from a sum of ${descriptor.knowledge === 'none' ? 'knowledge (it exchanges none)' : descriptor.knowledge}; it runs ${workable}`);
    return problems;
  }
  if (descriptor.knowledge === 'class-logits') return problems; // FD sums per-class logits and counts; it has no aggregator
  const name = c.aggregator ?? descriptor.defaults.aggregator ?? 'mean';
  if (!isAggregatorName(name)) return problems; // reported by the aggregator checks
  const aggregator = aggregatorDescriptor(name);
  if (aggregator.needsIndividualValues) {
    problems.push(`aggregator "${name}" needs every participant's individual values, and under secure aggregation the coordinator sees only their sum: use mean (or mean-logits for logits)`);
  } else if (!aggregator.plainMean) {
    problems.push(`aggregator "${name}" weights or reshapes each contribution before combining, which a plain sum cannot give${c.aggregator === undefined ? ` (it is ${c.algorithm}'s default)` : ''}: use mean (or mean-logits for logits) under secure aggregation`);
  }
  return problems;
}
