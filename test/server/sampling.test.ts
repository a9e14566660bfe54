/**
 * Participant sampling per round over real sockets: a real coordinator and hand-driven
 * participants. Each round the coordinator draws its sample among the connected contributors,
 * deterministically from (seed, round, id); only the sampled upload, receive targets and report,
 * the others are told to sit the round out. A coordinator restarted on its journal draws the same.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { packTensor } from '../../protocol/index.js';
import { Coordinator } from '../../server/coordinator.js';
import { sampleParticipants, sampleSize } from '../../server/participant-sampling.js';
import { checkSessionConfig, type SessionConfig } from '../../server/session-config.js';
import type { Session } from '../../server/session.js';
import { C, config, coordinatorPerTest, predictions, RawParticipant, REFERENCE, refusalCode, until } from './raw-participant.js';

const IDS = ['a', 'b', 'c', 'd', 'e', 'f'];
const six = (overrides: Partial<SessionConfig> = {}) =>
  config({ participants: IDS.map((id) => ({ id, token: `secret-${id}` })), minParticipants: 2, rounds: 3, ...overrides });

/**
 * Plays one round as the coordinator announced it: the sampled upload and report, the others do
 * nothing (and a sampled-out upload is refused). Returns who was told they were sampled.
 */
async function playRound(session: Session, peers: RawParticipant[], round: number): Promise<string[]> {
  await until(() => peers.every((p) => p.rounds.some((r) => r.round === round)), `round ${round} announced to everyone`);
  const announced = peers.map((p) => ({ p, message: p.rounds.filter((r) => r.round === round).at(-1)! }));
  const sampled = announced.filter(({ message }) => message.sampled === true).map(({ p }) => p);
  for (const { p, message } of announced) {
    if (message.sampled === false) {
      // Told to sit out: no reference ids to predict on, and an upload would be refused.
      expect(message.referenceIds).toEqual([]);
      expect(refusalCode(await p.upload({ round, values: packTensor(predictions(0), [REFERENCE, C], 'float32') }))).toBe('E_ROUND_CLOSED');
    } else {
      expect(message.sampled).toBe(true);
      expect(message.referenceIds).toHaveLength(REFERENCE);
    }
  }
  for (const p of sampled) {
    expect(refusalCode(await p.upload({ round, values: packTensor(predictions(IDS.indexOf(p.id)), [REFERENCE, C], 'float32') }))).toBe('ok');
  }
  await until(() => sampled.every((p) => p.targets.some((t) => t.round === round)), `round ${round}'s targets`);
  for (const p of sampled) expect(refusalCode(await p.report(round))).toBe('ok');
  await until(() => session.history.some((r) => r.round === round), `round ${round} to close`);
  return sampled.map((p) => p.id);
}

describe('participant sampling', () => {
  const fixture = coordinatorPerTest();

  it('samples count participants each round, deterministically, differently across rounds; only they upload, get targets and report', async () => {
    const session = fixture.coordinator.createSession(six({ sampling: { count: 3 }, rounds: 4 }));
    const peers = IDS.map((id) => fixture.participant(id));
    await Promise.all(peers.map((p) => p.join()));
    const samples: string[][] = [];
    for (let round = 1; round <= 4; round++) samples.push(await playRound(session, peers, round));
    await until(() => session.ended && peers.every((p) => p.ended), 'the session to end, and everyone told');
    for (const [i, sample] of samples.entries()) {
      expect(sample).toHaveLength(3);
      // The sample is the one the seeded hash ranking gives: a function of (seed, round, ids) alone.
      expect(sample).toEqual(sampleParticipants(IDS, { count: 3 }, 2, 1, i + 1));
      const record = session.history[i]!;
      expect(record.sampled).toEqual(sample);
      expect(record.contributors).toEqual(sample);
      expect(Object.keys(record.reports).sort()).toEqual(sample);
      expect(record.participants).toEqual(IDS);
    }
    // Different rounds, different samples: not always the same three.
    expect(new Set(samples.map((s) => s.join())).size).toBeGreaterThan(1);
    // Each participant got a target only in the rounds it was sampled for; none sat a round out "late".
    for (const p of peers) {
      expect(p.targets.map((t) => t.round)).toEqual(samples.flatMap((s, i) => (s.includes(p.id) ? [i + 1] : [])));
      expect(p.failures).toEqual([]);
      expect(p.ended).toBe(true);
    }
  });

  it('honours fraction and min: ⌊fraction·n⌋ sampled, never fewer than min', async () => {
    expect(sampleSize({ fraction: 0.5 }, 6, 2)).toBe(3);
    expect(sampleSize({ fraction: 0.2 }, 6, 2)).toBe(2); // ⌊1.2⌋ = 1, raised to the quorum
    expect(sampleSize({ fraction: 0.2, min: 4 }, 6, 2)).toBe(4);
    expect(sampleSize({ count: 5, min: 2 }, 3, 2)).toBe(3); // never more than are connected
    const session = fixture.coordinator.createSession(six({ sampling: { fraction: 0.3, min: 4 }, rounds: 2 }));
    const peers = IDS.map((id) => fixture.participant(id));
    await Promise.all(peers.map((p) => p.join()));
    for (let round = 1; round <= 2; round++) {
      const sample = await playRound(session, peers, round);
      expect(sample).toHaveLength(4); // ⌊0.3·6⌋ = 1 < min 4
      expect(sample).toEqual(sampleParticipants(IDS, { fraction: 0.3, min: 4 }, 2, 1, round));
    }
  });

  it('takes fewer bytes both ways than a round of everyone, by the sample\'s share of the uploads', async () => {
    const bytes: Record<string, { up: number; down: number }> = {};
    // Session ids of one length: each envelope carries it.
    for (const [id, sampling] of [['every', undefined], ['three', { count: 3 }]] as const) {
      const session = fixture.coordinator.createSession(six({ id, rounds: 1, ...(sampling === undefined ? {} : { sampling }) }));
      const peers = IDS.map((p) => new RawParticipant(fixture.coordinator.url, p, `secret-${p}`));
      try {
        await Promise.all(peers.map((p) => p.join(id)));
        await until(() => peers.every((p) => p.rounds.length === 1), 'round 1');
        const taking = peers.filter((p) => p.rounds[0]!.sampled !== false);
        for (const p of taking) {
          const upload = { session: id, round: 1, values: packTensor(predictions(IDS.indexOf(p.id)), [REFERENCE, C], 'float32') };
          expect(refusalCode(await p.upload(upload))).toBe('ok');
        }
        await until(() => taking.every((p) => p.targets.length === 1), 'targets');
        const { encodeMessage, clientMessages, PROTOCOL_VERSION } = await import('../../protocol/index.js');
        for (const p of taking) {
          await p.send('report', encodeMessage(clientMessages.report, { v: PROTOCOL_VERSION, session: id, round: 1, participant: p.id, metrics: { accuracy: 0.5 } }));
        }
        await until(() => session.history.length === 1, 'round 1 to close');
        bytes[id] = { up: session.history[0]!.bytesUp, down: session.history[0]!.bytesDown };
      } finally {
        for (const p of peers) p.close();
      }
    }
    // Every participant's upload and report have the same size (one-letter ids): 3 of 6 send exactly half.
    expect(bytes.three!.up).toBe(bytes.every!.up / 2);
    // Down: three targets instead of six, and three sit-out notices without reference ids.
    expect(bytes.three!.down).toBeLessThan(0.75 * bytes.every!.down);
  });

  it('tells a contributor that joins mid-round and is not in the sample to sit out, and waits only for the sampled', async () => {
    const session = fixture.coordinator.createSession(six({ sampling: { count: 2 }, rounds: 1, minToStart: 5 }));
    const peers = IDS.slice(0, 5).map((id) => fixture.participant(id));
    await Promise.all(peers.map((p) => p.join()));
    await until(() => peers.every((p) => p.rounds.length === 1), 'round 1');
    const late = fixture.participant('f');
    await late.join();
    await until(() => late.rounds.length === 1, 'the late joiner told the round');
    expect(late.rounds[0]!.sampled).toBe(false);
    expect(session.history).toEqual([]);
    expect(await playRound(session, [...peers, late], 1)).toEqual(sampleParticipants(IDS.slice(0, 5), { count: 2 }, 2, 1, 1));
    expect(session.status().participants.filter((p) => p.state === 'late')).toEqual([]);
  });

  it('refuses settings that could never aggregate, or that have no rounds to sample', () => {
    expect(() => checkSessionConfig(six({ sampling: { count: 1 } }))).toThrow(/sampling\.count must be an integer in \[2, 6\]: at least the quorum \(minParticipants 2\)/);
    expect(() => checkSessionConfig(six({ sampling: { fraction: 0.5, min: 1 } }))).toThrow(/sampling\.min must be an integer in \[2, 6\]/);
    expect(() => checkSessionConfig(six({ sampling: { fraction: 0.5, count: 3 } }))).toThrow(/sampling takes exactly one of fraction and count \(got both\)/);
    expect(() => checkSessionConfig(six({ sampling: {} }))).toThrow(/sampling takes exactly one of fraction and count \(got neither\)/);
    expect(() => checkSessionConfig(six({ sampling: { fraction: 1.5 } }))).toThrow(/sampling\.fraction must be in \(0, 1\] \(got 1\.5\)/);
    expect(() => checkSessionConfig(six({ sampling: { count: 7 } }))).toThrow(/sampling\.count must be an integer in \[2, 6\]/);
    expect(() => checkSessionConfig(six({ algorithm: 'codistillation', sampling: { count: 3 } }))).toThrow(/sampling is for synchronous rounds: codistillation exchanges asynchronously/);
    // FedAvg samples as its client fraction C: the global model goes with the round to the sampled that lack it (test/server/fedavg-sampling.test.ts).
    expect(() => checkSessionConfig(six({ algorithm: 'fedavg', referenceSize: 0, referencePerRound: 0, sampling: { count: 3 } }))).not.toThrow();
    expect(() => checkSessionConfig(six({ sampling: { fraction: 0.5, min: 2 } }))).not.toThrow();
  });
});

describe('participant sampling across a coordinator restart', () => {
  it('draws the same sample for the round it was collecting when the coordinator stopped', { timeout: 30_000 }, async () => {
    const journal = join(mkdtempSync(join(tmpdir(), 'codistill-sampling-')), 'journal.db');
    const settings = six({ sampling: { fraction: 0.5, min: 2 }, rounds: 4 });
    const first = await Coordinator.start({ journal });
    const connect = (coordinator: Coordinator) => IDS.map((id) => new RawParticipant(coordinator.url, id, `secret-${id}`));
    let peers = connect(first);
    const before: string[][] = [];
    try {
      const session = first.createSession(settings);
      await Promise.all(peers.map((p) => p.join()));
      for (let round = 1; round <= 2; round++) before.push(await playRound(session, peers, round));
      // Round 3 is collecting: the sample is drawn and announced, nothing uploaded yet.
      await until(() => peers.every((p) => p.rounds.some((r) => r.round === 3)), 'round 3 announced');
      before.push(peers.filter((p) => p.rounds.find((r) => r.round === 3)!.sampled === true).map((p) => p.id));
    } finally {
      for (const p of peers) p.close();
      await first.close();
    }
    const second = await Coordinator.start({ journal, port: Number(new URL(first.url).port) });
    peers = connect(second);
    try {
      const session = second.session('test')!;
      expect(session.history.map((r) => r.sampled)).toEqual(before.slice(0, 2));
      // Held until everyone is back (an operator's pause), so that round 3 draws from the same six.
      session.pause();
      await Promise.all(peers.map((p) => p.join()));
      session.resume();
      const after = [await playRound(session, peers, 3), await playRound(session, peers, 4)];
      expect(after[0]).toEqual(before[2]);
      expect(after[1]).toEqual(sampleParticipants(IDS, settings.sampling!, 2, 1, 4));
      await until(() => session.ended, 'the session to end');
      expect(session.history.map((r) => r.sampled!.length)).toEqual([3, 3, 3, 3]);
    } finally {
      for (const p of peers) p.close();
      await second.close();
    }
  });
});
