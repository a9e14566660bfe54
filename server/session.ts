/**
 * A session: one experiment or deployment. It admits participants (join, leave, roles), answers
 * its operators (start, pause, resume, stop, status) and records its rounds; how the rounds run
 * is its mode's business, chosen by the strategy's descriptor:
 *  - synchronous rounds with a barrier (server/sync-rounds.ts): every algorithm but one;
 *  - asynchronous exchange with checkpoints (server/async-run.ts): co-distillation.
 *
 * The session knows nothing of sockets or bytes: each participant is reached through a PeerLink,
 * uploads arrive as decoded Contributions (server/wire.ts decodes them), and what goes out are
 * decoded messages that the link encodes. A test can drive the state machine directly.
 */
import { EventEmitter } from 'node:events';
import {
  ErrorCode,
  PROTOCOL_VERSION,
  ProtocolError,
  type ClientMessage,
  type Contribution,
  type KnowledgeExpectation,
  type TokenizerIdentity,
  type ReplyMessage,
  type SessionInfo,
} from '../protocol/index.js';
import type { SessionStatus } from '../protocol/operator.js';
import { AsyncRun } from './async-run.js';
import type { SessionJournal } from './journal.js';
import { checkSessionConfig, DEFAULT_ASYNC, type Role, type RoundRecord, type SessionConfig } from './session-config.js';
import { createStrategy, type Strategy } from './strategies/index.js';
import type { SessionHost, SessionMode } from './session-mode.js';
import { SyncRounds } from './sync-rounds.js';
import { SecureRounds, type SecureEvent } from './secure-rounds.js';
import { strategyDescriptor } from './strategies/index.js';
import type { EnsembleReply, Outgoing, PeerLink } from './wire.js';

export type { ParticipantEntry, ParticipantMetrics, Role, RoundRecord, SessionConfig } from './session-config.js';
export { DEFAULT_ASYNC } from './session-config.js';
export type { PeerLink } from './wire.js';
export type { Phase, SessionHost, SessionMode } from './session-mode.js';

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

export class Session extends EventEmitter<SessionEvents> implements SessionHost {
  readonly config: Readonly<SessionConfig>;
  readonly strategy: Strategy;
  readonly history: RoundRecord[];
  readonly journal: SessionJournal | undefined;
  readonly links = new Map<string, PeerLink>();
  private readonly roles = new Map<string, Role>();
  private readonly mode: SessionMode;
  /** Set by pause(): the round in progress finishes, and no next round opens until resume(). */
  private pausedFlag = false;
  /** The reference set's digest: the config's, or the first one a participant joined with, and who that was. */
  private reference: { digest: string; from: string } | undefined;

  constructor(config: SessionConfig, options: SessionOptions = {}) {
    super();
    checkSessionConfig(config);
    this.config = config;
    this.history = options.history ?? [];
    this.journal = options.journal;
    this.strategy = createStrategy(config.algorithm, config);
    if (config.referenceDigest !== undefined) this.reference = { digest: config.referenceDigest, from: 'the session config' };
    this.mode =
      this.strategy.mode === 'async' ? new AsyncRun(this, config.async ?? DEFAULT_ASYNC)
      : config.secureAggregation !== undefined ? new SecureRounds(this)
      : new SyncRounds(this);
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
      uploadTopK: c.uploadTopK,
      // Per-token top-k targets default to the student tail: measured better than the even spread at
      // T = 1 and 2, own and mixed held-out text (experiments/lm/RESULTS.md, "Top-k both ways").
      ...(c.sparseTail !== undefined ? { sparseTail: c.sparseTail } : c.targetTopK !== undefined && c.positions !== undefined ? { sparseTail: 'student' as const } : {}),
      maxMessageBytes: c.maxMessageBytes,
      async: this.mode instanceof AsyncRun ? this.mode.settings : undefined,
      secure: c.secureAggregation === undefined ? undefined : { threshold: c.secureAggregation.threshold, targets: strategyDescriptor(c.algorithm).secureTargets! },
      tokenizer: c.tokenizer,
      positions: c.positions,
    };
  }

  get ended(): boolean {
    return this.mode.phase === 'ended';
  }

  get currentRound(): number {
    return this.mode.currentRound;
  }

  get connected(): string[] {
    return [...this.links.keys()];
  }

  /** Set by pause(): the round in progress finishes, and no next round opens until resume(). */
  get paused(): boolean {
    return this.pausedFlag;
  }

  /** Admits a participant (again, after a reconnect); it takes part from the next round it is sent. */
  join(participant: string, link: PeerLink, role: Role = 'participant', reference?: { rows: number; digest: string }, tokenizer?: TokenizerIdentity): ReplyMessage<'joined'> {
    if (this.ended) throw new ProtocolError(ErrorCode.Session, `session ${this.config.id} has ended`);
    if (role === 'teacher' && this.strategy.knowledge === 'none') {
      throw new ProtocolError(ErrorCode.Auth, `session ${this.config.id} exchanges nothing: a teacher has nothing to contribute`);
    }
    if (role === 'distiller') this.checkDistillable();
    if (reference !== undefined) this.checkReference(participant, reference);
    this.checkTokenizer(participant, tokenizer);
    const allowed = this.config.participants.find((p) => p.id === participant)?.role;
    if (allowed !== undefined && allowed !== role) {
      throw new ProtocolError(ErrorCode.Auth, `${participant}'s token is for a ${allowed} of session ${this.config.id}; it cannot join as a ${role}`);
    }
    const returning = !this.links.has(participant);
    this.links.set(participant, link);
    this.roles.set(participant, role);
    const reply: ReplyMessage<'joined'> = { v: PROTOCOL_VERSION, ok: true, participant, info: this.info, round: this.currentRound };
    // Start on the next turn, after the join has been answered.
    if (this.mode.phase === 'waiting' && this.links.size >= this.neededToOpen) setImmediate(() => this.startIfReady());
    this.mode.joined(participant, link, returning);
    return reply;
  }

  /** A participant left: its upload to a round not yet aggregated is discarded, and no one waits for it. */
  leave(participant: string, link?: PeerLink): void {
    // A participant that reconnected has a new link: the old connection's departure is not its own.
    if (link !== undefined && this.links.get(participant) !== link) return;
    if (!this.links.delete(participant)) return;
    this.roles.delete(participant);
    this.mode.left(participant);
  }

  learners(among: Iterable<string>): string[] {
    // Not "=== 'participant'": a contributor that left mid-round has no role any more, and still has its target computed (and journalled).
    return [...among].filter((p) => { const role = this.roles.get(p); return role !== 'teacher' && role !== 'distiller'; });
  }

  contributors(among: Iterable<string>): string[] {
    return [...among].filter((p) => this.roles.get(p) !== 'distiller');
  }

  distillers(): string[] {
    return [...this.links.keys()].filter((p) => this.roles.get(p) === 'distiller');
  }

  /**
   * Every participant must predict on the same reference rows, or the ensemble mixes predictions
   * of different samples under one id. Checked at the join, not discovered at round 1.
   */
  private checkReference(participant: string, reference: { rows: number; digest: string }): void {
    if (this.config.referenceSize === 0) return; // a session without one (FD, FedAvg) ignores what a site happens to hold
    if (reference.rows !== this.config.referenceSize) {
      throw new ProtocolError(ErrorCode.Reference, `${participant}'s reference set holds ${reference.rows} rows; session ${this.config.id}'s holds ${this.config.referenceSize}`);
    }
    if (this.reference === undefined) {
      this.reference = { digest: reference.digest, from: participant };
      return;
    }
    if (reference.digest !== this.reference.digest) {
      throw new ProtocolError(
        ErrorCode.Reference,
        `${participant}'s reference set has digest ${reference.digest.slice(0, 12)}…; session ${this.config.id}'s is ${this.reference.digest.slice(0, 12)}… (from ${this.reference.from}): ` +
          'every site must use the same reference file, read the same way',
      );
    }
  }

  /**
   * Per-token knowledge means something only between models whose token ids mean the same: a
   * session that exchanges it admits only its own tokenizer (the "tokenizer mismatch").
   */
  private checkTokenizer(participant: string, tokenizer: TokenizerIdentity | undefined): void {
    const expected = this.config.tokenizer;
    if (expected === undefined) return;
    const fields = (t: TokenizerIdentity) => `{kind=${t.kind}, encoding=${t.encoding}, vocabSize=${t.vocabSize}, bos=${t.bos}}`;
    if (tokenizer === undefined) {
      throw new ProtocolError(ErrorCode.Tokenizer, `session ${this.config.id} exchanges per-token knowledge with the tokenizer ${fields(expected)}; ${participant} joined without naming its tokenizer`);
    }
    if ((['kind', 'encoding', 'vocabSize', 'bos'] as const).some((k) => tokenizer[k] !== expected[k])) {
      throw new ProtocolError(
        ErrorCode.Tokenizer,
        `${participant}'s tokenizer ${fields(tokenizer)} is not session ${this.config.id}'s ${fields(expected)}: token ids would mean different things`,
      );
    }
  }

  /**
   * A distiller learns from the round's ensemble on the reference set: a session must have both.
   * FD's class logits come with no shared samples to learn them on; FedAvg's average already is
   * one global model; an asynchronous session has no round ensemble to send.
   */
  private checkDistillable(): void {
    const { knowledge, mode } = this.strategy;
    const why =
      knowledge !== 'reference-predictions' && knowledge !== 'reference-token-predictions' && knowledge !== 'reference-logits'
        ? `it exchanges ${knowledge === 'none' ? 'nothing' : knowledge}, not predictions on a shared reference set`
        : mode === 'async' ? 'it is asynchronous: there is no round ensemble to send' : undefined;
    if (why !== undefined) {
      throw new ProtocolError(ErrorCode.Auth, `session ${this.config.id} (${this.config.algorithm}) cannot take a distiller: ${why}`);
    }
  }

  // ── Requests of joined participants, decoded by the coordinator (server/wire.ts) ──

  expectUpload(participant: string, round: number): KnowledgeExpectation | null {
    if (this.roles.get(participant) === 'distiller') {
      throw new ProtocolError(ErrorCode.Schema, `${participant} joined as a distiller: it contributes nothing and only receives the ensemble`);
    }
    return this.mode.expectUpload(participant, round);
  }

  /** An upload for the open round, decoded against expectUpload's answer; idempotent by (session, round, participant). */
  upload(participant: string, round: number, contribution: Contribution, bytes: number): void {
    this.mode.upload(participant, round, contribution, bytes);
  }

  /** A step of secure aggregation (server/secure-rounds.ts); refused by sessions that do not run it. */
  secure(participant: string, event: SecureEvent, message: ClientMessage<SecureEvent>, bytes: number): void {
    if (!(this.mode instanceof SecureRounds)) {
      throw new ProtocolError(ErrorCode.Secure, `session ${this.config.id} does not run secure aggregation: ${event} is for sessions whose config sets secureAggregation`);
    }
    this.mode.receive(participant, event, message, bytes);
  }

  /** A participant's training report for the round (or checkpoint) whose target it received. */
  report(participant: string, message: ClientMessage<'report'>, bytes: number): void {
    this.mode.report(participant, message, bytes);
  }

  expectPush(participant: string, shard: number): KnowledgeExpectation {
    return this.mode.expectPush(participant, shard);
  }

  /** Asynchronous sessions: stores a participant's latest predictions on a shard. */
  push(participant: string, shard: number, step: number, contribution: Contribution, bytes: number): void {
    this.mode.push(participant, shard, step, contribution, bytes);
  }

  /** Asynchronous sessions: the ensemble of the others' fresh predictions on a shard. */
  pull(participant: string, shard: number, bytes: number): EnsembleReply {
    return this.mode.pull(participant, shard, bytes);
  }

  /** Counts the envelope bytes of a reply sent for this session (a pull's answer). */
  replied(bytes: number): void {
    this.mode.replied(bytes);
  }

  // ── What the modes call ──

  broadcast<E extends keyof Outgoing>(event: E, message: Outgoing[E]): number {
    let bytes = 0;
    for (const link of this.links.values()) bytes += link.send(event, message);
    return bytes;
  }

  completed(record: RoundRecord): void {
    record.closedAt = Date.now();
    this.journal?.completed(record);
    this.history.push(record);
    this.emit('round', record);
  }

  /**
   * Stops the session's clock without ending it (the coordinator is shutting down and the
   * journal keeps the session): a coordinator started on the same journal resumes it from its
   * last completed round, and participants rejoin by themselves.
   */
  suspend(): void {
    this.mode.stop();
    this.links.clear();
  }

  /** Ends the session now, telling every connected participant why. */
  end(reason: string): void {
    if (this.ended) return;
    this.mode.stop();
    this.journal?.ended(reason);
    this.broadcast('end', { session: this.config.id, reason, rounds: this.history.length });
    this.emit('end', { reason, rounds: this.history });
  }

  /** Participants needed to open a round from waiting: minToStart for the first, the quorum to go on (after a restart, or once all had left). */
  private get neededToOpen(): number {
    if (this.history.length > 0) return this.config.minParticipants;
    return this.config.minToStart ?? this.config.participants.length;
  }

  private startIfReady(): void {
    if (this.pausedFlag || this.mode.phase !== 'waiting' || this.links.size < this.neededToOpen) return;
    this.mode.openNext();
  }

  // ── Operator control and status (server/operator.ts): admins act, observers read ──

  /** Opens round 1 (or the next round) now with whoever has joined, without waiting for minToStart. */
  start(): void {
    this.requireNotEnded('start');
    if (this.mode.phase !== 'waiting') {
      throw new ProtocolError(ErrorCode.Session, `session ${this.config.id} is already running (round ${this.currentRound}); pause or stop it instead`);
    }
    if (this.links.size === 0) {
      throw new ProtocolError(ErrorCode.Session, `no participant is connected to session ${this.config.id}: a round needs at least one`);
    }
    this.pausedFlag = false;
    this.mode.openNext();
  }

  /** The round in progress runs to its end; the next one waits for resume() (or start()). */
  pause(): void {
    this.requireNotEnded('pause');
    this.mode.checkPausable();
    this.pausedFlag = true;
  }

  /** Lifts a pause: the next round opens now if participants are connected (round 1 still waits for minToStart). */
  resume(): void {
    this.requireNotEnded('resume');
    if (!this.pausedFlag) return;
    this.pausedFlag = false;
    if (this.mode.phase !== 'waiting') return;
    if (this.history.length === 0) this.startIfReady();
    else if (this.links.size > 0) this.mode.openNext();
  }

  /** Ends the session now; `by` names who stopped it, for the participants and the record. */
  stop(by: string): void {
    this.requireNotEnded('stop');
    this.end(`stopped by ${by}`);
  }

  private requireNotEnded(action: string): void {
    if (this.ended) throw new ProtocolError(ErrorCode.Session, `session ${this.config.id} has ended: nothing to ${action}`);
  }

  /** What an operator sees of this session: phase, participants' states, the rounds so far, the config without tokens. */
  status(endReason?: string): SessionStatus {
    const phase = this.mode.phase;
    const tookPart = new Set(this.history.flatMap((r) => r.participants));
    for (const p of this.mode.members) tookPart.add(p);
    const lastRound = new Set(this.history.at(-1)?.participants ?? []);
    const participants = this.config.participants.map(({ id }): SessionStatus['participants'][number] => {
      const role = this.roles.get(id);
      const state = phase === 'ended'
        ? (lastRound.has(id) ? 'finished' : tookPart.has(id) ? 'dropped' : 'pending')
        : this.links.has(id) ? (this.mode.isLate(id) ? 'late' : 'active') : tookPart.has(id) ? 'dropped' : 'pending';
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
      id: this.config.id, algorithm: this.config.algorithm, phase, paused: this.pausedFlag,
      round: this.currentRound, rounds: this.config.rounds, config, participants, history,
    };
    if (endReason !== undefined) status.endReason = endReason;
    return status;
  }
}
