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

/** A socket.io server that accepts any join to a session described by `sessionInfo` and then announces `round`. */
async function fakeCoordinator(round: HostileRound, sessionInfo: SessionInfo = info): Promise<{ url: string; close: () => Promise<void> }> {
  const http = createServer();
  const io = new Server(http, { transports: ['websocket'] });
  io.on('connection', (socket) => {
    socket.on('join', (_bytes: unknown, ack: (reply: Uint8Array) => void) => {
      ack(encodeEnvelope({ v: PROTOCOL_VERSION, ok: true, participant: 'p0', info: sessionInfo, round: 0 }));
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

  // The global model a FedAvg round may carry (`model`): for weight-averaging sessions only, checked as a target is.
  const fedavg: SessionInfo = { ...info, algorithm: 'fedavg', knowledge: 'weights', referenceSize: 0 };
  const mlpParameters = 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10;
  const float32 = (values: number[]) => ({ dtype: 'float32' as const, shape: [values.length], data: new Uint8Array(Float32Array.from(values).buffer) });
  const cases: Array<[string, HostileRound, RegExp, SessionInfo?]> = [
    ['a global model in a session of predictions', { round: 1, knowledge: 'reference-predictions', referenceIds: [0, 1], temperature: 3, deadline: Date.now() + 60_000, model: float32([1, 2]) },
      /^E_SCHEMA: round 1 of session hostile carries a global model; the session exchanges reference-predictions, not weights$/],
    ['a global model of another size than the student', { round: 2, knowledge: 'weights', referenceIds: [], temperature: 3, deadline: Date.now() + 60_000, model: float32([1, 2, 3]) },
      new RegExp(`^E_SHAPE: tensor has shape \\[3\\]; expected \\[${mlpParameters}\\]$`), fedavg],
    ['a global model holding NaN', { round: 2, knowledge: 'weights', referenceIds: [], temperature: 3, deadline: Date.now() + 60_000, model: float32(Array.from({ length: mlpParameters }, (_, i) => (i === 7 ? Number.NaN : 0))) },
      /^E_VALUE: tensor value at index 7 is NaN; only finite values are accepted$/, fedavg],
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
  for (const [what, round, refusal, sessionInfo] of cases) {
    it(`stops on a round with ${what}, saying so`, async () => {
      const fake = await fakeCoordinator(round, sessionInfo);
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
