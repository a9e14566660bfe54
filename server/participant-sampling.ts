import { createHash } from 'node:crypto';

/**
 * Participant sampling per round, with Flower's semantics (FedAvg's C·K clients, McMahan et al.
 * 2017; Flower's fraction_fit / min_fit_clients): each round takes `count` of the available
 * contributors, or ⌊fraction · available⌋ of them, never fewer than `min` (the quorum when
 * omitted) nor more than are available.
 */
export interface SamplingSettings {
  /** Share of the available contributors sampled each round, in (0, 1]. Exactly one of fraction and count. */
  fraction?: number;
  /** Contributors sampled each round. */
  count?: number;
  /** The fewest sampled in a round (while that many are available); the session's quorum when omitted. */
  min?: number;
}

/** How many of `available` contributors a round samples. */
export function sampleSize(sampling: SamplingSettings, available: number, quorum: number): number {
  const wanted = sampling.count ?? Math.floor((sampling.fraction ?? 1) * available);
  return Math.min(available, Math.max(wanted, sampling.min ?? quorum));
}

/**
 * The contributors a round samples among `available`, in the order given. Ranking ids by
 * sha256(seed, round, id) needs no random-number state to keep or journal (as the reference
 * ids of a round, strategies/reference-ids.ts): a coordinator restarted on its journal draws the
 * same sample for the same round from the same connected contributors, and any two sets of
 * candidates are ranked consistently.
 */
export function sampleParticipants(available: readonly string[], sampling: SamplingSettings, quorum: number, seed: number, round: number): string[] {
  const n = sampleSize(sampling, available.length, quorum);
  if (n >= available.length) return [...available].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const rank = new Map(available.map((id) => [id, createHash('sha256').update(`participant:${seed}:${round}:${id}`).digest().readUInt32BE(0)]));
  const chosen = new Set(
    [...available].sort((a, b) => rank.get(a)! - rank.get(b)! || (a < b ? -1 : a > b ? 1 : 0)).slice(0, n),
  );
  // In id order, as the round record lists them whatever order the participants connected in.
  return available.filter((id) => chosen.has(id)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** What is wrong with a session's sampling settings, for checkSessionConfig: one sentence each. */
export function samplingProblems(sampling: SamplingSettings, contributors: number, quorum: number): string[] {
  const problems: string[] = [];
  const { fraction, count, min } = sampling;
  if ((fraction === undefined) === (count === undefined)) problems.push(`sampling takes exactly one of fraction and count (got ${fraction === undefined ? 'neither' : 'both'})`);
  if (fraction !== undefined && !(typeof fraction === 'number' && fraction > 0 && fraction <= 1)) problems.push(`sampling.fraction must be in (0, 1] (got ${fraction})`);
  // A round that samples fewer than its quorum could never aggregate: count and min are bounded by the quorum below and the contributors above.
  const bounded = (name: string, value: number | undefined) => {
    if (value !== undefined && !(Number.isInteger(value) && value >= quorum && value <= contributors)) {
      problems.push(`sampling.${name} must be an integer in [${quorum}, ${contributors}]: at least the quorum (minParticipants ${quorum}), since a round with fewer sampled could never aggregate, and at most the ${contributors} contributors (got ${value})`);
    }
  };
  bounded('count', count);
  bounded('min', min);
  return problems;
}
