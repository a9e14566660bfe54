/**
 * Secure aggregation's overhead: bytes and wall time of a DML round at 10 and 100 participants,
 * under secure aggregation (server/secure-rounds.ts, client/secure-round.ts) against the plain
 * round, in one run.
 *
 * A coordinator and raw socket.io participants (no tfjs: canned predictions, 100 reference rows ×
 * 10 classes, float32) run in this process; each participant reports as soon as it has its target.
 * Bytes are the coordinator's count of envelope bytes up and down in a round (round record);
 * wall time is the round's open to close. Under secure aggregation the participants' crypto (key
 * generation, n − 1 key agreements, share encryption, n mask streams each) runs here too, on the
 * one event loop beside the coordinator's — on separate machines it would run in parallel, so the
 * time ratio at 100 overstates the wall time a deployment sees. Rounds 2…R are measured (round 1
 * warms up); medians reported.
 */
import { SecureParticipant } from '../client/secure-round.js';
import {
  clientMessages,
  decodeMessage,
  encodeMessage,
  packTensor,
  PROTOCOL_VERSION,
  readReply,
  replyMessages,
  serverMessages,
  type ClientToServerEvents,
  type ServerToClientEvents,
} from '../protocol/index.js';
import { Coordinator } from '../server/coordinator.js';
import { SecureRounds } from '../server/secure-rounds.js';
import type { SessionConfig } from '../server/session-config.js';
import { rawSocket, type RawSocket } from './client-pool.js';
import { bytesText, figure, fmt, median, type Benchmark, type Figure, type Table } from './harness.js';

const ROWS = 100;
const CLASSES = 10;

interface Measured {
  ms: number;
  bytes: number;
  /** The coordinator's own unmasking (rebuilding the seeds and keys, removing the masks), per round. */
  unmaskMs?: number;
}

async function measure(n: number, secure: boolean, rounds: number): Promise<Measured> {
  const coordinator = await Coordinator.start({ rateLimit: 'off', maxMessageBytes: 1 << 22 });
  const id = `${secure ? 'secure' : 'plain'}-${n}`;
  const participants = Array.from({ length: n }, (_, i) => ({ id: `p${String(i).padStart(3, '0')}`, token: `${id}-token-${i}-0123456789abcdef` }));
  const config: SessionConfig = {
    id, algorithm: 'dml', rounds, participants, minParticipants: n, numClasses: CLASSES, referenceSize: ROWS, referencePerRound: ROWS,
    temperature: 3, alpha: 0.5, uploadDtype: 'float32', roundTimeoutMs: 120_000, trainTimeoutMs: 120_000, onRoundFailure: 'stop', seed: 1,
    maxMessageBytes: 1 << 22, ...(secure ? { secureAggregation: { threshold: Math.floor(n / 2) + 1 } } : {}),
  };
  const session = coordinator.createSession(config);
  const ended = new Promise<void>((resolve) => session.once('end', () => resolve()));
  const sockets: RawSocket[] = [];
  // The mode's observation hook marks where unmasking starts (the masked sum) and ends (the sum).
  const unmasking: number[] = [];
  let unmaskStart = 0;
  SecureRounds.observe = (what) => {
    if (what === 'masked-sum') unmaskStart = performance.now();
    if (what === 'sum') unmasking.push(performance.now() - unmaskStart);
  };
  const failures: string[] = [];
  try {
    await Promise.all(participants.map(async (p, k) => {
      const socket = rawSocket(coordinator.url, p.token);
      sockets.push(socket);
      const predictions = new Float32Array(ROWS * CLASSES).map((_, i) => (i % CLASSES === k % CLASSES ? 0.5 : 0.5 / (CLASSES - 1)));
      const header = { v: PROTOCOL_VERSION, session: id, participant: p.id } as const;
      const ask = async (event: keyof ClientToServerEvents, envelope: Uint8Array) => readReply(replyMessages.ack, await socket.timeout(120_000).emitWithAck(event as 'upload', envelope));
      const report = (round: number) => ask('report', encodeMessage(clientMessages.report, { ...header, round, metrics: { accuracy: 0.5 } }));
      let side: SecureParticipant | undefined;
      let joinedInfo!: () => void;
      // Messages wait for the join's answer: the round can arrive before it is handled.
      let chain: Promise<unknown> = new Promise<void>((resolve) => (joinedInfo = resolve));
      const on = (event: keyof ServerToClientEvents, handle: (bytes: Uint8Array) => Promise<unknown>) =>
        socket.on(event, (bytes: Uint8Array) => (chain = chain.then(() => handle(bytes)).catch((error: unknown) => failures.push(String(error)))));
      on('round', async (bytes) => {
        const round = decodeMessage(serverMessages.round, bytes);
        if (side !== undefined) return side.begin(round, { values: predictions, shape: [ROWS, CLASSES] });
        return ask('upload', encodeMessage(clientMessages.upload, { ...header, round: round.round, kind: 'reference-predictions', values: packTensor(predictions, [ROWS, CLASSES], 'float32') }));
      });
      on('target', async (bytes) => report(decodeMessage(serverMessages.target, bytes).round));
      on('secure-roster', async (bytes) => side!.roster(decodeMessage(serverMessages['secure-roster'], bytes)));
      on('secure-routed', async (bytes) => side!.routed(decodeMessage(serverMessages['secure-routed'], bytes)));
      on('secure-unmask', async (bytes) => side!.unmask(decodeMessage(serverMessages['secure-unmask'], bytes)));
      on('secure-sum', async (bytes) => {
        const message = decodeMessage(serverMessages['secure-sum'], bytes);
        side!.target(message, 'reference-predictions', ROWS, false);
        return report(message.round);
      });
      await new Promise<void>((resolve, reject) => (socket.once('connect', () => resolve()), socket.once('connect_error', reject)));
      const joined = readReply(replyMessages.joined, await socket.timeout(60_000).emitWithAck('join', encodeMessage(clientMessages.join, { v: PROTOCOL_VERSION, session: id, role: 'participant' })));
      if (secure) side = new SecureParticipant(p.id, joined.info, async (event, message, round) => { await ask(event, encodeMessage(clientMessages[event], { ...header, round, ...message } as never)); });
      joinedInfo();
    }));
    await ended;
    if (failures.length > 0) throw new Error(`${id}: ${failures[0]}`);
    const measured = session.history.slice(1);
    if (measured.length === 0 || measured.some((r) => r.failure !== undefined || r.contributors.length !== n)) throw new Error(`${id}: a round failed or missed participants`);
    const ms = median(measured.map((r) => r.closedAt - r.openedAt));
    const bytes = median(measured.map((r) => r.bytesUp + r.bytesDown));
    return secure ? { ms, bytes, unmaskMs: median(unmasking.slice(1)) } : { ms, bytes };
  } finally {
    SecureRounds.observe = undefined;
    for (const s of sockets) s.close();
    await coordinator.close();
  }
}

export const secureAggregationBenchmark: Benchmark = {
  id: 'secure',
  title: 'Secure aggregation: bytes and wall time of a round, secure against plain, at 10 and 100 participants',
  async run(context) {
    const rounds = context.quick ? 2 : 4;
    const rows: Table['rows'] = [];
    const figures: Figure[] = [];
    for (const n of [10, 100]) {
      const plain = await measure(n, false, rounds);
      context.log(`  plain, ${n} participants: ${bytesText(plain.bytes)} and ${fmt(plain.ms)} ms per round`);
      const secure = await measure(n, true, rounds);
      context.log(`  secure, ${n} participants: ${bytesText(secure.bytes)} and ${fmt(secure.ms)} ms per round, of which the coordinator's unmasking ${fmt(secure.unmaskMs!)} ms`);
      rows.push([n, bytesText(plain.bytes), bytesText(secure.bytes), fmt(secure.bytes / plain.bytes), fmt(plain.ms), fmt(secure.ms), fmt(secure.ms / plain.ms), fmt(secure.unmaskMs!)]);
      figures.push(
        figure({ id: `secure-bytes-${n}`, label: `bytes of a secure round, ${n} participants`, value: secure.bytes, unit: 'B', baseline: { label: 'plain round', value: plain.bytes, unit: 'B' } }),
        figure({ id: `secure-unmask-${n}`, label: `the coordinator's unmasking of a round, ${n} participants`, value: secure.unmaskMs!, unit: 'ms' }),
        figure({ id: `secure-time-${n}`, label: `wall time of a secure round, ${n} participants`, value: secure.ms, unit: 'ms', baseline: { label: 'plain round', value: plain.ms, unit: 'ms' } }),
      );
    }
    return {
      method: [
        `DML rounds of ${ROWS} reference rows × ${CLASSES} classes (float32 uploads), raw participants in this process (no training), threshold ⌊n/2⌋ + 1.`,
        `Bytes: envelope bytes up and down per round (the coordinator's round record); time: round open to close; medians of rounds 2…${rounds}.`,
      ],
      tables: [{ caption: 'A round, plain and secure', columns: ['participants', 'bytes plain', 'bytes secure', 'ratio', 'ms plain', 'ms secure', 'ratio', 'ms unmasking (coordinator)'], rows }],
      figures,
      notes: [
        'Secure bytes grow as n² (each member sends n − 1 encrypted shares, each routed once) on top of the plain n: the ratio rises with n.',
        'Secure time includes every participant\'s crypto on this one event loop; across machines it runs in parallel.',
      ],
    };
  },
};
