/**
 * FedAvg with participant sampling over real sockets: a real coordinator and hand-driven
 * participants whose "weights" are four numbers. Each round the sampled upload; the aggregate is
 * the sample-size-weighted mean of the sampled uploads only (golden values computed by hand); a
 * sampled participant that did not get the last round's global model as its target (it sat that
 * round out) gets it with the round's announcement, and nobody else does; the coordinator counts
 * those bytes. A coordinator restarted on its journal sends the same global model.
 */
import Database from 'better-sqlite3';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { packTensor, unpackTensor } from '../../protocol/index.js';
import { Coordinator } from '../../server/coordinator.js';
import { sampleParticipants } from '../../server/participant-sampling.js';
import type { SessionConfig } from '../../server/session-config.js';
import type { Session } from '../../server/session.js';
import { config, coordinatorPerTest, RawParticipant, refusalCode, until } from './raw-participant.js';

const IDS = ['a', 'b', 'c', 'd', 'e', 'f'];
/** What each participant uploads every round, and its sample count: each round's counts sum to 8, so every weighted mean below is exact in float32. */
const WEIGHTS: Record<string, { values: number[]; n: number }> = {
  a: { values: [1, 0, -2, 8], n: 1 },
  b: { values: [3, 1, 2, 0], n: 3 },
  c: { values: [-5, 4, 0, 2], n: 1 },
  d: { values: [0.5, 2, 6, -4], n: 4 },
  e: { values: [2, -1, 1, 1], n: 6 },
  f: { values: [4, 8, -6, 0], n: 4 },
};
/** The seeded samples of count 3 among a–f with seed 1 (sampleParticipants), asserted below. */
const SAMPLES = [['b', 'c', 'f'], ['a', 'b', 'f'], ['a', 'c', 'e'], ['a', 'b', 'd']];
/**
 * Σ_k n_k w_k / Σ_k n_k over the round's sample, by hand:
 *  1 (b,c,f): [(9 − 5 + 16)/8, (3 + 4 + 32)/8, (6 + 0 − 24)/8, (0 + 2 + 0)/8]
 *  2 (a,b,f): [(1 + 9 + 16)/8, (0 + 3 + 32)/8, (−2 + 6 − 24)/8, (8 + 0 + 0)/8]
 *  3 (a,c,e): [(1 − 5 + 12)/8, (0 + 4 − 6)/8, (−2 + 0 + 6)/8, (8 + 2 + 6)/8]
 *  4 (a,b,d): [(1 + 9 + 2)/8, (0 + 3 + 8)/8, (−2 + 6 + 24)/8, (8 + 0 − 16)/8]
 */
const GLOBAL = [[2.5, 4.875, -2.25, 0.25], [3.25, 4.375, -2.5, 1], [1, -0.25, 0.5, 2], [1.5, 1.375, 3.5, -1]];
/** Who is sent the global model with each round's announcement: the sampled that sat out the round before (none in round 1: there is no global model yet). */
const SENT_MODEL = [[], ['a'], ['c', 'e'], ['b', 'd']];

const fedavgConfig = (overrides: Partial<SessionConfig> = {}) => config({
  algorithm: 'fedavg', referenceSize: 0, referencePerRound: 0, temperature: 1, alpha: 1, rounds: 4, minParticipants: 3,
  participants: IDS.map((id) => ({ id, token: `secret-${id}` })), sampling: { count: 3 }, ...overrides,
});

/** The envelope bytes each participant receives, per event, in arrival order. */
function received(p: RawParticipant): { round: number[]; target: number[] } {
  const sizes = { round: [] as number[], target: [] as number[] };
  p.socket.on('round', (b) => sizes.round.push(b.byteLength));
  p.socket.on('target', (b) => sizes.target.push(b.byteLength));
  return sizes;
}

/**
 * Plays one FedAvg round as announced: the sampled upload their weights and report; an upload
 * from one sitting out is refused. Returns who was sampled and who was sent the global model.
 */
async function playRound(session: Session, peers: RawParticipant[], round: number, sessionId = 'test') {
  await until(() => peers.every((p) => p.rounds.some((r) => r.round === round)), `round ${round} announced to everyone`);
  const announced = peers.map((p) => ({ p, message: p.rounds.filter((r) => r.round === round).at(-1)! }));
  const sampled = announced.filter(({ message }) => message.sampled === true).map(({ p }) => p);
  const sentModel = announced.filter(({ message }) => message.model !== undefined);
  for (const { p, message } of announced) {
    if (message.sampled !== false) continue;
    expect(message.model).toBeUndefined();
    const upload = { session: sessionId, round, kind: 'weights', values: packTensor(Float32Array.from(WEIGHTS[p.id]!.values), [4], 'float32'), sampleCount: WEIGHTS[p.id]!.n };
    expect(refusalCode(await p.upload(upload))).toBe('E_ROUND_CLOSED');
  }
  for (const p of sampled) {
    const upload = { session: sessionId, round, kind: 'weights', values: packTensor(Float32Array.from(WEIGHTS[p.id]!.values), [4], 'float32'), sampleCount: WEIGHTS[p.id]!.n };
    expect(refusalCode(await p.upload(upload))).toBe('ok');
  }
  await until(() => sampled.every((p) => p.targets.some((t) => t.round === round)), `round ${round}'s targets`);
  for (const p of sampled) expect(refusalCode(await p.report(round))).toBe('ok');
  await until(() => session.history.some((r) => r.round === round), `round ${round} to close`);
  return {
    sampled: sampled.map((p) => p.id),
    sentModel: sentModel.map(({ p, message }) => ({ id: p.id, model: [...unpackTensor(message.model!, [4])] })),
  };
}

describe('FedAvg with participant sampling', () => {
  const fixture = coordinatorPerTest();

  it('aggregates the sampled uploads only, sends the global model to the sampled that lack it, and counts those bytes', async () => {
    for (const [i, sample] of SAMPLES.entries()) expect(sampleParticipants(IDS, { count: 3 }, 3, 1, i + 1)).toEqual(sample);
    const session = fixture.coordinator.createSession(fedavgConfig());
    const peers = IDS.map((id) => fixture.participant(id));
    const sizes = peers.map(received);
    await Promise.all(peers.map((p) => p.join()));
    for (let round = 1; round <= 4; round++) {
      const { sampled, sentModel } = await playRound(session, peers, round);
      expect(sampled).toEqual(SAMPLES[round - 1]);
      // Each sent model is the global model after the round before, bit for bit (exact values: see GLOBAL).
      expect(sentModel).toEqual(SENT_MODEL[round - 1]!.map((id) => ({ id, model: GLOBAL[round - 2] })));
      // The aggregate: the weighted mean of the sampled uploads only, the same target for each of them.
      for (const p of peers) {
        const target = p.targets.find((t) => t.round === round);
        if (!sampled.includes(p.id)) expect(target).toBeUndefined();
        else expect([...unpackTensor(target!.target!, [4])]).toEqual(GLOBAL[round - 1]);
      }
      expect(session.history[round - 1]!.contributors).toEqual(sampled);
    }
    await until(() => session.ended, 'the session to end');
    // Bytes down, as the coordinator counted them: every announcement (the global model's included) and every target.
    const total = (xs: number[]) => xs.reduce((a, x) => a + x, 0);
    const down = session.history.reduce((a, r) => a + r.bytesDown, 0);
    expect(down).toBe(total(sizes.flatMap((s) => [...s.round, ...s.target])));
    // An announcement that carries the model is larger by the model's 16 bytes and its tensor's fields.
    const round2 = peers.map((p, i) => ({ id: p.id, bytes: sizes[i]!.round[1]! }));
    const plain = round2.find((r) => r.id === 'b')!.bytes;
    expect(round2.find((r) => r.id === 'a')!.bytes).toBeGreaterThan(plain + 16);
  });

  it('without sampling, sends no model with the rounds: every participant holds the last target', async () => {
    const session = fixture.coordinator.createSession(fedavgConfig({ sampling: undefined, participants: IDS.slice(0, 3).map((id) => ({ id, token: `secret-${id}` })), rounds: 2 }));
    const peers = IDS.slice(0, 3).map((id) => fixture.participant(id));
    await Promise.all(peers.map((p) => p.join()));
    for (let round = 1; round <= 2; round++) {
      await until(() => peers.every((p) => p.rounds.some((r) => r.round === round)), `round ${round}`);
      for (const p of peers) {
        const upload = { round, kind: 'weights', values: packTensor(Float32Array.from(WEIGHTS[p.id]!.values), [4], 'float32'), sampleCount: WEIGHTS[p.id]!.n };
        expect(refusalCode(await p.upload(upload))).toBe('ok');
      }
      await until(() => peers.every((p) => p.targets.some((t) => t.round === round)), `round ${round}'s targets`);
      for (const p of peers) expect(refusalCode(await p.report(round))).toBe('ok');
      await until(() => session.history.length === round, `round ${round} to close`);
    }
    for (const p of peers) expect(p.rounds.map((r) => r.model)).toEqual([undefined, undefined]);
    // (1·[1,0,−2,8] + 3·[3,1,2,0] + 1·[−5,4,0,2]) / 5, by hand.
    expect([...unpackTensor(peers[0]!.targets[1]!.target!, [4])]).toEqual([1, 1.4, 0.8, 2].map(Math.fround));
  });
});

describe('FedAvg with participant sampling across a coordinator restart', () => {
  it('sends the global model it recomputes from the journal: the same, bit for bit, to every sampled participant', { timeout: 30_000 }, async () => {
    const journal = join(mkdtempSync(join(tmpdir(), 'codistill-fedavg-sampling-')), 'journal.db');
    const first = await Coordinator.start({ journal });
    const connect = (coordinator: Coordinator) => IDS.map((id) => new RawParticipant(coordinator.url, id, `secret-${id}`));
    let peers = connect(first);
    try {
      const session = first.createSession(fedavgConfig());
      await Promise.all(peers.map((p) => p.join()));
      for (let round = 1; round <= 2; round++) await playRound(session, peers, round);
      // Round 3 is collecting: c and e were sent round 2's global model with it.
      await until(() => peers.every((p) => p.rounds.some((r) => r.round === 3)), 'round 3 announced');
      expect(peers.filter((p) => p.rounds.at(-1)!.model !== undefined).map((p) => p.id)).toEqual(['c', 'e']);
    } finally {
      for (const p of peers) p.close();
      await first.close();
    }
    const second = await Coordinator.start({ journal, port: Number(new URL(first.url).port) });
    peers = connect(second);
    try {
      const session = second.session('test')!;
      session.pause();
      await Promise.all(peers.map((p) => p.join()));
      session.resume();
      // Everyone rejoined (each may be a new process): all three sampled get round 2's global model.
      const { sampled, sentModel } = await playRound(session, peers, 3);
      expect(sampled).toEqual(SAMPLES[2]);
      expect(sentModel).toEqual(SAMPLES[2]!.map((id) => ({ id, model: GLOBAL[1] })));
      expect([...unpackTensor(peers[0]!.targets.at(-1)!.target!, [4])]).toEqual(GLOBAL[2]);
      // Then as before: only those that sat round 3 out.
      const fourth = await playRound(session, peers, 4);
      expect(fourth.sentModel).toEqual(SENT_MODEL[3]!.map((id) => ({ id, model: GLOBAL[2] })));
      await until(() => session.ended, 'the session to end');
    } finally {
      for (const p of peers) p.close();
      await second.close();
    }
  });

  it('refuses to resume from a journal whose contributions no longer give the global model the round sent', { timeout: 30_000 }, async () => {
    const journal = join(mkdtempSync(join(tmpdir(), 'codistill-fedavg-sampling-')), 'journal.db');
    const first = await Coordinator.start({ journal });
    const peers = IDS.map((id) => new RawParticipant(first.url, id, `secret-${id}`));
    try {
      const session = first.createSession(fedavgConfig());
      await Promise.all(peers.map((p) => p.join()));
      await playRound(session, peers, 1);
    } finally {
      for (const p of peers) p.close();
      await first.close();
    }
    // One of round 1's journalled uploads altered: the aggregate recomputed from them is not the one sent.
    const db = new Database(journal);
    db.prepare(`UPDATE contributions SET data = ? WHERE session = 'test' AND round = 1 AND participant = 'b'`).run(Buffer.from(new Float32Array([3, 1, 2, 1]).buffer));
    db.close();
    await expect(Coordinator.start({ journal })).rejects.toThrow(/^session test: the journal's contributions to round 1 do not give the global model that round sent \(digest [0-9a-f]{12}…\): the journal is inconsistent/);
  });
});
