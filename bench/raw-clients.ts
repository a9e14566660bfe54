/**
 * A child process of raw participants for the coordinator benchmarks: real socket.io clients
 * that join, upload canned valid predictions (uniform probabilities) when a round opens, and
 * report as soon as their target arrives. No tfjs: the coordinator is what is being measured.
 *
 * Driven over IPC by bench/client-pool.ts; see the message types there.
 */
import { decodeEnvelope, decodeMessage, encodeEnvelope, packTensor, PROTOCOL_VERSION, serverMessages, type WireTensor } from '../protocol/index.js';
import { rawSocket, type PoolCommand, type PoolEvent, type RawParticipant, type RawSocket } from './client-pool.js';

const send = (event: PoolEvent) => process.send?.(event);
const wallMs = () => performance.timeOrigin + performance.now();

interface RoundMessage {
  session: string;
  round: number;
  knowledge: string;
  referenceIds: number[];
}

/** One packed tensor of uniform probabilities per (rows, classes), shared by every socket. */
const canned = new Map<string, WireTensor>();
function cannedPredictions(rows: number, classes: number): WireTensor {
  const key = `${rows}x${classes}`;
  let t = canned.get(key);
  if (t === undefined) {
    t = packTensor(new Float32Array(rows * classes).fill(1 / classes), [rows, classes], 'float32');
    canned.set(key, t);
  }
  return t;
}

let classes = 10;
let sessionId = '';
let url = '';
let concurrency = 50;
const sockets: RawSocket[] = [];
let joined = 0;
let ended = 0;
let failed = false;
/** Per round: latest upload emitted and latest target received in this process, and how many targets. */
const rounds = new Map<number, { uploadAt: number; targetAt: number; targets: number }>();

function fail(message: string): void {
  if (failed) return;
  failed = true;
  send({ type: 'error', message });
}

function connect(p: RawParticipant): Promise<void> {
  return new Promise((resolve) => {
    const socket = rawSocket(url, p.token, 60_000);
    sockets.push(socket);
    let participant = p.id;
    socket.on('connect_error', (error) => {
      fail(`${p.id} could not connect: ${error.message}`);
      resolve();
    });
    socket.on('connect', async () => {
      try {
        const reply = decodeEnvelope(
          await socket.timeout(120_000).emitWithAck('join', encodeEnvelope({ v: PROTOCOL_VERSION, session: sessionId, role: 'participant' })),
        );
        if (reply.ok !== true) throw new Error(JSON.stringify(reply.error));
        participant = String(reply.participant);
        joined++;
        if (joined % 100 === 0 || joined === expected) send({ type: 'joined', count: joined });
      } catch (error) {
        fail(`${p.id} could not join: ${(error as Error).message}`);
      }
      resolve();
    });
    socket.on('round', async (bytes: Uint8Array) => {
      // Through the round schema: it turns the compact form of the reference ids (a bitmap) into ids.
      const round = decodeMessage(serverMessages.round, bytes) as unknown as RoundMessage;
      if (round.knowledge === 'none') return;
      const upload = encodeEnvelope({
        v: PROTOCOL_VERSION,
        session: round.session,
        round: round.round,
        participant,
        kind: round.knowledge,
        values: cannedPredictions(round.referenceIds.length, classes),
      }, { maxBytes: 1 << 30 });
      const entry = rounds.get(round.round) ?? { uploadAt: 0, targetAt: 0, targets: 0 };
      rounds.set(round.round, entry);
      entry.uploadAt = Math.max(entry.uploadAt, wallMs());
      try {
        const reply = decodeEnvelope(await socket.timeout(300_000).emitWithAck('upload', upload));
        if (reply.ok !== true) fail(`${participant}'s upload for round ${round.round} was refused: ${JSON.stringify(reply.error)}`);
      } catch (error) {
        fail(`${participant}'s upload for round ${round.round} failed: ${(error as Error).message}`);
      }
    });
    socket.on('target', async (bytes: Uint8Array) => {
      const at = wallMs();
      const target = decodeEnvelope(bytes) as { round: number; session: string };
      const entry = rounds.get(target.round) ?? { uploadAt: 0, targetAt: 0, targets: 0 };
      rounds.set(target.round, entry);
      entry.targetAt = Math.max(entry.targetAt, at);
      if (++entry.targets === sockets.length) {
        send({ type: 'round', round: target.round, uploadAt: entry.uploadAt, targetAt: entry.targetAt, targets: entry.targets });
      }
      try {
        await socket.timeout(300_000).emitWithAck('report', encodeEnvelope({
          v: PROTOCOL_VERSION, session: target.session, round: target.round, participant, metrics: {},
        }));
      } catch (error) {
        fail(`${participant}'s report for round ${target.round} failed: ${(error as Error).message}`);
      }
    });
    socket.on('end', () => {
      socket.close();
      if (++ended === sockets.length) send({ type: 'ended', count: ended });
    });
  });
}

let expected = 0;

/** Connects participants with at most `concurrency` handshakes in flight. */
async function connectAll(participants: RawParticipant[]): Promise<void> {
  expected += participants.length;
  let next = 0;
  const lanes = Array.from({ length: Math.min(concurrency, participants.length) }, async () => {
    while (next < participants.length && !failed) await connect(participants[next++]!);
  });
  await Promise.all(lanes);
}

process.on('message', (command: PoolCommand) => {
  switch (command.type) {
    case 'start':
      url = command.url;
      sessionId = command.session;
      classes = command.classes;
      concurrency = command.concurrency;
      void connectAll(command.participants);
      break;
    case 'join':
      void connectAll(command.participants);
      break;
    case 'memory':
      send({ type: 'memory', rss: process.memoryUsage.rss() });
      break;
    case 'stop':
      for (const s of sockets) s.close();
      process.exit(0);
  }
});
process.on('disconnect', () => process.exit(0));
send({ type: 'ready' });
