/**
 * A participant facing a coordinator that sends what no session would: a round naming reference
 * rows the session does not have (which would make it allocate features for each), or another
 * kind of knowledge than the session's. It stops with the reason, allocating nothing.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server } from 'socket.io';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../client/backend.js';
import { loadMnist, splitDataset } from '../../client/data/mnist.js';
import { createModel } from '../../client/models.js';
import { runParticipant } from '../../client/participant.js';
import { Student } from '../../client/student.js';
import { encodeEnvelope, PROTOCOL_VERSION, type ReferenceIdsWire, type ServerMessage, type SessionInfo } from '../../protocol/index.js';

const split = splitDataset(loadMnist(), { test: 10, reference: 20 }, 3);
const info: SessionInfo = {
  session: 'hostile', algorithm: 'dml', knowledge: 'reference-predictions', rounds: 2, numClasses: 10, referenceSize: 20,
  temperature: 3, alpha: 0.5, uploadDtype: 'float32', maxMessageBytes: 1 << 20,
};

/** A round as a coordinator could send it: its reference ids in any wire form, or not ids at all. */
type HostileRound = Omit<ServerMessage<'round'>, 'v' | 'session' | 'referenceIds'> & { referenceIds: ReferenceIdsWire | string };

/** A socket.io server that accepts any join and then announces `round`. */
async function fakeCoordinator(round: HostileRound): Promise<{ url: string; close: () => Promise<void> }> {
  const http = createServer();
  const io = new Server(http, { transports: ['websocket'] });
  io.on('connection', (socket) => {
    socket.on('join', (_bytes: unknown, ack: (reply: Uint8Array) => void) => {
      ack(encodeEnvelope({ v: PROTOCOL_VERSION, ok: true, participant: 'p0', info, round: 0 }));
      setTimeout(() => socket.emit('round', encodeEnvelope({ v: PROTOCOL_VERSION, session: 'hostile', ...round })), 20);
    });
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(http.address() as AddressInfo).port}`, close: () => new Promise((resolve) => io.close(() => resolve())) };
}

describe('a participant against a hostile coordinator', () => {
  const closers: Array<() => Promise<void>> = [];
  beforeAll(async () => {
    await selectBackend();
  });
  afterEach(async () => {
    for (const close of closers.splice(0)) await close();
  });

  const cases: Array<[string, HostileRound, RegExp]> = [
    ['ids past the reference set', { round: 1, knowledge: 'reference-predictions', referenceIds: [0, 5_000_000], temperature: 3, deadline: Date.now() + 60_000 },
      /^E_SCHEMA: round 1 of session hostile names reference sample 5000000; the reference set holds 0…19$/],
    ['more ids than the set holds', { round: 1, knowledge: 'reference-predictions', referenceIds: Array.from({ length: 25 }, (_, i) => i), temperature: 3, deadline: Date.now() + 60_000 },
      /^E_SCHEMA: round 1 of session hostile names 25 reference samples; the session's reference set holds 20$/],
    ['an id twice', { round: 1, knowledge: 'reference-predictions', referenceIds: [3, 3], temperature: 3, deadline: Date.now() + 60_000 },
      /names reference sample 3 twice$/],
    // The bitmap form (protocol/reference-ids.ts): refused by the session's bound before it is expanded (800,000 ids here).
    ['a bitmap longer than the reference set', { round: 1, knowledge: 'reference-predictions', referenceIds: new Uint8Array(100_000).fill(0xff), temperature: 3, deadline: Date.now() + 60_000 },
      /^E_SCHEMA: referenceIds: the reference-id bitmap has 100000 bytes \(rows up to 799999\); the reference set holds 20 rows, at most 3 bytes$/],
    ['a bitmap naming a row past the set', { round: 1, knowledge: 'reference-predictions', referenceIds: new Uint8Array([0xff, 0, 0x10]), temperature: 3, deadline: Date.now() + 60_000 },
      /^E_SCHEMA: referenceIds: the reference-id bitmap names row 20; the reference set holds 0…19$/],
    ['reference ids neither an array nor a bitmap', { round: 1, knowledge: 'reference-predictions', referenceIds: '0-19', temperature: 3, deadline: Date.now() + 60_000 },
      /^E_SCHEMA: referenceIds: /],
    ['another knowledge', { round: 1, knowledge: 'weights', referenceIds: [], temperature: 3, deadline: Date.now() + 60_000 },
      /^E_SCHEMA: round 1 of session hostile exchanges weights; the session said reference-predictions$/],
  ];
  for (const [what, round, refusal] of cases) {
    it(`stops on a round with ${what}, saying so`, async () => {
      const fake = await fakeCoordinator(round);
      closers.push(fake.close);
      const student = new Student(createModel({ name: 'mlp', inputShape: [28, 28, 1], numClasses: 10, seed: 1 }), { sampleShape: [28, 28, 1], numClasses: 10, learningRate: 1e-3, seed: 1 });
      try {
        await expect(runParticipant({
          url: fake.url, session: 'hostile', token: 'any-token-0123456789', student, data: { train: split.pool, reference: split.reference.x },
          epochs: 1, batchSize: 32, reconnect: { attempts: 1 },
        })).rejects.toThrow(refusal);
      } finally {
        student.dispose();
      }
    });
  }
});
