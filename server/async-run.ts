/**
 * Asynchronous exchange, the mode of co-distillation (Anil et al. 2018): one go signal, then
 * participants push predictions on reference shards and pull the others' ensemble at their own
 * pace (the store: server/async-exchange.ts). `rounds` counts checkpoints, at which each
 * participant reports whenever it gets there; a checkpoint closes when every learner has
 * reported, or at the training deadline.
 */
import { ErrorCode, knowledgeShape, ProtocolError, type ClientMessage, type Contribution, type KnowledgeExpectation } from '../protocol/index.js';
import { AsyncExchange } from './async-exchange.js';
import type { Phase, SessionHost, SessionMode } from './session-mode.js';
import type { AsyncSettings, RoundRecord } from './session-config.js';
import type { EnsembleReply } from './wire.js';

/** A checkpoint: reports arrive whenever each participant gets there. */
interface Checkpoint {
  record: RoundRecord;
  owing: Set<string>;
  timer: NodeJS.Timeout;
}

export class AsyncRun implements SessionMode {
  phase: Phase = 'waiting';
  readonly members: readonly string[] = [];
  private readonly exchange: AsyncExchange;
  private readonly checkpoints = new Map<number, Checkpoint>();
  /** Bytes since the last checkpoint: pushes and pulls have no round of their own. */
  private readonly bytes = { up: 0, down: 0 };

  constructor(
    private readonly session: SessionHost,
    readonly settings: AsyncSettings,
  ) {
    this.exchange = new AsyncExchange(session.strategy, settings, session.config.referenceSize);
  }

  get currentRound(): number {
    return this.session.history.length;
  }

  /** Asynchronous sessions start once: one go signal, then participants run at their own pace. */
  openNext(): void {
    const { config, strategy } = this.session;
    this.phase = 'running';
    const plan = strategy.configureRound(1);
    this.bytes.down += this.session.broadcast('round', {
      session: config.id, round: 1, knowledge: strategy.knowledge, referenceIds: plan.referenceIds, temperature: config.temperature,
      deadline: Date.now() + config.trainTimeoutMs,
    });
  }

  joined(): void {}

  left(participant: string): void {
    this.exchange.forget(participant);
    for (const [number, checkpoint] of [...this.checkpoints]) {
      checkpoint.owing.delete(participant);
      this.closeIfHeard(number);
    }
  }

  expectUpload(): KnowledgeExpectation | null {
    throw new ProtocolError(ErrorCode.Schema, `session ${this.session.config.id} is asynchronous: push and pull predictions instead of uploading them`);
  }

  upload(): void {
    throw new ProtocolError(ErrorCode.Schema, `session ${this.session.config.id} is asynchronous: push and pull predictions instead of uploading them`);
  }

  expectPush(_participant: string, shard: number): KnowledgeExpectation {
    this.requireRunning('push');
    const { config, strategy } = this.session;
    // Soft predictions on the shard's rows — per token (positions set) on its windows.
    const kind = strategy.knowledge === 'reference-token-predictions' ? 'reference-token-predictions' : 'reference-predictions';
    return { kind, round: 0, numClasses: config.numClasses, rows: this.exchange.rows(shard), positions: config.positions };
  }

  push(participant: string, shard: number, step: number, contribution: Contribution, bytes: number): void {
    this.requireRunning('push');
    this.exchange.push(participant, shard, step, contribution);
    this.bytes.up += bytes;
  }

  pull(participant: string, shard: number, bytes: number): EnsembleReply {
    this.requireRunning('pull');
    const rows = this.exchange.rows(shard);
    const ensemble = this.exchange.ensembleFor(participant, shard);
    this.bytes.up += bytes;
    return {
      shard,
      target: ensemble === null ? null : { values: ensemble.values, shape: knowledgeShape(this.session.strategy.knowledge, { rows, numClasses: this.session.config.numClasses, positions: this.session.config.positions }) },
      contributors: ensemble?.contributors ?? 0,
      oldestMs: ensemble?.oldestMs ?? 0,
    };
  }

  replied(bytes: number): void {
    this.bytes.down += bytes;
  }

  report(participant: string, message: ClientMessage<'report'>, bytes: number): void {
    const { config, history } = this.session;
    const number = message.round;
    if (this.phase !== 'running' || number > config.rounds || history.some((r) => r.round === number)) {
      throw new ProtocolError(ErrorCode.RoundClosed, `checkpoint ${number} takes no more reports`);
    }
    let checkpoint = this.checkpoints.get(number);
    if (checkpoint === undefined) {
      const participants = this.session.learners(this.session.links.keys());
      checkpoint = {
        record: {
          round: number, participants, contributors: participants, referenceCount: config.referenceSize, bytesUp: 0, bytesDown: 0,
          reports: {}, ensembleDigest: null, openedAt: Date.now(), closedAt: 0,
        },
        owing: new Set(participants),
        // A participant that stalls must not hold the others' checkpoint forever.
        timer: setTimeout(() => this.checkpointDeadline(number), config.trainTimeoutMs),
      };
      this.checkpoints.set(number, checkpoint);
    }
    if (participant in checkpoint.record.reports) return;
    if (!checkpoint.owing.delete(participant)) {
      // A learner that was away when the checkpoint opened (its link dropped, it rejoined) reports into it as well.
      if (this.session.learners([participant]).length === 0) return;
      checkpoint.record.participants.push(participant);
    }
    checkpoint.record.reports[participant] = message.metrics;
    this.bytes.up += bytes;
    this.closeIfHeard(number);
  }

  /**
   * A checkpoint closes before its deadline once every learner connected when it opened has
   * reported and they are a quorum (minParticipants), as a synchronous round aggregates early only
   * with a quorum's uploads: a site whose link dropped and comes back is waited for until the
   * deadline (checkpointDeadline), not left behind by the others' next checkpoints.
   */
  private closeIfHeard(number: number): void {
    const checkpoint = this.checkpoints.get(number);
    if (checkpoint === undefined || checkpoint.owing.size > 0) return;
    const learners = this.session.learners(this.session.config.participants.map((p) => p.id)).length;
    if (Object.keys(checkpoint.record.reports).length >= Math.min(this.session.config.minParticipants, learners)) this.closeCheckpoint(number);
  }

  checkPausable(): void {
    // Asynchronous participants run at their own pace once started: there is no round to hold back.
    if (this.phase === 'running') {
      throw new ProtocolError(ErrorCode.Session, `session ${this.session.config.id} is asynchronous and running: it cannot pause, only stop`);
    }
  }

  stop(): void {
    for (const checkpoint of this.checkpoints.values()) clearTimeout(checkpoint.timer);
    this.checkpoints.clear();
    this.phase = 'ended';
  }

  isLate(): boolean {
    return false;
  }

  private requireRunning(what: string): void {
    if (this.phase !== 'running') {
      throw new ProtocolError(ErrorCode.RoundClosed, `session ${this.session.config.id} is ${this.phase === 'ended' ? 'over' : 'not running yet'}: no ${what}`);
    }
  }

  /**
   * The training deadline of a checkpoint: it closes with the reports of a quorum (minParticipants),
   * as a round aggregates with a quorum's uploads; short of one it waits another deadline. One
   * participant reporting checkpoints ahead of everyone — a hostile one can report the last at once —
   * cannot then close the last checkpoint, and end the session, for the others.
   */
  private checkpointDeadline(number: number): void {
    const checkpoint = this.checkpoints.get(number);
    if (checkpoint === undefined) return;
    const quorum = Math.min(this.session.config.minParticipants, checkpoint.record.participants.length);
    if (Object.keys(checkpoint.record.reports).length >= quorum) return this.closeCheckpoint(number);
    checkpoint.timer = setTimeout(() => this.checkpointDeadline(number), this.session.config.trainTimeoutMs);
  }

  private closeCheckpoint(number: number): void {
    const checkpoint = this.checkpoints.get(number);
    if (checkpoint === undefined) return;
    clearTimeout(checkpoint.timer);
    this.checkpoints.delete(number);
    const { record } = checkpoint;
    // Each checkpoint takes the bytes since the last.
    record.bytesUp = this.bytes.up;
    record.bytesDown = this.bytes.down;
    this.bytes.up = 0;
    this.bytes.down = 0;
    this.session.completed(record);
    if (number >= this.session.config.rounds) this.session.end(`completed ${number} checkpoints`);
  }
}
