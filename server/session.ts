/**
 * A session: one experiment or deployment, run as a sequence of synchronous rounds.
 *
 *   waiting ──(quorum joined)──► collecting ──(all uploaded, or deadline with quorum)──► training
 *      ▲                              │ deadline without quorum: round fails                 │
 *      │                              ▼                                                       │
 *      └──────────── next round ◄──────────── (all contributors reported, or deadline) ◄─────┘
 *
 * The session knows nothing of sockets: each participant is reached through a PeerLink, so the
 * state machine can be driven by the coordinator's transport or directly by a test.
 */
import { EventEmitter } from 'node:events';
import {
  ErrorCode,
  encodeMessage,
  packTensor,
  ProtocolError,
  readContribution,
  replyMessages,
  serverMessages,
  type ClientMessage,
  type Contribution,
  type ReplyMessage,
  type ServerToClientEvents,
  type SessionInfo,
  type WireDtype,
  type WireError,
  PROTOCOL_VERSION,
} from '../protocol/index.js';
import type { SessionStatus } from '../protocol/operator.js';
import { AsyncExchange, type AsyncSettings } from './async-exchange.js';
import { valuesDigest, type SessionJournal } from './journal.js';
import { TRIMMED_MEAN_DEFAULT_FRACTION, trimmedPerSide } from './aggregators/index.js';
import { createStrategy, type Strategy } from './strategies/index.js';

/**
 * One participant a session admits: its token, or (in a journal, or a config restored from one)
 * the token's sha256 — and, optionally, the one role its token may join as.
 */
export type ParticipantEntry = { id: string; role?: Role } & ({ token: string } | { tokenHash: string });

export interface SessionConfig {
  id: string;
  algorithm: string;
  rounds: number;
  /** Who may join, each with its own token (tokens are never shared between participants). */
  participants: ParticipantEntry[];
  /** Quorum: uploads needed to aggregate a round. */
  minParticipants: number;
  /** Participants that must have joined before round 1 opens; all listed ones when omitted. */
  minToStart?: number;
  numClasses: number;
  /** Size of the shared reference set every participant can read, addressed by id 0…size−1. */
  referenceSize: number;
  /** Reference samples per round (all of them when ≥ referenceSize). */
  referencePerRound: number;
  temperature: number;
  alpha: number;
  uploadDtype: WireDtype;
  /** How prediction-based strategies combine contributions (server/aggregators); each strategy has a default. */
  aggregator?: string;
  /** ERA's sharpening temperature (DS-FL). */
  sharpenTemperature?: number;
  /** Trimmed mean's fraction cut on each side. */
  trimFraction?: number;
  /** How long a round waits for uploads before aggregating what it has (if a quorum). */
  roundTimeoutMs: number;
  /** How long a round waits for training reports after the targets went out. */
  trainTimeoutMs: number;
  /** Asynchronous exchange settings (co-distillation); defaults when the algorithm is asynchronous and this is omitted. */
  async?: AsyncSettings;
  /** What a round that cannot reach its quorum does to the session. */
  onRoundFailure: 'continue' | 'stop';
  seed: number;
  maxMessageBytes: number;
}

export type ParticipantMetrics = ClientMessage<'report'>['metrics'];

export interface RoundRecord {
  round: number;
  /** Participants connected when the round opened. */
  participants: string[];
  /** Participants whose upload went into the aggregate. */
  contributors: string[];
  referenceCount: number;
  /** Envelope bytes received from participants (uploads and reports) and sent to them (round, target). */
  bytesUp: number;
  bytesDown: number;
  reports: Record<string, ParticipantMetrics>;
  /** sha256 of the ensemble mean's float32 bytes: lets a journal or a test recompute and compare. */
  ensembleDigest: string | null;
  openedAt: number;
  closedAt: number;
  failure?: WireError;
}

export type Role = 'participant' | 'teacher';

/** How the session reaches one participant. */
export interface PeerLink {
  send(event: keyof ServerToClientEvents, envelope: Uint8Array): void;
}

type Phase = 'waiting' | 'collecting' | 'training' | 'running' | 'ended';

export const DEFAULT_ASYNC: AsyncSettings = { shards: 5, exchangeEvery: 20, burnInSteps: 20, stalenessMs: 120_000 };

/** An asynchronous session's checkpoint: reports arrive whenever each participant gets there. */
interface Checkpoint {
  record: RoundRecord;
  owing: Set<string>;
  timer: NodeJS.Timeout;
}

interface OpenRound {
  record: RoundRecord;
  referenceIds: number[];
  /** The round's announcement, resent to a participant that (re)joins while the round collects. */
  announcement: Uint8Array;
  deadline: number;
  uploads: Map<string, Contribution>;
  /** Who still owes a training report (the contributors, once targets are out). */
  owing: Set<string>;
  /** record.participants as a set: membership is checked on every upload. */
  members: Set<string>;
  /** Members that left since the round opened (some may have rejoined). */
  departed: number;
}

export interface SessionEvents {
  round: [RoundRecord];
  end: [{ reason: string; rounds: RoundRecord[] }];
}

export interface SessionOptions {
  /** Rounds already completed (a session resumed from its journal): the next round opened is the one after them. */
  history?: RoundRecord[];
  /** Where every aggregate and completed round is recorded before the session acts on it. */
  journal?: SessionJournal;
}

export class Session extends EventEmitter<SessionEvents> {
  readonly config: Readonly<SessionConfig>;
  readonly strategy: Strategy;
  readonly history: RoundRecord[];
  private readonly journal: SessionJournal | undefined;
  private phase: Phase = 'waiting';
  private open: OpenRound | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly links = new Map<string, PeerLink>();
  private readonly roles = new Map<string, Role>();
  /** Parameter count of the model whose weights this session exchanges, fixed by the first upload (FedAvg). */
  private parameters: number | undefined;
  /** Asynchronous sessions only: the latest-predictions store, open checkpoints, bytes since the last one. */
  private readonly exchange: AsyncExchange | undefined;
  private readonly asyncSettings: AsyncSettings | undefined;
  private readonly checkpoints = new Map<number, Checkpoint>();
  private readonly asyncBytes = { up: 0, down: 0 };

  constructor(config: SessionConfig, options: SessionOptions = {}) {
    super();
    checkConfig(config);
    this.config = config;
    this.history = options.history ?? [];
    this.journal = options.journal;
    this.strategy = createStrategy(config.algorithm, {
      referenceSize: config.referenceSize,
      referencePerRound: config.referencePerRound,
      seed: config.seed,
      numClasses: config.numClasses,
      aggregator: config.aggregator,
      sharpenTemperature: config.sharpenTemperature,
      trimFraction: config.trimFraction,
    });
    if (this.strategy.mode === 'async') {
      this.asyncSettings = config.async ?? DEFAULT_ASYNC;
      this.exchange = new AsyncExchange(this.strategy, this.asyncSettings, config.referenceSize, config.numClasses);
    }
  }

  get info(): SessionInfo {
    const c = this.config;
    return {
      session: c.id,
      algorithm: c.algorithm,
      knowledge: this.strategy.knowledge,
      rounds: c.rounds,
      numClasses: c.numClasses,
      referenceSize: c.referenceSize,
      temperature: c.temperature,
      alpha: c.alpha,
      uploadDtype: c.uploadDtype,
      maxMessageBytes: c.maxMessageBytes,
      async: this.asyncSettings,
    };
  }

  get ended(): boolean {
    return this.phase === 'ended';
  }

  get currentRound(): number {
    return this.open?.record.round ?? this.history.length;
  }

  get connected(): string[] {
    return [...this.links.keys()];
  }

  /** Admits a participant (again, after a reconnect); it takes part from the next round it is sent. */
  join(participant: string, link: PeerLink, role: Role = 'participant'): ReplyMessage<'joined'> {
    if (this.phase === 'ended') throw new ProtocolError(ErrorCode.Session, `session ${this.config.id} has ended`);
    if (role === 'teacher' && this.strategy.knowledge === 'none') {
      throw new ProtocolError(ErrorCode.Auth, `session ${this.config.id} exchanges nothing: a teacher has nothing to contribute`);
    }
    const allowed = this.config.participants.find((p) => p.id === participant)?.role;
    if (allowed !== undefined && allowed !== role) {
      throw new ProtocolError(ErrorCode.Auth, `${participant}'s token is for a ${allowed} of session ${this.config.id}; it cannot join as a ${role}`);
    }
    const returning = !this.links.has(participant);
    this.links.set(participant, link);
    this.roles.set(participant, role);
    const reply: ReplyMessage<'joined'> = { v: PROTOCOL_VERSION, ok: true, participant, info: this.info, round: this.currentRound };
    // Start on the next turn, after the join has been answered.
    if (this.phase === 'waiting' && this.links.size >= this.neededToOpen) setImmediate(() => this.startIfReady());
    // A round still collecting takes a (re)joining participant: it is told the round, after its join is answered.
    const open = this.open;
    if (this.phase === 'collecting' && open !== undefined) {
      if (!open.members.has(participant)) {
        open.members.add(participant);
        open.record.participants.push(participant);
      } else if (returning) {
        open.departed--; // a member not connected left after the round opened, and is back
      }
      setImmediate(() => {
        if (this.open === open && this.phase === 'collecting' && this.links.get(participant) === link) {
          open.record.bytesDown += open.announcement.byteLength;
          link.send('round', open.announcement);
        }
      });
    }
    return reply;
  }

  /** A participant left: its upload to a round not yet aggregated is discarded, and no one waits for it. */
  leave(participant: string, link?: PeerLink): void {
    // A participant that reconnected has a new link: the old connection's departure is not its own.
    if (link !== undefined && this.links.get(participant) !== link) return;
    if (!this.links.delete(participant)) return;
    this.roles.delete(participant);
    if (this.open?.members.has(participant)) this.open.departed++;
    if (this.exchange !== undefined) {
      this.exchange.forget(participant);
      for (const [number, checkpoint] of [...this.checkpoints]) {
        checkpoint.owing.delete(participant);
        if (checkpoint.owing.size === 0) this.closeCheckpoint(number);
      }
      return;
    }
    const open = this.open;
    if (open === undefined) return;
    if (this.phase === 'collecting') {
      open.uploads.delete(participant);
      if (this.readyEarly()) this.aggregate();
    } else if (this.phase === 'training') {
      open.owing.delete(participant);
      if (open.owing.size === 0) this.closeRound();
    }
  }

  /** Participants that learn (get targets, report); teachers only contribute. */
  private learners(among: Iterable<string>): string[] {
    return [...among].filter((p) => this.roles.get(p) !== 'teacher');
  }

  /** An upload for the open round; idempotent by (session, round, participant). */
  upload(participant: string, message: ClientMessage<'upload'>, bytes: number): void {
    if (this.exchange !== undefined) {
      throw new ProtocolError(ErrorCode.Schema, `session ${this.config.id} is asynchronous: push and pull predictions instead of uploading them`);
    }
    const open = this.requireOpen(participant, message.round, 'upload');
    if (this.phase !== 'collecting') {
      throw new ProtocolError(ErrorCode.RoundClosed, `round ${message.round} is closed: its aggregate has been sent; uploads are no longer taken`);
    }
    if (open.uploads.has(participant)) return; // a retried upload: the first one stands
    if (!open.members.has(participant)) {
      throw new ProtocolError(ErrorCode.RoundClosed, `round ${message.round} opened before ${participant} joined; wait for round ${message.round + 1}`);
    }
    const contribution = readContribution(participant, message, {
      kind: message.kind,
      round: message.round,
      numClasses: this.config.numClasses,
      rows: open.referenceIds.length,
      parameters: this.parameters,
    });
    if (contribution.kind !== this.strategy.knowledge) {
      throw new ProtocolError(ErrorCode.Schema, `session ${this.config.id} exchanges ${this.strategy.knowledge}, not ${contribution.kind}`);
    }
    if (contribution.kind === 'weights') this.parameters ??= contribution.values.length;
    open.uploads.set(participant, contribution);
    open.record.bytesUp += bytes;
    if (this.readyEarly()) this.aggregate();
  }

  /** A participant's training report for the round whose target it received. */
  report(participant: string, message: ClientMessage<'report'>, bytes: number): void {
    if (this.exchange !== undefined) return this.reportCheckpoint(participant, message, bytes);
    const open = this.requireOpen(participant, message.round, 'report');
    if (this.phase !== 'training') {
      throw new ProtocolError(ErrorCode.RoundClosed, `round ${message.round} takes no reports before its aggregate is sent`);
    }
    if (!open.owing.delete(participant)) return; // a repeated report, or one from a non-contributor
    open.record.reports[participant] = message.metrics;
    open.record.bytesUp += bytes;
    if (open.owing.size === 0) this.closeRound();
  }

  /** Asynchronous sessions: stores a participant's latest predictions on a shard. */
  push(participant: string, message: ClientMessage<'push'>, bytes: number): void {
    const exchange = this.requireRunning('push');
    exchange.push(participant, message.shard, message.step, message.values);
    this.asyncBytes.up += bytes;
  }

  /** Asynchronous sessions: the ensemble of the others' fresh predictions on a shard, as an encoded reply. */
  pull(participant: string, message: ClientMessage<'pull'>, bytes: number): Uint8Array {
    const exchange = this.requireRunning('pull');
    const rows = exchange.rows(message.shard);
    const ensemble = exchange.ensembleFor(participant, message.shard);
    const reply = encodeMessage(replyMessages.ensemble, {
      v: PROTOCOL_VERSION,
      ok: true,
      shard: message.shard,
      target: ensemble === null ? null : packTensor(ensemble.values, [rows, this.config.numClasses], 'float32'),
      contributors: ensemble?.contributors ?? 0,
      oldestMs: ensemble?.oldestMs ?? 0,
    }, { maxBytes: this.config.maxMessageBytes });
    this.asyncBytes.up += bytes;
    this.asyncBytes.down += reply.byteLength;
    return reply;
  }

  private requireRunning(what: string): AsyncExchange {
    if (this.exchange === undefined) {
      throw new ProtocolError(ErrorCode.Schema, `session ${this.config.id} runs synchronous rounds: ${what} is for asynchronous sessions; upload instead`);
    }
    if (this.phase !== 'running') {
      throw new ProtocolError(ErrorCode.RoundClosed, `session ${this.config.id} is ${this.phase === 'ended' ? 'over' : 'not running yet'}: no ${what}`);
    }
    return this.exchange;
  }

  private reportCheckpoint(participant: string, message: ClientMessage<'report'>, bytes: number): void {
    const number = message.round;
    if (this.phase !== 'running' || number > this.config.rounds || this.history.some((r) => r.round === number)) {
      throw new ProtocolError(ErrorCode.RoundClosed, `checkpoint ${number} takes no more reports`);
    }
    let checkpoint = this.checkpoints.get(number);
    if (checkpoint === undefined) {
      const participants = this.learners(this.links.keys());
      checkpoint = {
        record: {
          round: number, participants, contributors: participants, referenceCount: this.config.referenceSize, bytesUp: 0, bytesDown: 0,
          reports: {}, ensembleDigest: null, openedAt: Date.now(), closedAt: 0,
        },
        owing: new Set(participants),
        // A participant that stalls must not hold the others' checkpoint forever.
        timer: setTimeout(() => this.closeCheckpoint(number), this.config.trainTimeoutMs),
      };
      this.checkpoints.set(number, checkpoint);
    }
    if (!checkpoint.owing.delete(participant)) return;
    checkpoint.record.reports[participant] = message.metrics;
    this.asyncBytes.up += bytes;
    if (checkpoint.owing.size === 0) this.closeCheckpoint(number);
  }

  private closeCheckpoint(number: number): void {
    const checkpoint = this.checkpoints.get(number);
    if (checkpoint === undefined) return;
    clearTimeout(checkpoint.timer);
    this.checkpoints.delete(number);
    const { record } = checkpoint;
    // Pushes and pulls have no round of their own: each checkpoint takes the bytes since the last.
    record.bytesUp = this.asyncBytes.up;
    record.bytesDown = this.asyncBytes.down;
    this.asyncBytes.up = 0;
    this.asyncBytes.down = 0;
    record.closedAt = Date.now();
    this.journal?.completed(record);
    this.history.push(record);
    this.emit('round', record);
    if (number >= this.config.rounds) this.end(`completed ${number} checkpoints`);
  }

  /**
   * Stops the session's clock without ending it (the coordinator is shutting down and the
   * journal keeps the session): a coordinator started on the same journal resumes it from its
   * last completed round, and participants rejoin by themselves.
   */
  suspend(): void {
    this.stopClock();
    this.links.clear();
  }

  /** Ends the session now, telling every connected participant why. */
  end(reason: string): void {
    if (this.phase === 'ended') return;
    this.stopClock();
    this.journal?.ended(reason);
    this.broadcast('end', encodeMessage(serverMessages.end, { v: PROTOCOL_VERSION, session: this.config.id, reason, rounds: this.history.length }));
    this.emit('end', { reason, rounds: this.history });
  }

  /** Participants needed to open a round from waiting: minToStart for the first, the quorum to go on (after a restart, or once all had left). */
  private get neededToOpen(): number {
    if (this.history.length > 0) return this.config.minParticipants;
    return this.config.minToStart ?? this.config.participants.length;
  }

  /** No timer left running, no round open: the session takes nothing more. */
  private stopClock(): void {
    clearTimeout(this.timer);
    for (const checkpoint of this.checkpoints.values()) clearTimeout(checkpoint.timer);
    this.checkpoints.clear();
    this.phase = 'ended';
    this.open = undefined;
  }

  private startIfReady(): void {
    if (this.paused || this.phase !== 'waiting' || this.links.size < this.neededToOpen) return;
    this.openNext();
  }

  /** Starts an asynchronous session, or opens the round after the last completed one. */
  private openNext(): void {
    if (this.exchange !== undefined) this.startAsync();
    else this.openRound(this.history.length + 1);
  }

  /** Asynchronous sessions start once: one go signal, then participants run at their own pace. */
  private startAsync(): void {
    this.phase = 'running';
    const plan = this.strategy.configureRound(1);
    this.broadcast('round', encodeMessage(serverMessages.round, {
      v: PROTOCOL_VERSION,
      session: this.config.id,
      round: 1,
      knowledge: this.strategy.knowledge,
      referenceIds: plan.referenceIds,
      temperature: this.config.temperature,
      deadline: Date.now() + this.config.trainTimeoutMs,
    }));
  }

  private requireOpen(participant: string, round: number, what: string): OpenRound {
    const open = this.open;
    if (open === undefined || open.record.round !== round) {
      const now = this.phase === 'ended' ? 'the session has ended' : `the current round is ${this.currentRound}`;
      throw new ProtocolError(ErrorCode.RoundClosed, `${what} from ${participant} for round ${round} refused: ${now}`);
    }
    return open;
  }

  private openRound(round: number): void {
    const plan = this.strategy.configureRound(round);
    const deadline = Date.now() + this.config.roundTimeoutMs;
    const participants = [...this.links.keys()];
    const record: RoundRecord = {
      round,
      participants,
      contributors: [],
      referenceCount: plan.referenceIds.length,
      bytesUp: 0,
      bytesDown: 0,
      reports: {},
      ensembleDigest: null,
      openedAt: Date.now(),
      closedAt: 0,
    };
    const envelope = encodeMessage(serverMessages.round, {
      v: PROTOCOL_VERSION,
      session: this.config.id,
      round,
      knowledge: this.strategy.knowledge,
      referenceIds: plan.referenceIds,
      temperature: this.config.temperature,
      deadline,
    });
    this.open = {
      record, referenceIds: plan.referenceIds, announcement: envelope, deadline, uploads: new Map(), owing: new Set(), members: new Set(participants), departed: 0,
    };
    if (this.strategy.knowledge === 'none') {
      // Nothing to collect: everyone trains at once and reports.
      this.phase = 'training';
      record.contributors = participants;
      this.open.owing = new Set(this.learners(participants));
      this.broadcast('round', envelope);
      this.arm(this.config.trainTimeoutMs, () => this.closeRound());
      return;
    }
    this.phase = 'collecting';
    this.broadcast('round', envelope);
    this.arm(this.config.roundTimeoutMs, () => this.aggregate());
  }

  /**
   * Whether the round can aggregate before its deadline: everyone connected has uploaded, and
   * they are a quorum. Short of a quorum the round waits for its deadline, since a participant
   * whose link dropped may yet rejoin and upload.
   */
  private readyEarly(): boolean {
    const open = this.open!;
    if (open.uploads.size < this.config.minParticipants) return false;
    // Everyone expected has uploaded only if there are at least as many uploads as members still
    // connected, of whom there are at least members − departed: a constant-time "no" for every
    // upload but the last, instead of an O(participants) scan each time (O(n²) per round).
    if (open.uploads.size < open.members.size - open.departed) return false;
    const expected = open.record.participants.filter((p) => this.links.has(p));
    return expected.length > 0 && expected.every((p) => open.uploads.has(p));
  }

  private aggregate(): void {
    const open = this.open!;
    const { record } = open;
    if (open.uploads.size < this.config.minParticipants) {
      this.failRound(
        new ProtocolError(
          ErrorCode.RoundClosed,
          `round ${record.round} failed: ${open.uploads.size} of ${record.participants.length} participants uploaded before the deadline; the quorum is ${this.config.minParticipants}`,
        ).toWire(),
      );
      return;
    }
    record.contributors = [...open.uploads.keys()];
    const contributions = [...open.uploads.values()];
    const { targets, ensemble } = this.strategy.aggregate(contributions, this.learners(record.contributors), open.referenceIds.length);
    if (ensemble !== null) record.ensembleDigest = valuesDigest(ensemble);
    // Journalled before any target leaves: what a participant learns from can always be recomputed.
    if (this.journal !== undefined) {
      const digests = new Map([...targets].map(([participant, target]) => [participant, target === null ? null : valuesDigest(target.values)]));
      this.journal.aggregated(record.round, contributions, digests);
    }
    this.phase = 'training';
    for (const [participant, target] of targets) {
      const envelope = encodeMessage(
        serverMessages.target,
        {
          v: PROTOCOL_VERSION,
          session: this.config.id,
          round: record.round,
          kind: this.strategy.knowledge,
          // No copy: the envelope encoder below copies the bytes, and the target is not kept.
          target: target === null ? null : packTensor(target.values, target.shape, 'float32', { copy: false }),
          counts: target?.counts,
          contributors: record.contributors.length,
        },
        { maxBytes: this.config.maxMessageBytes },
      );
      const link = this.links.get(participant);
      if (link === undefined) continue;
      open.owing.add(participant);
      record.bytesDown += envelope.byteLength;
      link.send('target', envelope);
    }
    open.uploads.clear(); // the aggregate is out: hold no participant's predictions longer
    if (open.owing.size === 0) this.closeRound();
    else this.arm(this.config.trainTimeoutMs, () => this.closeRound());
  }

  private failRound(error: WireError): void {
    const open = this.open!;
    open.record.failure = error;
    this.broadcast('round-failed', encodeMessage(serverMessages['round-failed'], {
      v: PROTOCOL_VERSION, session: this.config.id, round: open.record.round, error,
    }));
    if (this.config.onRoundFailure === 'stop') {
      this.finishRecord();
      this.end(`stopped after round ${open.record.round} failed: ${error.message}`);
      return;
    }
    this.closeRound();
  }

  private finishRecord(): void {
    const open = this.open!;
    open.record.closedAt = Date.now();
    this.journal?.completed(open.record);
    this.history.push(open.record);
    this.open = undefined;
    this.emit('round', open.record);
  }

  private closeRound(): void {
    clearTimeout(this.timer);
    const round = this.open!.record.round;
    this.finishRecord();
    if (round >= this.config.rounds) {
      this.end(`completed ${round} rounds`);
    } else if (this.links.size === 0 || this.paused) {
      this.phase = 'waiting';
    } else {
      this.openRound(round + 1);
    }
  }

  private broadcast(event: keyof ServerToClientEvents, envelope: Uint8Array): void {
    for (const link of this.links.values()) link.send(event, envelope);
    if (this.open !== undefined) this.open.record.bytesDown += envelope.byteLength * this.links.size;
    else if (this.phase === 'running') this.asyncBytes.down += envelope.byteLength * this.links.size;
  }

  private arm(ms: number, then: () => void): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(then, ms);
  }

  // ── Operator control and status (server/operator.ts): admins act, observers read ──

  /** Set by pause(): the round in progress finishes, and no next round opens until resume(). */
  private paused = false;

  get isPaused(): boolean {
    return this.paused;
  }

  /** Opens round 1 (or the next round) now with whoever has joined, without waiting for minToStart. */
  start(): void {
    this.requireNotEnded('start');
    if (this.phase !== 'waiting') {
      throw new ProtocolError(ErrorCode.Session, `session ${this.config.id} is already running (round ${this.currentRound}); pause or stop it instead`);
    }
    if (this.links.size === 0) {
      throw new ProtocolError(ErrorCode.Session, `no participant is connected to session ${this.config.id}: a round needs at least one`);
    }
    this.paused = false;
    this.openNext();
  }

  /** The round in progress runs to its end; the next one waits for resume() (or start()). */
  pause(): void {
    this.requireNotEnded('pause');
    // Asynchronous participants run at their own pace once started: there is no round to hold back.
    if (this.exchange !== undefined && this.phase === 'running') {
      throw new ProtocolError(ErrorCode.Session, `session ${this.config.id} is asynchronous and running: it cannot pause, only stop`);
    }
    this.paused = true;
  }

  /** Lifts a pause: the next round opens now if participants are connected (round 1 still waits for minToStart). */
  resume(): void {
    this.requireNotEnded('resume');
    if (!this.paused) return;
    this.paused = false;
    if (this.phase !== 'waiting') return;
    if (this.history.length === 0) this.startIfReady();
    else if (this.links.size > 0) this.openNext();
  }

  /** Ends the session now; `by` names who stopped it, for the participants and the record. */
  stop(by: string): void {
    this.requireNotEnded('stop');
    this.end(`stopped by ${by}`);
  }

  private requireNotEnded(action: string): void {
    if (this.phase === 'ended') throw new ProtocolError(ErrorCode.Session, `session ${this.config.id} has ended: nothing to ${action}`);
  }

  /** What an operator sees of this session: phase, participants' states, the rounds so far, the config without tokens. */
  status(endReason?: string): SessionStatus {
    const open = this.open;
    const tookPart = new Set(this.history.flatMap((r) => r.participants));
    for (const p of open?.record.participants ?? []) tookPart.add(p);
    const owes = (p: string): boolean => {
      if (open === undefined || !open.members.has(p) || this.phase === 'ended') return false;
      if (this.phase === 'collecting') return !open.uploads.has(p);
      return open.owing.has(p);
    };
    const isLate = (p: string): boolean => {
      if (open === undefined || !open.members.has(p)) return false;
      // The round aggregated without this member's upload: it missed the round.
      if (this.phase === 'training' && this.strategy.knowledge !== 'none' && !open.record.contributors.includes(p)) return true;
      if (!owes(p)) return false;
      const others = open.record.participants.filter((q) => q !== p && this.links.has(q));
      return others.length > 0 && others.every((q) => !owes(q));
    };
    const lastRound = new Set(this.history.at(-1)?.participants ?? []);
    const participants = this.config.participants.map(({ id }): SessionStatus['participants'][number] => {
      const role = this.roles.get(id);
      const state = this.phase === 'ended'
        ? (lastRound.has(id) ? 'finished' : tookPart.has(id) ? 'dropped' : 'pending')
        : this.links.has(id) ? (isLate(id) ? 'late' : 'active') : tookPart.has(id) ? 'dropped' : 'pending';
      return role === undefined ? { id, state } : { id, state, role };
    });
    const config: SessionStatus['config'] = {};
    for (const [key, value] of Object.entries(this.config)) {
      if (key === 'participants' || value === undefined) continue;
      config[key] = typeof value === 'object' ? JSON.stringify(value) : (value as string | number | boolean);
    }
    config.participants = this.config.participants.map((p) => p.id).join(', ');
    const history = this.history.map((r): SessionStatus['history'][number] => {
      const accuracy: Record<string, number> = {};
      for (const [p, m] of Object.entries(r.reports)) if (m.accuracy !== undefined) accuracy[p] = m.accuracy;
      const summary: SessionStatus['history'][number] = {
        round: r.round, participants: r.participants.length, contributors: r.contributors.length,
        bytesUp: r.bytesUp, bytesDown: r.bytesDown, accuracy, openedAt: r.openedAt, closedAt: r.closedAt,
      };
      if (r.failure !== undefined) summary.failure = `${r.failure.code}: ${r.failure.message}`;
      return summary;
    });
    const status: SessionStatus = {
      id: this.config.id, algorithm: this.config.algorithm, phase: this.phase, paused: this.paused,
      round: this.currentRound, rounds: this.config.rounds, config, participants, history,
    };
    if (endReason !== undefined) status.endReason = endReason;
    return status;
  }
}

function checkConfig(c: SessionConfig): void {
  const problems: string[] = [];
  if (!Number.isInteger(c.rounds) || c.rounds < 1) problems.push(`rounds must be an integer ≥ 1 (got ${c.rounds})`);
  if (c.participants.length === 0) problems.push('participants must list at least one {id, token}');
  if (new Set(c.participants.map((p) => ('token' in p ? p.token : p.tokenHash))).size !== c.participants.length) problems.push('every participant needs its own token');
  if (new Set(c.participants.map((p) => p.id)).size !== c.participants.length) problems.push('participant ids must be unique');
  if (!Number.isInteger(c.minParticipants) || c.minParticipants < 1 || c.minParticipants > c.participants.length) {
    problems.push(`minParticipants must be in [1, ${c.participants.length}] (got ${c.minParticipants})`);
  }
  if (c.minToStart !== undefined && !(Number.isInteger(c.minToStart) && c.minToStart >= 1 && c.minToStart <= c.participants.length)) {
    problems.push(`minToStart must be in [1, ${c.participants.length}] (got ${c.minToStart})`);
  }
  if (c.async !== undefined) {
    const a = c.async;
    if (!(Number.isInteger(a.shards) && a.shards >= 1 && a.shards <= c.referenceSize)) problems.push(`async.shards must be in [1, ${c.referenceSize}] (got ${a.shards})`);
    if (!(Number.isInteger(a.exchangeEvery) && a.exchangeEvery >= 1)) problems.push(`async.exchangeEvery must be an integer ≥ 1 (got ${a.exchangeEvery})`);
    if (!(Number.isInteger(a.burnInSteps) && a.burnInSteps >= 0)) problems.push(`async.burnInSteps must be an integer ≥ 0 (got ${a.burnInSteps})`);
    if (!(a.stalenessMs > 0)) problems.push(`async.stalenessMs must be > 0 (got ${a.stalenessMs})`);
  }
  if (c.aggregator === 'trimmed-mean') {
    // A leave-one-out target combines the n − 1 others: a fraction that cuts none of them is the plain mean, silently.
    const fraction = c.trimFraction ?? TRIMMED_MEAN_DEFAULT_FRACTION;
    const others = c.participants.length - 1;
    if (others >= 3 && trimmedPerSide(fraction, others) === 0) {
      problems.push(
        `trimFraction ${fraction} trims ⌊${fraction} × ${others}⌋ = 0 of the ${others} other participants' values: the trimmed mean would be the plain mean; ` +
          `set trimFraction ≥ ${(Math.ceil((1 / others) * 1000) / 1000).toFixed(3)} (or use aggregator mean)`,
      );
    }
  }
  if (!(c.temperature > 0)) problems.push(`temperature must be > 0 (got ${c.temperature})`);
  if (!(c.alpha >= 0 && c.alpha <= 1)) problems.push(`alpha must be in [0, 1] (got ${c.alpha})`);
  if (problems.length > 0) throw new Error(`invalid session config "${c.id}": ${problems.join('; ')}`);
}
