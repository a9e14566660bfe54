/**
 * The distiller role over real sockets: it contributes nothing, receives the ensemble of every
 * contribution each round (not a leave-one-out target), owes its report like a learner, and is
 * refused where a session has no reference-set ensemble to give it.
 */
import { describe, expect, it } from 'vitest';
import { packTensor, unpackTensor } from '../../protocol/index.js';
import { meanOf } from '../../server/aggregators/sums.js';
import { checkSessionConfig } from '../../server/session-config.js';
import { C, config, coordinatorPerTest, predictions, RawParticipant, REFERENCE, refusalCode, until } from './raw-participant.js';

const withDistiller = (overrides = {}) =>
  config({ participants: [...['a', 'b', 'c'].map((id) => ({ id, token: `secret-${id}` })), { id: 'd', token: 'secret-d', role: 'distiller' as const }], ...overrides });

describe('a distiller', () => {
  const fixture = coordinatorPerTest({ maxMessageBytes: 64 * 1024 });
  const connect = (id: string) => fixture.participant(id);

  it('receives the mean of every contribution, uploads nothing, and holds the round until it reports', async () => {
    const session = fixture.coordinator.createSession(withDistiller({ rounds: 2 }));
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map(connect) as [RawParticipant, RawParticipant, RawParticipant, RawParticipant];
    await Promise.all([a.join(), b.join(), c.join(), d.join('test', 'distiller')]);
    await until(() => [a, b, c, d].every((p) => p.rounds.length === 1), 'round 1 to open, the distiller told too');
    expect(refusalCode(await d.upload({ values: packTensor(predictions(9), [REFERENCE, C], 'float32') }))).toBe('E_SCHEMA');
    // The quorum and "everyone uploaded" count the three contributors, not the distiller.
    for (const [p, seed] of [[a, 0], [b, 1], [c, 2]] as const) {
      expect(refusalCode(await p.upload({ values: packTensor(predictions(seed), [REFERENCE, C], 'float32') }))).toBe('ok');
    }
    await until(() => [a, b, c, d].every((p) => p.targets.length === 1), 'targets');
    expect(unpackTensor(d.targets[0]!.target!)).toEqual(meanOf([predictions(0), predictions(1), predictions(2)]));
    expect(d.targets[0]!.contributors).toBe(3);
    // The others' targets are still the leave-one-out means, not the ensemble.
    expect(unpackTensor(a.targets[0]!.target!)).toEqual(meanOf([predictions(1), predictions(2)]));
    for (const p of [a, b, c]) expect(refusalCode(await p.report(1))).toBe('ok');
    expect(session.currentRound).toBe(1); // the distiller has not reported yet
    expect(refusalCode(await d.report(1))).toBe('ok');
    await until(() => session.history.length === 1, 'round 1 to close');
    expect(session.history[0]!.reports.d).toEqual({ accuracy: 0.5 });
    expect(session.history[0]!.contributors).toEqual(['a', 'b', 'c']);
    expect(session.status().participants.find((p) => p.id === 'd')).toEqual({ id: 'd', state: 'active', role: 'distiller' });
  });

  it('is refused where there is no reference-set ensemble to learn from, naming why', async () => {
    fixture.coordinator.createSession(withDistiller({ id: 'fd', algorithm: 'fd', referenceSize: 0, referencePerRound: 0 }));
    const d = connect('d');
    await expect(d.join('fd', 'distiller')).rejects.toThrow(/^E_AUTH: session fd \(fd\) cannot take a distiller: it exchanges class-logits, not predictions on a shared reference set$/);
  });

  it('does not count towards a session\'s quorum', () => {
    expect(() => checkSessionConfig(withDistiller({ minParticipants: 4 }))).toThrow(/minParticipants must be in \[1, 3\] \(distillers upload nothing and do not count\)/);
    expect(() => checkSessionConfig(withDistiller({ minParticipants: 3 }))).not.toThrow();
  });
});
