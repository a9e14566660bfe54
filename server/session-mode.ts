/**
 * The seam between a session and its mode: what a mode (synchronous rounds, asynchronous
 * exchange) may use of its session, and what the session asks of its mode. A new way of running
 * rounds implements SessionMode; the session's participants, operator controls and status stay
 * where they are.
 */
import type { ClientMessage, Contribution, KnowledgeExpectation } from '../protocol/index.js';
import type { SessionStatus } from '../protocol/operator.js';
import type { SessionJournal } from './journal.js';
import type { RoundRecord, SessionConfig } from './session-config.js';
import type { Strategy } from './strategies/index.js';
import type { EnsembleReply, Outgoing, PeerLink } from './wire.js';

export type Phase = SessionStatus['phase'];

/** What a mode may use of its session. */
export interface SessionHost {
  readonly config: Readonly<SessionConfig>;
  readonly strategy: Strategy;
  readonly history: RoundRecord[];
  readonly journal: SessionJournal | undefined;
  readonly links: ReadonlyMap<string, PeerLink>;
  readonly paused: boolean;
  /** Participants that learn from their peers (get targets, report); teachers only contribute, distillers only learn. */
  learners(among: Iterable<string>): string[];
  /** Participants that can contribute: all but the distillers. */
  contributors(among: Iterable<string>): string[];
  /** The distillers connected: each learns from the round's ensemble of all contributions. */
  distillers(): string[];
  /** Sends one message to every connected participant; returns the envelope bytes sent in all. */
  broadcast<E extends keyof Outgoing>(event: E, message: Outgoing[E]): number;
  /** A round (or checkpoint) is over: journalled, kept, announced. */
  completed(record: RoundRecord): void;
  end(reason: string): void;
}

/**
 * How a session's rounds run: synchronous rounds or asynchronous exchange. Each request a mode
 * does not serve is refused with a code that says what to send instead.
 */
export interface SessionMode {
  readonly phase: Phase;
  readonly currentRound: number;
  /** From waiting: opens the round after the last completed one, or gives the go signal. */
  openNext(): void;
  /** A participant (re)joined with this link; the session has recorded it. */
  joined(participant: string, link: PeerLink, returning: boolean): void;
  /** A participant left; the session has forgotten its link. */
  left(participant: string): void;
  /** What an upload for `round` must hold; null for a retried upload (the first one stands). Throws if none is taken now. */
  expectUpload(participant: string, round: number): KnowledgeExpectation | null;
  upload(participant: string, round: number, contribution: Contribution, bytes: number): void;
  report(participant: string, message: ClientMessage<'report'>, bytes: number): void;
  /** What a push on `shard` must hold. Throws if pushes are not taken now. */
  expectPush(participant: string, shard: number): KnowledgeExpectation;
  push(participant: string, shard: number, step: number, contribution: Contribution, bytes: number): void;
  pull(participant: string, shard: number, bytes: number): EnsembleReply;
  /** Envelope bytes of a reply the coordinator sent on the session's behalf (a pull's answer). */
  replied(bytes: number): void;
  /** Throws if the mode cannot hold back its next round. */
  checkPausable(): void;
  /** No timer left running, nothing open: the mode takes nothing more. */
  stop(): void;
  /** The open round's members (status: who took part). */
  readonly members: readonly string[];
  /** Whether a connected participant lags behind the others in the open round (status). */
  isLate(participant: string): boolean;
}
