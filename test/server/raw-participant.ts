/**
 * A hand-driven participant for tests over real sockets: a raw socket.io client whose envelopes
 * the test builds (so that any field can be broken), and the session config and predictions the
 * coordinator tests share.
 */
import { io, type Socket } from 'socket.io-client';
import { afterEach, beforeEach } from 'vitest';
import {
  clientMessages,
  decodeMessage,
  encodeEnvelope,
  encodeMessage,
  PROTOCOL_VERSION,
  readReply,
  replyMessages,
  serverMessages,
  type ClientToServerEvents,
  type Role,
  type ServerMessage,
  type ServerToClientEvents,
} from '../../protocol/index.js';
import { Coordinator, type CoordinatorOptions } from '../../server/coordinator.js';
import type { SessionConfig } from '../../server/session-config.js';

type RawSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

export const C = 3;
export const REFERENCE = 4;

export function config(overrides: Partial<SessionConfig> = {}): SessionConfig {
  return {
    id: 'test', algorithm: 'dml', rounds: 1, minParticipants: 3, numClasses: C, referenceSize: REFERENCE,
    referencePerRound: REFERENCE, temperature: 2, alpha: 0.5, uploadDtype: 'float32', roundTimeoutMs: 10_000,
    trainTimeoutMs: 10_000, onRoundFailure: 'continue', seed: 1, maxMessageBytes: 64 * 1024,
    participants: ['a', 'b', 'c'].map((id) => ({ id, token: `secret-${id}` })),
    ...overrides,
  };
}

/** Rows of probabilities that differ by participant, so a wrong aggregate shows. */
export function predictions(seed: number, rows = REFERENCE): Float32Array {
  const v = new Float32Array(rows * C);
  for (let r = 0; r < rows; r++) {
    const w = [1 + seed, 2 + r, 3 + ((seed * r) % 5)];
    const s = w[0]! + w[1]! + w[2]!;
    for (let k = 0; k < C; k++) v[r * C + k] = w[k]! / s;
  }
  return v;
}

/** A hand-driven participant: raw socket.io client, envelopes built by the test. */
export class RawParticipant {
  readonly socket: RawSocket;
  readonly rounds: ServerMessage<'round'>[] = [];
  readonly targets: ServerMessage<'target'>[] = [];
  readonly failures: ServerMessage<'round-failed'>[] = [];
  ended = false;

  constructor(url: string, readonly id: string, token: string, v: number = PROTOCOL_VERSION) {
    this.socket = io(url, { transports: ['websocket'], auth: { v, token }, reconnection: false, forceNew: true });
    this.socket.on('round', (b) => this.rounds.push(decodeMessage(serverMessages.round, b)));
    this.socket.on('target', (b) => this.targets.push(decodeMessage(serverMessages.target, b)));
    this.socket.on('round-failed', (b) => this.failures.push(decodeMessage(serverMessages['round-failed'], b)));
    this.socket.on('end', () => (this.ended = true));
  }

  connected(): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.socket.connected) return resolve();
      this.socket.once('connect', () => resolve());
      this.socket.once('connect_error', reject);
    });
  }

  async join(session = 'test', role: Role = 'participant', reference?: { rows: number; digest: string }) {
    await this.connected();
    return readReply(replyMessages.joined, await this.send('join', encodeMessage(clientMessages.join, { v: PROTOCOL_VERSION, session, role, reference })));
  }

  send(event: 'join' | 'upload' | 'report', envelope: Uint8Array): Promise<Uint8Array> {
    return this.socket.timeout(5000).emitWithAck(event, envelope);
  }

  /** Sends an upload envelope built from raw fields (so tests can break any of them). */
  upload(fields: Record<string, unknown>): Promise<Uint8Array> {
    return this.send('upload', encodeEnvelope({ v: PROTOCOL_VERSION, session: 'test', round: 1, participant: this.id, kind: 'reference-predictions', ...fields }));
  }

  report(round: number): Promise<Uint8Array> {
    return this.send('report', encodeMessage(clientMessages.report, { v: PROTOCOL_VERSION, session: 'test', round, participant: this.id, metrics: { accuracy: 0.5 } }));
  }

  close(): void {
    this.socket.close();
  }
}

export async function until(condition: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export function refusalCode(reply: Uint8Array): string {
  try {
    readReply(replyMessages.ack, reply);
    return 'ok';
  } catch (error) {
    return (error as { code: string }).code;
  }
}

/**
 * A coordinator on 127.0.0.1 started before each test and closed after it, with the raw
 * participants a test connects (`secret-<id>` tokens, as config() issues them) closed first.
 */
export function coordinatorPerTest(options: CoordinatorOptions = {}) {
  let coordinator: Coordinator | undefined;
  const sockets: RawParticipant[] = [];
  beforeEach(async () => {
    coordinator = await Coordinator.start(options);
  });
  afterEach(async () => {
    for (const p of sockets.splice(0)) p.close();
    await coordinator?.close();
  });
  return {
    get coordinator(): Coordinator {
      return coordinator!;
    },
    participant(id: string): RawParticipant {
      const p = new RawParticipant(coordinator!.url, id, `secret-${id}`);
      sockets.push(p);
      return p;
    },
  };
}

