/**
 * A participant whose behaviour a fault test scripts: a real socket.io client speaking the real
 * protocol (msgpack envelopes), with reconnection as the real participant has it, uploading
 * predictions that depend only on (participant, round) so that every aggregate can be
 * recomputed — and able to stall, drop its link, or die at a chosen moment.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { io, type Socket } from 'socket.io-client';
import { expect } from 'vitest';
import {
  clientMessages,
  decodeMessage,
  encodeMessage,
  packTensor,
  PROTOCOL_VERSION,
  readReply,
  replyMessages,
  serverMessages,
  unpackTensor,
  type ClientToServerEvents,
  type ServerMessage,
  type ServerToClientEvents,
} from '../../protocol/index.js';
import { Journal, valuesDigest } from '../../server/journal.js';
import type { RoundRecord } from '../../server/session.js';
import { createStrategy } from '../../server/strategies/index.js';
import { SeededRandom } from '../../client/data/random.js';

export const CLASSES = 4;

/** Soft predictions of one participant in one round: positive rows summing to 1, different for every (participant, round). */
export function scriptedPredictions(participant: string, round: number, rows: number): Float32Array {
  let seed = round * 7919;
  for (const ch of participant) seed = (seed * 31 + ch.charCodeAt(0)) >>> 0;
  const random = new SeededRandom(seed);
  const v = new Float32Array(rows * CLASSES);
  for (let r = 0; r < rows; r++) {
    let sum = 0;
    for (let k = 0; k < CLASSES; k++) sum += v[r * CLASSES + k] = 0.05 + random.next();
    for (let k = 0; k < CLASSES; k++) v[r * CLASSES + k]! /= sum;
  }
  return v;
}

export interface Script {
  /** Milliseconds to wait, after a round is announced, before uploading (a straggler). */
  uploadDelayMs?: (round: number) => number;
  /** What to do when a round is announced, before uploading. */
  onRound?: (round: number, participant: ScriptedParticipant) => 'upload' | 'stop';
  /** Whether to join on a new connection; one held stays connected without joining until its link drops. */
  onConnect?: (participant: ScriptedParticipant) => 'join' | 'hold';
  /** Awaited before uploading (after uploadDelayMs): a participant that waits for the others, to upload last. */
  beforeUpload?: (round: number, participant: ScriptedParticipant) => Promise<void> | void;
  /** Called the moment an upload has been handed to the socket, before it is answered. */
  uploadSent?: (round: number, participant: ScriptedParticipant) => void;
  /** Called when an upload is answered (the refusal code, 'ok', or 'NO ANSWER'). */
  uploadAnswered?: (round: number, code: string, participant: ScriptedParticipant) => void;
  /** What to do when a target arrives: report on it, or hold the report (it is never sent). */
  onTarget?: (round: number, participant: ScriptedParticipant) => 'report' | 'hold';
}

export class ScriptedParticipant {
  readonly socket: Socket<ServerToClientEvents, ClientToServerEvents>;
  /** Every round announcement received, in order (a round told again after a rejoin appears twice). */
  readonly announced: number[] = [];
  /** Round → sha256 of the last target received for it. */
  readonly targets = new Map<number, string | null>();
  /** Every target received, in order (a round run again after a restart appears twice). */
  readonly received: { round: number; digest: string | null }[] = [];
  /** Round → the refusal code or 'ok' of each upload. */
  readonly uploads = new Map<number, string[]>();
  /** Round → the refusal code or 'ok' of each training report. */
  readonly reports = new Map<number, string[]>();
  readonly failedRounds: number[] = [];
  readonly joins: number[] = [];
  ended: string | undefined;

  constructor(url: string, readonly id: string, token: string, private readonly session: string, private readonly script: Script = {}) {
    this.socket = io(url, {
      transports: ['websocket'], auth: { v: PROTOCOL_VERSION, token }, forceNew: true,
      reconnectionDelay: 100, reconnectionDelayMax: 500, reconnectionAttempts: 200,
    });
    // A join cut short by the link dropping again is retried on the next connect.
    this.socket.on('connect', () => {
      if ((this.script.onConnect?.(this) ?? 'join') === 'join') void this.join().catch(() => {});
    });
    this.socket.on('round', (bytes) => void this.onRound(decodeMessage(serverMessages.round, bytes)));
    this.socket.on('target', (bytes) => void this.onTarget(decodeMessage(serverMessages.target, bytes)));
    this.socket.on('round-failed', (bytes) => this.failedRounds.push(decodeMessage(serverMessages['round-failed'], bytes).round));
    this.socket.on('end', (bytes) => (this.ended = decodeMessage(serverMessages.end, bytes).reason));
    // Away when the session ended: told so at the handshake when it comes back.
    this.socket.on('connect_error', (error) => {
      const data = (error as Error & { data?: { code?: string; message?: string } }).data;
      if (data?.code !== 'E_SESSION') return;
      this.ended = data.message?.replace(/^session \S+ has ended: /, '');
      this.socket.io.reconnection(false);
    });
  }

  private async join(): Promise<void> {
    const reply = await this.socket.timeout(5000).emitWithAck('join', encodeMessage(clientMessages.join, { v: PROTOCOL_VERSION, session: this.session, role: 'participant' }));
    this.joins.push(readReply(replyMessages.joined, reply).round);
  }

  private async onRound(round: ServerMessage<'round'>): Promise<void> {
    this.announced.push(round.round);
    if ((this.script.onRound?.(round.round, this) ?? 'upload') === 'stop') return;
    const delay = this.script.uploadDelayMs?.(round.round) ?? 0;
    if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
    await this.script.beforeUpload?.(round.round, this);
    if (!this.socket.connected) return;
    const values = packTensor(scriptedPredictions(this.id, round.round, round.referenceIds.length), [round.referenceIds.length, CLASSES], 'float32');
    const envelope = encodeMessage(clientMessages.upload, {
      v: PROTOCOL_VERSION, session: this.session, round: round.round, participant: this.id, kind: 'reference-predictions', values,
    });
    const answer = this.socket.timeout(5000).emitWithAck('upload', envelope).catch(() => null);
    this.script.uploadSent?.(round.round, this);
    const code = refusalCode(await answer);
    this.uploads.set(round.round, [...(this.uploads.get(round.round) ?? []), code]);
    this.script.uploadAnswered?.(round.round, code, this);
  }

  private async onTarget(message: ServerMessage<'target'>): Promise<void> {
    const digest = message.target === null ? null : valuesDigest(unpackTensor(message.target));
    this.targets.set(message.round, digest);
    this.received.push({ round: message.round, digest });
    if ((this.script.onTarget?.(message.round, this) ?? 'report') === 'hold') return;
    const envelope = encodeMessage(clientMessages.report, {
      v: PROTOCOL_VERSION, session: this.session, round: message.round, participant: this.id, metrics: { accuracy: 0.5 },
    });
    const code = refusalCode(await this.socket.timeout(5000).emitWithAck('report', envelope).catch(() => null));
    this.reports.set(message.round, [...(this.reports.get(message.round) ?? []), code]);
  }

  /** The link drops under the participant (a network fault): socket.io reconnects it by itself. */
  dropLink(): void {
    this.socket.io.engine.close();
  }

  /** Gone for good, as a killed process is. */
  kill(): void {
    this.socket.io.reconnection(false);
    this.socket.io.engine.close();
    this.socket.close();
  }
}

export function refusalCode(reply: Uint8Array | null): string {
  if (reply === null) return 'NO ANSWER';
  try {
    readReply(replyMessages.ack, reply);
    return 'ok';
  } catch (error) {
    return (error as { code: string }).code;
  }
}

export async function until(condition: () => boolean, what: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * Reads a session back from its journal and checks every aggregated round: its contributions are
 * those of the round's contributors — exactly what they uploaded, where the uploads are scripted
 * and so known — the strategy run again on them gives the journalled ensemble digest and every
 * learner's target digest, and — where scripted participants are given — each one received
 * exactly that target. Returns the journalled rounds.
 */
export function expectJournalConsistent(
  path: string,
  session: string,
  participants: readonly ScriptedParticipant[] = [],
  options: { scripted: boolean } = { scripted: true },
): RoundRecord[] {
  const journal = new Journal(path);
  try {
    const stored = journal.session(session);
    expect(stored, `session ${session} in the journal`).toBeDefined();
    const { config, history } = stored!;
    const strategy = createStrategy(config.algorithm, {
      referenceSize: config.referenceSize, referencePerRound: config.referencePerRound, seed: config.seed, numClasses: config.numClasses,
      aggregator: config.aggregator, sharpenTemperature: config.sharpenTemperature, trimFraction: config.trimFraction,
    });
    expect(history.map((r) => r.round)).toEqual(history.map((_, i) => i + 1));
    for (const record of history) {
      if (record.failure !== undefined) continue;
      const contributions = journal.contributions(session, record.round);
      expect(contributions.map((c) => c.participant), `round ${record.round} contributors`).toEqual(record.contributors);
      for (const c of options.scripted ? contributions : []) {
        expect(valuesDigest(c.values), `${c.participant}'s journalled upload in round ${record.round}`)
          .toBe(valuesDigest(scriptedPredictions(c.participant, record.round, record.referenceCount)));
      }
      const { targets, ensemble } = strategy.aggregate(contributions, record.contributors, record.referenceCount);
      expect(ensemble === null ? null : valuesDigest(ensemble), `round ${record.round} ensemble`).toBe(record.ensembleDigest);
      const journalled = journal.targetDigests(session, record.round);
      expect([...journalled.keys()].sort()).toEqual([...targets.keys()].sort());
      for (const [participant, target] of targets) {
        const digest = target === null ? null : valuesDigest(target.values);
        expect(journalled.get(participant), `${participant}'s target in round ${record.round}`).toBe(digest);
        const received = participants.find((p) => p.id === participant)?.targets;
        if (received !== undefined && Object.hasOwn(record.reports, participant)) {
          expect(received.get(record.round), `target ${participant} received in round ${record.round}`).toBe(digest);
        }
      }
    }
    return history;
  } finally {
    journal.close();
  }
}

const CLI = join(import.meta.dirname, '../../dist/simulations/cli.js');

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A `codistill` command as its own process, its stdout and stderr kept together. */
export interface RunningCommand {
  process: ChildProcess;
  output: () => string;
  /** The exit code; null when a signal ended it. */
  exited: Promise<number | null>;
}

export function startCli(args: string[], env: Record<string, string> = {}): RunningCommand {
  const child = spawn('node', [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let out = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  return { process: child, output: () => out, exited: new Promise((resolve) => child.on('exit', (code) => resolve(code))) };
}

export async function waitForOutput(running: RunningCommand, pattern: RegExp, what: string, ms = 120_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!pattern.test(running.output())) {
    if (running.process.exitCode !== null || running.process.signalCode !== null) throw new Error(`${what}: the process ended first:\n${running.output()}`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}:\n${running.output()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** `codistill server` as its own process, once it listens, with the URL it printed. */
export async function startServer(args: string[]): Promise<RunningCommand & { url: string }> {
  const server = startCli(['server', ...args]);
  const listening = /coordinator at (https?:\/\/[^\s:]+:\d+)/;
  await waitForOutput(server, listening, 'the coordinator to listen', 30_000);
  return { ...server, url: listening.exec(server.output())![1]! };
}
