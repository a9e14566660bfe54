/**
 * Every participant must predict on the same reference rows: a participant joins with its
 * reference set's row count and SHA-256, and the coordinator refuses one that is not the
 * session's (the config's digest, or the first participant's) — at the join, naming both.
 */
import { describe, expect, it } from 'vitest';
import { referenceDigest, sha256Hex } from '../../protocol/index.js';
import { config, coordinatorPerTest, predictions, REFERENCE } from './raw-participant.js';
import { createHash } from 'node:crypto';

const features = (seed: number) => predictions(seed, REFERENCE); // any float32 rows stand in for images
const claim = (seed: number, rows = REFERENCE) => ({ rows, digest: referenceDigest(features(seed)) });

describe('the reference set is checked at the join', () => {
  const fixture = coordinatorPerTest();
  const participant = (id: string) => fixture.participant(id);

  it('the first participant fixes the digest; another set is refused with both digests named, the same set admitted', async () => {
    fixture.coordinator.createSession(config({ minToStart: 3 }));
    await participant('a').join('test', 'participant', claim(1));
    await expect(participant('b').join('test', 'participant', claim(2))).rejects.toThrow(
      new RegExp(`^E_REFERENCE: b's reference set has digest ${claim(2).digest.slice(0, 12)}…; session test's is ${claim(1).digest.slice(0, 12)}… \\(from a\\)`),
    );
    await expect(participant('c').join('test', 'participant', claim(1))).resolves.toMatchObject({ participant: 'c' });
    await expect(participant('b').join('test', 'participant', claim(1, REFERENCE - 1))).rejects.toThrow(/^E_REFERENCE: b's reference set holds 3 rows; session test's holds 4$/);
  });

  it('a digest in the session config is the one every participant must have', async () => {
    fixture.coordinator.createSession(config({ referenceDigest: claim(5).digest }));
    await expect(participant('a').join('test', 'participant', claim(1))).rejects.toThrow(/\(from the session config\)/);
    await expect(participant('b').join('test', 'participant', claim(5))).resolves.toMatchObject({ participant: 'b' });
  });

  it('a session without a reference set ignores what a site holds', async () => {
    fixture.coordinator.createSession(config({ algorithm: 'fd', referenceSize: 0, referencePerRound: 0 }));
    await expect(participant('a').join('test', 'participant', claim(1))).resolves.toMatchObject({ participant: 'a' });
  });

  it('digests as SHA-256 does', () => {
    const bytes = new Uint8Array(features(3).buffer);
    expect(sha256Hex(bytes)).toBe(createHash('sha256').update(bytes).digest('hex'));
    for (const n of [0, 55, 56, 64, 119, 1000]) {
      const b = Uint8Array.from({ length: n }, (_, i) => (i * 7 + n) & 255);
      expect(sha256Hex(b), `${n} bytes`).toBe(createHash('sha256').update(b).digest('hex'));
    }
  });
});
