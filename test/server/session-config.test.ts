/** A session refuses a config that would not do what it says, naming the field and the fix. */
import { describe, expect, it } from 'vitest';
import { Session, type SessionConfig } from '../../server/session.js';

function config(overrides: Partial<SessionConfig>, participants = 10): SessionConfig {
  return {
    id: 'cfg', algorithm: 'dml', rounds: 1, minParticipants: 1, numClasses: 3, referenceSize: 4, referencePerRound: 4, temperature: 1,
    alpha: 0.5, uploadDtype: 'float32', roundTimeoutMs: 1000, trainTimeoutMs: 1000, onRoundFailure: 'continue', seed: 1, maxMessageBytes: 1 << 16,
    participants: Array.from({ length: participants }, (_, i) => ({ id: `p${i}`, token: `token-${i}` })),
    ...overrides,
  };
}

describe('session config', () => {
  it('refuses a trimmed mean that would trim nothing of the others, and says what fraction would', () => {
    expect(() => new Session(config({ aggregator: 'trimmed-mean' }))).toThrow(
      /trimFraction 0\.1 trims ⌊0\.1 × 9⌋ = 0 of the 9 other participants' values: the trimmed mean would be the plain mean; set trimFraction ≥ 0\.112/,
    );
    expect(() => new Session(config({ aggregator: 'trimmed-mean', trimFraction: 0.112 }))).not.toThrow();
    expect(() => new Session(config({ aggregator: 'trimmed-mean' }, 11))).not.toThrow(); // ⌊0.1 × 10⌋ = 1
    expect(() => new Session(config({ aggregator: 'median' }))).not.toThrow();
  });

  it('names every problem at once', () => {
    expect(() => new Session(config({ rounds: 0, temperature: -1, minParticipants: 11 }))).toThrow(
      /rounds must be an integer ≥ 1 \(got 0\); minParticipants must be in \[1, 10\] \(got 11\); temperature must be > 0 \(got -1\)/,
    );
  });
});
