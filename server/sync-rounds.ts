/**
 * Synchronous rounds with a barrier, the mode of every algorithm but co-distillation.
 *
 *   waiting ──(quorum joined)──► collecting ──(all uploaded, or deadline with quorum)──► training
 *      ▲                              │ deadline without quorum: round fails                 │
 *      │                              ▼                                                       │
 *      └──────────── next round ◄──────────── (all contributors reported, or deadline) ◄─────┘
 */
import { ErrorCode, isClassRowKind, knowledgeShape, ProtocolError, type ClientMessage, type Contribution, type KnowledgeExpectation, type WireError } from '../protocol/index.js';
import type { Phase, SessionHost, SessionMode } from './session-mode.js';
import { sampleParticipants } from './participant-sampling.js';
import { valuesDigest, type RoundRecord, type SessionConfig } from './session-config.js';
import type { Target } from './strategies/index.js';
import type { EnsembleReply, Outgoing, PeerLink } from './wire.js';

export interface OpenRound {
  record: RoundRecord;
  referenceIds: number[];
  /** The round's announcement, resent to a participant that (re)joins while the round collects. */
  announcement: Outgoing['round'];
  /** With sampling: what a contributor that is not sampled is told instead (it sits the round out). */
  sitOut: Outgoing['round'] | undefined;
  /** Weight-averaging sessions past their first aggregate: the announcement with the global model, for members that do not hold it. */
  withModel: Outgoing['round'] | undefined;
  uploads: Map<string, Contribution>;
  /** Who still owes a training report (the contributors, once targets are out). */
  owing: Set<string>;
  /**
   * Who may upload to the round (record.participants but the distillers; with sampling, the
   * sampled ones), as a set: membership is checked on every upload.
   */
  members: Set<string>;
  /** Members that left since the round opened (some may have rejoined). */
  departed: number;
}

export class SyncRounds implements SessionMode {
  phase: Phase = 'waiting';
  protected open: OpenRound | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** Parameter count of the model whose weights this session exchanges, fixed by the first aggregated round (FedAvg). */
  private parameters: number | undefined;
  /** Row width of the class kinds (FedProto's prototypes, FedHKD's hyper-knowledge), fixed by the first aggregated round. */
  private width: number | undefined;
  /**
   * Weight-averaging sessions (FedAvg): the global model w_t, the last round's aggregate, from
   * which every member starts a round (McMahan et al. 2017, Algorithm 1). Undefined before the
   * first aggregate: round 1 starts from the participants' initial model.
   */
  private globalModel: Target | undefined;
  /**
   * The learners whose student is the global model: sent it (as their target, or with a round's
   * announcement) and not trained since. A member not in it is sent the model with the round's
   * announcement — with sampling, one that sat out the round that made it; also one that rejoined
   * (it may be a new process) or whose upload missed the aggregate.
   */
  private readonly holdingGlobalModel = new Set<string>();

  constructor(protected readonly session: SessionHost) {
    if (session.strategy.knowledge === 'weights') {
      this.globalModel = journalledGlobalModel(session);
      this.parameters = this.globalModel?.values.length;
    }
  }

  get currentRound(): number {
    return this.open?.record.round ?? this.session.history.length;
  }

  get members(): readonly string[] {
    return this.open?.record.participants ?? [];
  }

  openNext(): void {
    // A session whose last round (or a round that stops it) was journalled but not its end — the
    // coordinator killed between the two writes — is resumed over: it ends now, as it would have.
    const over = endOf(this.session.config, this.session.history);
    if (over !== undefined) this.session.end(over);
    else this.openRound(this.session.history.length + 1);
  }

  joined(participant: string, link: PeerLink, returning: boolean): void {
    // A new link may be a new process, with its initial model: it is sent the global model when it next takes part.
    this.holdingGlobalModel.delete(participant);
    // A round still collecting takes a (re)joining participant: it is told the round, after its join is answered.
    const open = this.open;
    if (this.phase !== 'collecting' || open === undefined) return;
    const distiller = this.session.contributors([participant]).length === 0;
    if (distiller) {
      if (!open.record.participants.includes(participant)) open.record.participants.push(participant);
    } else if (!open.members.has(participant)) {
      // The round's sample is drawn when it opens: a contributor that was not in it sits the round out.
      const sitOut = open.sitOut;
      if (sitOut !== undefined) {
        setImmediate(() => {
          if (this.open === open && this.phase === 'collecting' && this.session.links.get(participant) === link) open.record.bytesDown += link.send('round', sitOut);
        });
        return;
      }
      open.members.add(participant);
      open.record.participants.push(participant);
    } else if (returning) {
      open.departed--; // a member not connected left after the round opened, and is back
    }
    setImmediate(() => {
      if (this.open === open && this.phase === 'collecting' && this.session.links.get(participant) === link) {
        open.record.bytesDown += link.send('round', this.announcementFor(open, participant));
      }
    });
  }

  left(participant: string): void {
    const open = this.open;
    if (open === undefined) return;
    if (open.members.has(participant)) open.departed++;
    if (this.phase === 'collecting') {
      open.uploads.delete(participant);
      if (this.readyEarly()) this.aggregate();
    } else if (this.phase === 'training') {
      open.owing.delete(participant);
      if (open.owing.size === 0) this.closeRound();
    }
  }

  expectUpload(participant: string, round: number): KnowledgeExpectation | null {
    const open = this.requireOpen(participant, round, 'upload');
    if (this.phase !== 'collecting') {
      throw new ProtocolError(ErrorCode.RoundClosed, `round ${round} is closed: its aggregate has been sent; uploads are no longer taken`);
    }
    if (open.uploads.has(participant)) return null; // a retried upload: the first one stands
    if (!open.members.has(participant)) {
      if (open.record.sampled !== undefined) {
        throw new ProtocolError(ErrorCode.RoundClosed, `${participant} is not among the ${open.record.sampled.length} participants sampled for round ${round}; wait for round ${round + 1}`);
      }
      throw new ProtocolError(ErrorCode.RoundClosed, `round ${round} opened before ${participant} joined; wait for round ${round + 1}`);
    }
    const { knowledge } = this.session.strategy;
    if (knowledge === 'none') {
      throw new ProtocolError(ErrorCode.Schema, `session ${this.session.config.id} exchanges nothing: there is no upload to send`);
    }
    return { kind: knowledge, round, numClasses: this.session.config.numClasses, rows: open.referenceIds.length, parameters: this.parameters, width: this.width, positions: this.session.config.positions };
  }

  upload(participant: string, round: number, contribution: Contribution, bytes: number): void {
    const open = this.requireOpen(participant, round, 'upload');
    if (this.phase !== 'collecting' || open.uploads.has(participant)) return;
    open.uploads.set(participant, contribution);
    open.record.bytesUp += bytes;
    if (this.readyEarly()) this.aggregate();
  }

  report(participant: string, message: ClientMessage<'report'>, bytes: number): void {
    const open = this.requireOpen(participant, message.round, 'report');
    if (this.phase !== 'training') {
      throw new ProtocolError(ErrorCode.RoundClosed, `round ${message.round} takes no reports before its aggregate is sent`);
    }
    if (!open.owing.delete(participant)) return; // a repeated report, or one from a non-contributor
    open.record.reports[participant] = message.metrics;
    open.record.bytesUp += bytes;
    if (open.owing.size === 0) this.closeRound();
  }

  expectPush(): KnowledgeExpectation {
    throw this.notAsync('push');
  }

  push(): void {
    throw this.notAsync('push');
  }

  pull(): EnsembleReply {
    throw this.notAsync('pull');
  }

  replied(bytes: number): void {
    if (this.open !== undefined) this.open.record.bytesDown += bytes;
  }

  checkPausable(): void {}

  stop(): void {
    clearTimeout(this.timer);
    this.phase = 'ended';
    this.open = undefined;
  }

  isLate(participant: string): boolean {
    const open = this.open;
    if (open === undefined || !open.members.has(participant)) return false;
    // The round aggregated without this member's upload: it missed the round.
    if (this.phase === 'training' && this.session.strategy.knowledge !== 'none' && !open.record.contributors.includes(participant)) return true;
    if (!this.owes(participant)) return false;
    const others = open.record.participants.filter((q) => q !== participant && this.session.links.has(q));
    return others.length > 0 && others.every((q) => !this.owes(q));
  }

  private owes(participant: string): boolean {
    const open = this.open;
    if (open === undefined || !open.members.has(participant) || this.phase === 'ended') return false;
    if (this.phase === 'collecting') return !open.uploads.has(participant);
    return open.owing.has(participant);
  }

  private notAsync(what: string): ProtocolError {
    return new ProtocolError(ErrorCode.Schema, `session ${this.session.config.id} runs synchronous rounds: ${what} is for asynchronous sessions; upload instead`);
  }

  protected requireOpen(participant: string, round: number, what: string): OpenRound {
    const open = this.open;
    if (open === undefined || open.record.round !== round) {
      const now = this.phase === 'ended' ? 'the session has ended' : `the current round is ${this.currentRound}`;
      throw new ProtocolError(ErrorCode.RoundClosed, `${what} from ${participant} for round ${round} refused: ${now}`);
    }
    return open;
  }

  protected openRound(round: number): void {
    const { config, strategy } = this.session;
    const plan = strategy.configureRound(round);
    const deadline = Date.now() + config.roundTimeoutMs;
    const participants = [...this.session.links.keys()];
    const contributors = this.session.contributors(participants);
    // Sampled among the contributors connected now, deterministically from (seed, round, id): a restart draws the same.
    const sampled = config.sampling === undefined ? undefined : sampleParticipants(contributors, config.sampling, config.minParticipants, config.seed, round);
    const record: RoundRecord = {
      round,
      participants,
      ...(sampled === undefined ? {} : { sampled }),
      contributors: [],
      referenceCount: plan.referenceIds.length,
      bytesUp: 0,
      bytesDown: 0,
      reports: {},
      ensembleDigest: null,
      openedAt: Date.now(),
      closedAt: 0,
    };
    const announcement: Outgoing['round'] = {
      session: config.id, round, knowledge: strategy.knowledge, referenceIds: plan.referenceIds, temperature: config.temperature, deadline,
      ...(sampled === undefined ? {} : { sampled: true }),
    };
    // One message object for every participant that sits out, and one for every member sent the global model, so that each is encoded once.
    const sitOut = sampled === undefined ? undefined : { ...announcement, referenceIds: [], sampled: false };
    const withModel = this.globalModel === undefined ? undefined : { ...announcement, model: this.globalModel };
    const open: OpenRound = {
      record, referenceIds: plan.referenceIds, announcement, sitOut, withModel, uploads: new Map(), owing: new Set(), members: new Set(sampled ?? contributors), departed: 0,
    };
    this.open = open;
    if (strategy.knowledge === 'none') {
      // Nothing to collect: everyone (sampled) trains at once and reports.
      this.phase = 'training';
      record.contributors = sampled ?? participants;
      open.owing = new Set(this.session.learners(record.contributors));
      record.bytesDown += this.announce(open);
      this.arm(config.trainTimeoutMs, () => this.closeRound());
      return;
    }
    this.phase = 'collecting';
    record.bytesDown += this.announce(open);
    // The members train from here on: their students are the global model no longer.
    for (const member of open.members) this.holdingGlobalModel.delete(member);
    this.arm(config.roundTimeoutMs, () => this.aggregate());
  }

  /** Tells every connected participant the round: its members and the distillers take part, the contributors not sampled sit it out. */
  private announce(open: OpenRound): number {
    if (open.sitOut === undefined && open.withModel === undefined) return this.session.broadcast('round', open.announcement);
    let bytes = 0;
    for (const [participant, link] of this.session.links) bytes += link.send('round', this.announcementFor(open, participant));
    return bytes;
  }

  /**
   * What a participant is told of the open round: a contributor not sampled, to sit it out; a
   * learning member that does not hold the global model, the round with it; anyone else, the round.
   */
  private announcementFor(open: OpenRound, participant: string): Outgoing['round'] {
    if (!open.members.has(participant)) {
      return open.sitOut !== undefined && this.session.contributors([participant]).length > 0 ? open.sitOut : open.announcement;
    }
    const needsModel = open.withModel !== undefined && !this.holdingGlobalModel.has(participant) && this.session.learners([participant]).length > 0;
    return needsModel ? open.withModel! : open.announcement;
  }

  /**
   * Whether the round can aggregate before its deadline: everyone connected has uploaded, and
   * they are a quorum. Short of a quorum the round waits for its deadline, since a participant
   * whose link dropped may yet rejoin and upload.
   */
  private readyEarly(): boolean {
    const open = this.open!;
    if (open.uploads.size < this.session.config.minParticipants) return false;
    // Everyone expected has uploaded only if there are at least as many uploads as members still
    // connected, of whom there are at least members − departed: a constant-time "no" for every
    // upload but the last, instead of an O(participants) scan each time (O(n²) per round).
    if (open.uploads.size < open.members.size - open.departed) return false;
    const expected = [...open.members].filter((p) => this.session.links.has(p));
    return expected.length > 0 && expected.every((p) => open.uploads.has(p));
  }

  /** The collecting phase's deadline, or everyone has uploaded: aggregate (secure-rounds.ts takes over here). */
  protected aggregate(): void {
    const { config, strategy, journal } = this.session;
    const open = this.open!;
    const { record } = open;
    const length = this.firstLength(open);
    if (open.uploads.size < config.minParticipants) {
      this.failRound(
        new ProtocolError(
          ErrorCode.RoundClosed,
          `round ${record.round} failed: ${open.uploads.size} of ${record.participants.length} participants uploaded before the deadline; the quorum is ${config.minParticipants}`,
        ).toWire(),
      );
      return;
    }
    if (strategy.knowledge === 'weights') this.parameters ??= length;
    if (isClassRowKind(strategy.knowledge) && length !== undefined) this.width ??= length / config.numClasses;
    // In participant order, not arrival order: float sums depend on the order of their terms (a
    // weighted mean visibly so), and the same uploads must give the same targets however the
    // network ordered them. The record lists the contributors in the order they were aggregated.
    const contributions = [...open.uploads.values()].sort((a, b) => (a.participant < b.participant ? -1 : a.participant > b.participant ? 1 : 0));
    record.contributors = contributions.map((c) => c.participant);
    const { targets, ensemble } = strategy.aggregate(contributions, this.session.learners(record.contributors), open.referenceIds.length);
    if (ensemble !== null) record.ensembleDigest = valuesDigest(ensemble);
    if (strategy.knowledge === 'weights' && ensemble !== null) {
      // A weight-averaging strategy's aggregate is the new global model: no student is it yet.
      this.globalModel = { values: ensemble, shape: [ensemble.length] };
      this.holdingGlobalModel.clear();
    }
    // Journalled before any target leaves: what a participant learns from can always be recomputed.
    if (journal !== undefined && strategy.knowledge !== 'none') {
      const digests = new Map([...targets].map(([participant, target]) => [participant, target === null ? null : valuesDigest(target.values)]));
      journal.aggregated(record.round, strategy.knowledge, contributions, digests);
    }
    this.phase = 'training';
    for (const [participant, target] of targets) {
      const link = this.session.links.get(participant);
      if (link === undefined) continue;
      open.owing.add(participant);
      record.bytesDown += link.send('target', {
        session: config.id, round: record.round, kind: strategy.knowledge, target, counts: target?.counts, contributors: record.contributors.length,
      });
      if (target !== null && target.values === this.globalModel?.values) this.holdingGlobalModel.add(participant);
    }
    // Each distiller learns from the ensemble of every contribution (FedDF's server-side step,
    // Lin et al. 2020, taken by a participant process: the coordinator never trains).
    // (Only sessions with a reference-set ensemble admit one: see Session.checkDistillable.)
    const distillers = this.session.distillers().filter((d) => open.record.participants.includes(d));
    if (ensemble !== null && distillers.length > 0) {
      const target = { values: ensemble, shape: knowledgeShape(strategy.knowledge, { rows: open.referenceIds.length, numClasses: config.numClasses, positions: config.positions }) };
      for (const distiller of distillers) {
        open.owing.add(distiller);
        record.bytesDown += this.session.links.get(distiller)!.send('target', {
          session: config.id, round: record.round, kind: strategy.knowledge, target, contributors: record.contributors.length,
        });
      }
    }
    open.uploads.clear(); // the aggregate is out: hold no participant's predictions longer
    if (open.owing.size === 0) this.closeRound();
    else this.arm(config.trainTimeoutMs, () => this.closeRound());
  }

  /**
   * Until a round has aggregated, weights and class rows may arrive in any length (the session
   * knows no model): the first aggregated round fixes it as the length most of its uploads have
   * (ties: the one that arrived first), and leaves the others out of the round. Fixed by the first
   * upload instead, one member uploading first — a hostile one, say — would have every other
   * member's uploads refused for the rest of the session. Returns that length, or undefined when
   * it is already fixed or the kind has none to fix.
   */
  private firstLength(open: OpenRound): number | undefined {
    const { knowledge } = this.session.strategy;
    const unfixed = knowledge === 'weights' ? this.parameters === undefined : isClassRowKind(knowledge) && this.width === undefined;
    if (!unfixed || open.uploads.size === 0) return undefined;
    const byLength = new Map<number, number>();
    for (const c of open.uploads.values()) byLength.set(c.values.length, (byLength.get(c.values.length) ?? 0) + 1);
    let chosen = -1;
    for (const [length, n] of byLength) if (chosen < 0 || n > byLength.get(chosen)!) chosen = length;
    for (const [participant, c] of open.uploads) if (c.values.length !== chosen) open.uploads.delete(participant);
    return chosen;
  }

  protected failRound(error: WireError): void {
    const { config } = this.session;
    const open = this.open!;
    open.record.failure = error;
    open.record.bytesDown += this.session.broadcast('round-failed', { session: config.id, round: open.record.round, error });
    if (config.onRoundFailure === 'stop') {
      this.finishRecord();
      this.session.end(endOf(config, this.session.history)!);
      return;
    }
    this.closeRound();
  }

  private finishRecord(): void {
    const open = this.open!;
    this.open = undefined;
    this.session.completed(open.record);
  }

  protected closeRound(): void {
    clearTimeout(this.timer);
    const round = this.open!.record.round;
    this.finishRecord();
    const over = endOf(this.session.config, this.session.history);
    if (over !== undefined) {
      this.session.end(over);
    } else if (this.session.links.size === 0 || this.session.paused) {
      this.phase = 'waiting';
    } else {
      this.openRound(round + 1);
    }
  }

  protected arm(ms: number, then: () => void): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(then, ms);
  }
}

/**
 * The global model of a weight-averaging session resumed from its journal: the aggregate of its
 * last aggregated round, recomputed from the journalled contributions and checked against the
 * round's digest, so that a restarted coordinator sends the model the participants last received.
 */
function journalledGlobalModel(session: SessionHost): Target | undefined {
  const last = [...session.history].reverse().find((r) => r.ensembleDigest !== null);
  if (last === undefined || session.journal === undefined) return undefined;
  const contributions = session.journal.contributions(last.round);
  const ensemble = contributions.length === 0 ? null : session.strategy.aggregate(contributions, [], 0).ensemble;
  if (ensemble === null || valuesDigest(ensemble) !== last.ensembleDigest) {
    throw new Error(
      `session ${session.config.id}: the journal's contributions to round ${last.round} do not give the global model that round sent (digest ${last.ensembleDigest!.slice(0, 12)}…): ` +
        'the journal is inconsistent, and the session cannot resume from it',
    );
  }
  return { values: ensemble, shape: [ensemble.length] };
}

/** Why a session that has run these rounds is over (its last round done, or a failed round that stops it); undefined while it goes on. */
function endOf(config: Readonly<SessionConfig>, history: readonly RoundRecord[]): string | undefined {
  const last = history.at(-1);
  if (last?.failure !== undefined && config.onRoundFailure === 'stop') return `stopped after round ${last.round} failed: ${last.failure.message}`;
  if (history.length >= config.rounds) return `completed ${history.length} rounds`;
  return undefined;
}
