import { createHash } from 'node:crypto';

/**
 * The reference ids of a round: all of them, or a seeded sample of `perRound` without
 * replacement, different each round and identical for the same (seed, round). Ranking ids by a
 * hash needs no random-number state to keep or journal: the round number is enough.
 */
export function referenceIdsForRound(referenceSize: number, perRound: number, seed: number, round: number): number[] {
  const all = Array.from({ length: referenceSize }, (_, i) => i);
  if (perRound >= referenceSize) return all;
  const rank = (id: number) => createHash('sha256').update(`${seed}:${round}:${id}`).digest().readUInt32BE(0);
  const ranks = all.map(rank);
  return all
    .sort((a, b) => ranks[a]! - ranks[b]! || a - b)
    .slice(0, perRound)
    .sort((a, b) => a - b);
}

/** configureRound for the strategies that predict on a seeded sample of the reference set each round. */
export function sampleReferencePerRound(settings: { referenceSize: number; referencePerRound: number; seed: number }) {
  return (round: number) => ({ referenceIds: referenceIdsForRound(settings.referenceSize, settings.referencePerRound, settings.seed, round) });
}
