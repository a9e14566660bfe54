/**
 * The coordinator over real sockets on 127.0.0.1, driven by hand-written participants that send
 * real msgpack envelopes: round semantics, and refusals of bad input with the right error code
 * and no effect on the aggregate.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { encodeEnvelope, packTensor, PROTOCOL_VERSION, unpackTensor, type WireTensor } from '../../protocol/index.js';
import { leaveOneOutMeans } from '../../server/aggregators/sums.js';
import { Coordinator } from '../../server/coordinator.js';
import type { RoundRecord } from '../../server/session.js';
import { C, config, predictions, RawParticipant, REFERENCE, refusalCode, until } from './raw-participant.js';

describe('coordinator over real sockets', () => {
  let coordinator: Coordinator;
  const participants: RawParticipant[] = [];
  const join = async (id: string, token = `secret-${id}`) => {
    const p = new RawParticipant(coordinator.url, id, token);
    participants.push(p);
    await p.join();
    return p;
  };

  beforeEach(async () => {
    coordinator = await Coordinator.start({ maxMessageBytes: 64 * 1024 });
  });
  afterEach(async () => {
    for (const p of participants.splice(0)) p.close();
    await coordinator.close();
  });

  it('runs a round: leave-one-out targets over exactly the honest uploads, despite bad input', async () => {
    const session = coordinator.createSession(config());
    const closed = new Promise<RoundRecord>((resolve) => session.once('round', resolve));
    const [a, b, c] = [await join('a'), await join('b'), await join('c')];
    await until(() => [a, b, c].every((p) => p.rounds.length === 1), 'round 1 to open');
    const round = a.rounds[0]!;
    expect(round.referenceIds).toEqual([0, 1, 2, 3]);
    const good = (seed: number): WireTensor => packTensor(predictions(seed), [REFERENCE, C], 'float32');

    // Hostile or broken uploads from a: each refused with its code, none counted.
    const nan = predictions(0);
    nan[5] = Number.NaN;
    const nanTensor: WireTensor = { dtype: 'float32', shape: [REFERENCE, C], data: new Uint8Array(nan.buffer.slice(0)) };
    const logits = predictions(0).map((p) => p * 10 - 3);
    const bad: Array<[string, Promise<Uint8Array>]> = [
      ['E_MALFORMED', a.send('upload', new Uint8Array([0xc1, 0xff, 0x00]))],
      ['E_MALFORMED', a.send('upload', encodeEnvelope({ v: 1, round: 1 }).subarray(0, 5))],
      ['E_VERSION', a.upload({ v: 99, values: good(0) })],
      ['E_SCHEMA', a.upload({ round: -1, values: good(0) })],
      ['E_SCHEMA', a.upload({ values: { dtype: 'float64', shape: [REFERENCE, C], data: new Uint8Array(8) } })],
      ['E_SHAPE', a.upload({ values: packTensor(predictions(0, 3), [3, C], 'float32') })],
      ['E_SHAPE', a.upload({ values: { ...good(0), data: good(0).data.subarray(1) } })],
      ['E_VALUE', a.upload({ values: nanTensor })],
      ['E_VALUE', a.upload({ values: packTensor(logits, [REFERENCE, C], 'float32') })],
      ['E_AUTH', a.upload({ participant: 'b', values: good(0) })],
      ['E_SESSION', a.upload({ session: 'other', values: good(0) })],
      ['E_ROUND_CLOSED', a.upload({ round: 2, values: good(0) })],
      ['E_TOO_LARGE', a.send('upload', new Uint8Array(64 * 1024 + 1))],
    ];
    for (const [code, reply] of bad) expect(refusalCode(await reply), code).toBe(code);
    expect(session.currentRound).toBe(1);

    // Honest uploads, float16 from b to show mixed encodings aggregate together; a retries (idempotent).
    expect(refusalCode(await a.upload({ values: good(0) }))).toBe('ok');
    expect(refusalCode(await a.upload({ values: good(7) }))).toBe('ok');
    expect(refusalCode(await b.upload({ values: packTensor(predictions(1), [REFERENCE, C], 'float16') }))).toBe('ok');
    expect(refusalCode(await c.upload({ values: good(2) }))).toBe('ok');
    await until(() => [a, b, c].every((p) => p.targets.length === 1), 'targets');

    // A late upload for the aggregated round is refused, and changes nothing.
    expect(refusalCode(await c.upload({ values: good(5) }))).toBe('E_ROUND_CLOSED');

    // b's predictions as the coordinator saw them: rounded through float16.
    const received = unpackTensor(packTensor(predictions(1), [REFERENCE, C], 'float16'));
    const expected = leaveOneOutMeans([predictions(0), received, predictions(2)]);
    [a, b, c].forEach((p, i) => {
      const target = unpackTensor(p.targets[0]!.target!, [REFERENCE, C]);
      for (let j = 0; j < target.length; j++) expect(target[j]).toBeCloseTo(expected[i]![j]!, 6);
      expect(p.targets[0]!.contributors).toBe(3);
    });

    for (const p of [a, b, c]) expect(refusalCode(await p.report(1))).toBe('ok');
    const record = await closed;
    expect(record.contributors.sort()).toEqual(['a', 'b', 'c']);
    expect(Object.keys(record.reports).sort()).toEqual(['a', 'b', 'c']);
    await until(() => [a, b, c].every((p) => p.ended), 'the session to end');
  });

  it('refuses a wrong token or protocol version at the handshake, with a message a person can act on', async () => {
    coordinator.createSession(config());
    const stranger = new RawParticipant(coordinator.url, 'x', 'not-a-token');
    participants.push(stranger);
    await expect(stranger.connected()).rejects.toThrow(/^E_AUTH: the token is not valid for any running session$/);
    const old = new RawParticipant(coordinator.url, 'a', 'secret-a', 0);
    participants.push(old);
    await expect(old.connected()).rejects.toThrow(new RegExp(`^E_VERSION: this coordinator speaks protocol version ${PROTOCOL_VERSION}; the participant sent 0`));
  });

  it('refuses anything before join, and a join to another session', async () => {
    coordinator.createSession(config());
    const a = new RawParticipant(coordinator.url, 'a', 'secret-a');
    participants.push(a);
    await a.connected();
    expect(refusalCode(await a.upload({ values: packTensor(predictions(0), [REFERENCE, C], 'float32') }))).toBe('E_NOT_JOINED');
    await expect(a.join('elsewhere')).rejects.toThrow(/^E_SESSION: this token belongs to session test, not elsewhere$/);
  });

  it('removes a participant that leaves mid-round from the aggregate', async () => {
    const session = coordinator.createSession(config({ minParticipants: 2 }));
    const [a, b, c] = [await join('a'), await join('b'), await join('c')];
    await until(() => [a, b, c].every((p) => p.rounds.length === 1), 'round 1 to open');
    expect(refusalCode(await c.upload({ values: packTensor(predictions(2), [REFERENCE, C], 'float32') }))).toBe('ok');
    c.close(); // c's upload must not reach anyone's target
    await until(() => !session.connected.includes('c'), 'c to be gone');
    expect(refusalCode(await a.upload({ values: packTensor(predictions(0), [REFERENCE, C], 'float32') }))).toBe('ok');
    expect(refusalCode(await b.upload({ values: packTensor(predictions(1), [REFERENCE, C], 'float32') }))).toBe('ok');
    await until(() => a.targets.length === 1 && b.targets.length === 1, 'targets');
    // With c gone, a's target is exactly b's predictions and vice versa.
    expect(unpackTensor(a.targets[0]!.target!)).toEqual(predictions(1));
    expect(unpackTensor(b.targets[0]!.target!)).toEqual(predictions(0));
    expect(a.targets[0]!.contributors).toBe(2);
  });

  it('keeps a participant that reconnected when its old connection goes away', async () => {
    const session = coordinator.createSession(config({ minToStart: 3 }));
    const oldA = await join('a');
    const newA = await join('a'); // the same token again: a reconnect from a new socket
    const [b, c] = [await join('b'), await join('c')];
    oldA.close();
    await new Promise((r) => setTimeout(r, 100));
    expect(session.connected.sort()).toEqual(['a', 'b', 'c']);
    await until(() => [newA, b, c].every((p) => p.rounds.length === 1), 'round 1 to open');
    for (const [p, seed] of [[newA, 0], [b, 1], [c, 2]] as const) {
      expect(refusalCode(await p.upload({ values: packTensor(predictions(seed), [REFERENCE, C], 'float32') }))).toBe('ok');
    }
    await until(() => newA.targets.length === 1, 'a target on the new connection');
  });

  it('fails a round that misses its quorum by the deadline, and goes on to the next', async () => {
    const session = coordinator.createSession(config({ rounds: 2, roundTimeoutMs: 300, minParticipants: 2, participants: [{ id: 'a', token: 'secret-a' }, { id: 'b', token: 'secret-b' }] }));
    const records: RoundRecord[] = [];
    session.on('round', (r) => records.push(r));
    const [a, b] = [await join('a'), await join('b')];
    await until(() => a.rounds.length === 1 && b.rounds.length === 1, 'round 1 to open');
    expect(refusalCode(await a.upload({ values: packTensor(predictions(0), [REFERENCE, C], 'float32') }))).toBe('ok');
    await until(() => a.failures.length === 1 && b.failures.length === 1, 'round 1 to fail');
    expect(a.failures[0]!.error.code).toBe('E_ROUND_CLOSED');
    expect(a.failures[0]!.error.message).toMatch(/round 1 failed: 1 of 2 participants uploaded before the deadline; the quorum is 2/);
    expect(a.targets).toHaveLength(0);
    await until(() => a.rounds.length === 2, 'round 2 to open');
    expect(records[0]!.failure?.code).toBe('E_ROUND_CLOSED');
    expect(records[0]!.contributors).toEqual([]);
  });
});
