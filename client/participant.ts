/**
 * The participant: connects to a coordinator, joins a session with its token, and for every
 * round shares what its procedure computes, receives its target, trains its student and
 * reports. Its data never leaves; only predictions on reference samples do.
 */
import * as tf from '@tensorflow/tfjs';
import { io, type Socket } from 'socket.io-client';
import {
  clientMessages,
  encodeMessage,
  decodeMessage,
  decodeTopKRows,
  ErrorCode,
  isProbabilityKind,
  isTopK,
  knowledgeShape,
  packTensor,
  packTopK,
  PROTOCOL_VERSION,
  ProtocolError,
  readReply,
  readTarget,
  referenceDigest,
  replyMessages,
  roundMessage,
  serverMessages,
  shardIds,
  topKSupport,
  type ClientToServerEvents,
  type KnowledgeKind,
  type Role,
  type ServerMessage,
  type ServerToClientEvents,
  type SessionInfo,
} from '../protocol/index.js';
import type { LabeledDataset } from './data/dataset.js';
import { tokenizerIdentity, type TextSite } from './lm/site.js';
import { distiller } from './procedures/distiller.js';
import {
  combined,
  procedureFor,
  targetShape,
  type AsyncChannel,
  type AsyncProcedure,
  type ParticipantData,
  type Procedure,
  type RoundContext,
  type Share,
  type Target,
  type UploadContext,
  type UploadHook,
} from './procedures/index.js';
import { SecureParticipant, type SecureSend } from './secure-round.js';
import { GaussianUploads, type PrivacySettings, type PrivacySpent } from './privacy.js';
import type { Student, TrainResult } from './student.js';

export interface ParticipantOptions {
  url: string;
  session: string;
  token: string;
  /**
   * The student, or how to build it once the session has said what it is: a site whose data
   * lacks the highest classes (label skew) learns the class count from the session, not from
   * its largest label.
   */
  student?: Student | ((info: SessionInfo) => Student);
  /** Private data and the reference set; a language-model site gives `data.text` (client/lm/site.ts textParticipantData) and no student. */
  data: ParticipantData;
  /** Labeled data to report accuracy on after each round (a held-out or validation set). */
  evaluation?: LabeledDataset;
  /** Local epochs over the private data per round. */
  epochs: number;
  /**
   * FedMD's transfer learning (Li & Wang 2019, Algorithm 1), before the first round: this many
   * epochs on the labelled reference set (data.referenceLabels), then as many on the private
   * data. Off when omitted or 0.
   */
  pretrainOnReference?: number;
  batchSize: number;
  /** PEM certificate authority to trust for an https:// coordinator with its own (e.g. self-signed) certificate. */
  ca?: string;
  /**
   * A teacher only shares knowledge: it never receives a target or trains. A distiller only
   * learns: it shares nothing and trains on the ensemble of every contribution on the reference
   * set (client/procedures/distiller.ts); its `data.train` may be empty, and `data.reference` is
   * what it learns on.
   */
  role?: Role;
  /**
   * Differential privacy for the uploads (client/privacy.ts): clipping, Gaussian noise and the
   * (ε, δ) spent, reported with every round's metrics. Off when omitted.
   */
  privacy?: PrivacySettings;
  /**
   * Rewrites each upload before it is sent — the hook `privacy` installs; give one or the
   * other. Simulations use it for hostile participants (simulations/attacks.ts).
   */
  uploadHook?: UploadHook;
  /** How long to wait for the coordinator to answer a request. */
  requestTimeoutMs?: number;
  /**
   * Reconnection after the link drops or the coordinator restarts: attempts, then delays growing
   * from `delayMs` to `maxDelayMs` (with jitter). Defaults: 30 attempts, 0.5 s to 5 s — about two
   * minutes in which a restarted coordinator finds its participants again.
   */
  reconnect?: { attempts?: number; delayMs?: number; maxDelayMs?: number };
  /** Called once the coordinator has accepted the join: what the session is and exchanges. */
  onJoined?: (participant: string, info: SessionInfo) => void;
  onRound?: (result: RoundResult) => void;
  log?: (line: string) => void;
}

export interface RoundResult {
  round: number;
  /** Whether the round brought a target from peers (false for local training or a lone participant). */
  receivedTarget: boolean;
  /** False when the session sampled participants and this one sat the round out: it neither shared nor trained (train is then empty). */
  sampled?: boolean;
  train: TrainResult;
  accuracy?: number;
  /** Probabilities on the evaluation set, [n, numClasses], for ensemble metrics. */
  evaluationProbs?: Float32Array;
  /** Envelope bytes this participant sent and received in the round. */
  bytesUp: number;
  bytesDown: number;
  /** Live tensors after the round: must not grow from round to round. */
  numTensors: number;
  /** The privacy spent up to and including this round, when the uploads are private. */
  privacy?: PrivacySpent;
}

/** What the transfer learning before round 1 did (ParticipantOptions.pretrainOnReference). */
export interface PretrainResult {
  epochs: number;
  /** Accuracy on the labelled reference set after training on it, and again after the private data (as round 1 finds the student). */
  referenceAccuracy: number;
  referenceAccuracyBeforeRound1: number;
  train: TrainResult;
}

export interface ParticipantSummary {
  participant: string;
  info: SessionInfo;
  /** The transfer learning before round 1, when asked for. */
  pretrain?: PretrainResult;
  rounds: RoundResult[];
  endReason: string;
}

type ParticipantSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

/** The link to the coordinator dropped: what was being sent is lost, and the participant rejoins. */
class LinkDropped extends Error {
  override readonly name = 'LinkDropped';
}

/**
 * After its last round a participant whose link drops waits this long for the coordinator before
 * it ends on its own: long enough for a coordinator restarted on its journal (about 1.5 s) to take
 * it back, short beside the two minutes of reconnection attempts. Needed because a coordinator
 * that closes right after its end message may never deliver it: over TLS, closing its connections
 * discards what the TLS layer has not yet written (test/client/participant-links.test.ts).
 */
const LAST_ROUND_GRACE_MS = 3_000;

/** The upload hook the options ask for: the Gaussian mechanism, a caller's hook, or none. */
function uploadHookFor(options: ParticipantOptions): UploadHook | undefined {
  if (options.privacy !== undefined && options.uploadHook !== undefined) {
    throw new Error('privacy and uploadHook are the same hook point; give one of them (compose them in your own hook if you need both)');
  }
  return options.privacy === undefined ? options.uploadHook : new GaussianUploads(options.privacy);
}

/** Applies the hook, checking that it kept the upload's shape. */
function rewritten(hook: UploadHook | undefined, share: Share, context: UploadContext): Share {
  if (hook === undefined) return share;
  const sent = hook.transform(share, context);
  if (sent.values.length !== share.values.length) {
    throw new Error(`upload hook: round ${context.round}: returned ${sent.values.length} values for a ${context.kind} share of ${share.values.length}`);
  }
  return sent;
}

/**
 * Runs a participant until its session ends: connect and join (again after every reconnect),
 * then, round after round, share, learn from the target and report — or, in an asynchronous
 * session, run the procedure at its own pace — and finish when the coordinator ends the session.
 */
export function runParticipant(options: ParticipantOptions): Promise<ParticipantSummary> {
  let hook: UploadHook | undefined;
  try {
    hook = uploadHookFor(options);
  } catch (error) {
    return Promise.reject(error);
  }
  return new ParticipantRun(options, hook).run();
}

/** Who this participant is in its session, from the coordinator's answer to the join. */
interface Identity {
  participant: string;
  info: SessionInfo;
  procedure: Procedure;
}

/** One participant's run: the steps of runParticipant, and the state they share. */
class ParticipantRun {
  private readonly socket: ParticipantSocket;
  private readonly log: (line: string) => void;
  private readonly timeout: number;
  private identity: Identity | undefined;
  private reference: { rows: number; digest: string } | undefined;
  /** The student: given, or built at the first join from what the session said. */
  private student: Student | undefined;
  /** The round in progress, to which a target belongs. */
  private current: ServerMessage<'round'> | undefined;
  private bytesUp = 0;
  private bytesDown = 0;
  private readonly results: RoundResult[] = [];
  private queue: Promise<void> = Promise.resolve();
  /**
   * The join on the current link: every other request waits for it. A new link is a new
   * connection to the coordinator, which knows nobody on it until they join (a report sent first
   * is refused with E_NOT_JOINED); false when the join failed.
   */
  private joined: Promise<boolean> = Promise.resolve(false);
  /** Whether this participant has done its part of the session's last round (or checkpoint). */
  private lastRoundDone = false;
  private pretrained: PretrainResult | undefined;
  private endingAfterLastRound: ReturnType<typeof setTimeout> | undefined;
  private finished = false;
  /** Requests in flight: a dropped link fails them at once rather than at their timeout. */
  private readonly inFlight = new Set<(error: Error) => void>();
  private settle: { resolve: (summary: ParticipantSummary) => void; reject: (error: Error) => void } | undefined;
  /** This participant's side of secure aggregation, in sessions that run it (client/secure-round.ts). */
  private secure: SecureParticipant | undefined;

  constructor(
    private readonly options: ParticipantOptions,
    private readonly hook: UploadHook | undefined,
  ) {
    this.log = options.log ?? (() => {});
    this.timeout = options.requestTimeoutMs ?? 60_000;
    this.socket = io(options.url, {
      transports: ['websocket'],
      auth: { v: PROTOCOL_VERSION, token: options.token },
      reconnectionAttempts: options.reconnect?.attempts ?? 30,
      reconnectionDelay: options.reconnect?.delayMs ?? 500,
      reconnectionDelayMax: options.reconnect?.maxDelayMs ?? 5_000,
      ...(options.ca === undefined ? {} : { ca: options.ca }),
    });
  }

  run(): Promise<ParticipantSummary> {
    return new Promise<ParticipantSummary>((resolve, reject) => {
      this.settle = { resolve, reject };
      const { socket } = this;
      socket.on('connect', () => this.rejoin());
      socket.on('disconnect', (reason) => this.linkDropped(reason));
      socket.on('connect_error', (error) => this.connectRefused(error));
      socket.io.on('reconnect_failed', () => {
        if (this.lastRoundDone) this.endAfterLastRound();
        else this.fail(new Error(`could not reach the coordinator at ${this.options.url}`));
      });
      socket.on('round', (bytes) => this.enqueue(() => this.startRound(bytes)));
      socket.on('target', (bytes) => this.enqueue(() => this.receiveTarget(bytes)));
      socket.on('round-failed', (bytes) => this.enqueue(async () => this.roundFailed(bytes)));
      socket.on('end', (bytes) => this.enqueue(() => this.sessionEnded(bytes)));
      for (const event of ['secure-roster', 'secure-routed', 'secure-unmask', 'secure-sum'] as const) {
        socket.on(event, (bytes) => this.enqueue(() => this.secureStep(event, bytes)));
      }
      // The coordinator closes this link and says why (E_REPLACED: this participant connected
      // again elsewhere): the server closes it, so there is nothing to reconnect to.
      socket.on('closing', (bytes) => {
        try {
          readReply(replyMessages.ack, bytes);
        } catch (error) {
          this.fail(error);
        }
      });
    });
  }

  // ---------------------------------------------------------------- connecting and joining

  /** What this participant's reference set is, for the coordinator to check against the session's (digested once). */
  private referenceClaim(): { rows: number; digest: string } | undefined {
    const { reference, train } = this.options.data;
    if (reference === undefined) return undefined;
    const d = train.sampleShape.reduce((a, b) => a * b, 1);
    this.reference ??= { rows: Math.floor(reference.length / d), digest: referenceDigest(reference) };
    return this.reference;
  }

  /** Joins (or, after a reconnect, rejoins) the session; the coordinator answers who this participant is. */
  private async join(): Promise<void> {
    const { options } = this;
    const text = options.data.text;
    const tokenizer = text === undefined ? undefined : tokenizerIdentity(text.tokenizer);
    const envelope = encodeMessage(clientMessages.join, { v: PROTOCOL_VERSION, session: options.session, role: options.role ?? 'participant', reference: this.referenceClaim(), tokenizer });
    const joined = readReply(replyMessages.joined, await this.request('join', envelope));
    if (text !== undefined) checkTextSite(text, joined.info);
    // The coordinator checked this participant's rows at the join (E_REFERENCE); an answer naming
    // another size would have the rounds index rows this participant does not hold.
    const claim = this.reference;
    if (claim !== undefined && joined.info.referenceSize !== 0 && joined.info.referenceSize !== claim.rows) {
      throw new ProtocolError(ErrorCode.Reference, `session ${joined.info.session}'s reference set holds ${joined.info.referenceSize} rows; this participant's holds ${claim.rows}`);
    }
    else this.student ??= typeof options.student === 'function' ? options.student(joined.info) : options.student;
    if (this.student !== undefined && joined.info.numClasses !== this.student.numClasses) {
      throw new ProtocolError(
        ErrorCode.Shape,
        `session ${joined.info.session} has ${joined.info.numClasses} classes; this participant's model outputs ${this.student.numClasses}`,
      );
    }
    if (text === undefined && this.student === undefined) throw new Error('a participant needs a student (options.student) or, for a language model, data.text');
    const top = largestLabel(options.data.train.y);
    if (top >= joined.info.numClasses) {
      throw new ProtocolError(
        ErrorCode.Value,
        `this participant's data holds label ${top}, outside session ${joined.info.session}'s ${joined.info.numClasses} classes (0–${joined.info.numClasses - 1})`,
      );
    }
    // Keep the procedure across reconnects: some carry state from share to learn. A distiller
    // learns the same way whatever the algorithm: from the ensemble the coordinator sends it.
    const procedure = this.identity?.procedure ?? (options.role === 'distiller' ? distiller() : knownProcedure(joined.info));
    const sessionMode = joined.info.async === undefined ? 'sync' : 'async';
    if (procedure.mode !== sessionMode) {
      throw new ProtocolError(ErrorCode.Schema, `session ${joined.info.session} runs ${joined.info.algorithm} ${sessionMode === 'sync' ? 'round by round' : 'asynchronously'}, but this participant's ${joined.info.algorithm} procedure is ${procedure.mode === 'sync' ? 'round by round' : 'asynchronous'}`);
    }
    this.identity = { participant: joined.participant, info: joined.info, procedure };
    const reference = this.reference === undefined || joined.info.referenceSize === 0 ? '' : `; reference set ${this.reference.rows} rows, sha256 ${this.reference.digest}`;
    this.log(`joined ${joined.info.session} as ${joined.participant} (${joined.info.algorithm}, round ${joined.round})${reference}`);
    options.onJoined?.(joined.participant, joined.info);
  }

  /** A new link: join on it at once, ahead of whatever the queue is doing (training, say). */
  private rejoin(): void {
    clearTimeout(this.endingAfterLastRound);
    this.endingAfterLastRound = undefined;
    this.joined = this.join().then(
      () => true,
      (error: unknown) => {
        this.survive(error);
        return false;
      },
    );
  }

  private linkDropped(reason: string): void {
    for (const drop of this.inFlight) drop(new LinkDropped(`the link to the coordinator dropped (${reason}) before it answered; waiting to rejoin`));
    if (this.finished) return;
    if (!this.lastRoundDone) {
      this.log(`disconnected (${reason}); reconnecting`);
      return;
    }
    this.log(`disconnected (${reason}) after the last round`);
    this.awaitCoordinatorAfterLastRound();
  }

  /**
   * This participant's part of the last round is done (its report, even one whose answer was
   * lost with the link; a teacher's upload). If the link is down, or goes down, from here on, the
   * coordinator has LAST_ROUND_GRACE_MS to answer before the run ends on its own.
   */
  private doneWithLastRound(): void {
    this.lastRoundDone = true;
    if (!this.socket.connected) this.awaitCoordinatorAfterLastRound();
  }

  private awaitCoordinatorAfterLastRound(): void {
    if (this.finished || this.endingAfterLastRound !== undefined) return;
    this.log(`the last round is done: ending unless the coordinator answers within ${LAST_ROUND_GRACE_MS / 1000} s`);
    this.endingAfterLastRound = setTimeout(() => this.endAfterLastRound(), LAST_ROUND_GRACE_MS);
  }

  /** The last round is done and the coordinator gone without its end message: the session is over here. */
  private endAfterLastRound(): void {
    const { info } = this.identity!;
    this.finish(`completed ${info.rounds} ${info.async === undefined ? 'rounds' : 'checkpoints'}; the link closed before the coordinator's end message arrived`);
  }

  private connectRefused(error: Error): void {
    const code = (error as Error & { data?: { code?: string } }).data?.code;
    // Refusals are final; anything else (the server is not up yet, a dropped link) is retried by socket.io.
    const reason = error.message.replace(/^E_[A-Z_]+: /, '');
    // The session ended while this participant was away: its rounds are done.
    if (code === ErrorCode.Session && this.identity !== undefined) {
      this.log(`the session ended while this participant was away: ${reason}`);
      this.finish(reason.replace(/^session \S+ has ended: /, ''));
    }
    else if (code === ErrorCode.Auth || code === ErrorCode.Version || code === ErrorCode.Session) this.fail(new ProtocolError(code, reason));
    // A certificate the participant does not trust will not change by retrying.
    const cause = ((error as Error & { description?: { message?: string } }).description?.message ?? '').trim();
    if (/certificate|self[- ]signed|SSL|TLS|altname|wrong version number|packet length/i.test(cause)) this.fail(new Error(tlsAdvice(this.options.url, cause, this.options.ca !== undefined)));
  }

  /**
   * Messages are handled one at a time, in arrival order: a target never overtakes its round.
   * A round that closed, or a link that dropped, costs this round only: the coordinator tells a
   * participant that (re)joins the round in progress.
   */
  private enqueue(task: () => Promise<void>): void {
    this.queue = this.queue.then(task).catch((error: unknown) => this.survive(error));
  }

  /**
   * What a failed step costs: a closed round or a dropped link, that step only; an answer that
   * this participant is not joined (the coordinator restarted, or the link changed under the
   * request), a rejoin; anything else, the run.
   */
  private survive(error: unknown): void {
    if (error instanceof ProtocolError && error.code === ErrorCode.RoundClosed) this.log(error.message);
    // A secure step this member refuses (a roster with a key it cannot use, a share that does not
    // decrypt, a second set of survivors) costs it the round, as a closed round does: it sends
    // nothing more for the round, and the coordinator goes on without it or fails the round.
    else if (error instanceof ProtocolError && error.code === ErrorCode.Secure) this.log(`${error.message}; this member sits the rest of the round out`);
    else if (error instanceof LinkDropped) this.log(error.message);
    else if (error instanceof ProtocolError && error.code === ErrorCode.NotJoined) {
      this.log(`${error.message}; rejoining`);
      if (this.socket.connected) this.rejoin();
    } else this.fail(error);
  }

  private async request(event: keyof ClientToServerEvents, envelope: Uint8Array): Promise<Uint8Array> {
    // Not buffered for the next connection: it would reach the coordinator before the rejoin.
    if (!this.socket.connected) throw new LinkDropped(`${event} not sent: the link to the coordinator is down; waiting to rejoin`);
    if (event !== 'join') {
      if (!(await this.joined)) throw new LinkDropped(`${event} not sent: this participant has not rejoined the session on its new link`);
      if (!this.socket.connected) throw new LinkDropped(`${event} not sent: the link to the coordinator is down; waiting to rejoin`);
    }
    this.bytesUp += envelope.byteLength;
    let drop: (error: Error) => void = () => {};
    const dropped = new Promise<never>((_, reject) => (drop = reject));
    this.inFlight.add(drop);
    try {
      return await Promise.race([this.socket.timeout(this.timeout).emitWithAck(event, envelope), dropped]);
    } finally {
      this.inFlight.delete(drop);
    }
  }

  private limits() {
    return { maxBytes: this.identity?.info.maxMessageBytes ?? 16 * 1024 * 1024 };
  }

  private context(round: ServerMessage<'round'>): RoundContext {
    const { options } = this;
    const student = this.student;
    const session = this.identity!.info.session;
    return {
      info: this.identity!.info, round, data: options.data, epochs: options.epochs, batchSize: options.batchSize,
      // A language-model site has no classifier: a procedure that wants one is told so.
      get student(): Student {
        if (student === undefined) throw new Error(`session ${session}: this participant is a language-model site (data.text) and has no classifier student for this procedure`);
        return student;
      },
    };
  }

  // ---------------------------------------------------------------- the round loop

  /** A round opened: share this participant's knowledge (or, asynchronously, start the run). */
  private async startRound(bytes: Uint8Array): Promise<void> {
    this.bytesDown += byteLength(bytes);
    // Sent to joined participants only: the join's answer came first, but its handling may not have run yet.
    await this.joined;
    const identity = this.identity;
    if (identity === undefined) return;
    // Bounded by this session's reference set: a bitmap naming more rows is refused before it is expanded.
    const round = decodeMessage(roundMessage(identity.info.referenceSize), bytes, this.limits());
    if (round.session !== identity.info.session) return;
    checkRound(round, identity.info);
    if ((this.options.role ?? 'participant') === 'participant') await this.pretrainOnce();
    if (round.sampled === false) return this.sitOut(round);
    this.current = round;
    const { procedure } = identity;
    if (round.knowledge === 'none') return this.learnAndReport(round, null);
    if (procedure.mode === 'async') return this.runAsync(round, procedure);
    const computed = await procedure.share(this.context(round));
    if (computed === undefined) return;
    const share = rewritten(this.hook, computed, { kind: round.knowledge, numClasses: identity.info.numClasses, round: round.round });
    // Under secure aggregation the share goes up masked, after the keys and shares (DP's hook has applied already).
    if (identity.info.secure !== undefined) return this.secureAggregation(identity).begin(round, share);
    const upload = encodeMessage(clientMessages.upload, {
      v: PROTOCOL_VERSION,
      session: round.session,
      round: round.round,
      participant: identity.participant,
      kind: round.knowledge,
      values: packShare(share, round.knowledge, identity.info),
      sampleCount: share.sampleCount,
      labelCounts: share.labelCounts,
    }, this.limits());
    readReply(replyMessages.ack, await this.request('upload', upload));
    if (this.options.role === 'teacher' && round.round >= identity.info.rounds) this.doneWithLastRound();
  }

  /**
   * FedMD's transfer learning, once, before this participant's first round: train on the labelled
   * public (reference) set, then on the private data — "each party trains its model to
   * convergence on the public dataset and then on its own private dataset" (Li & Wang 2019,
   * Algorithm 1); here for a fixed number of epochs each.
   */
  private async pretrainOnce(): Promise<void> {
    const epochs = this.options.pretrainOnReference ?? 0;
    if (epochs === 0 || this.pretrained !== undefined) return;
    const { reference, referenceLabels, train } = this.options.data;
    const student = this.student!;
    const d = train.sampleShape.reduce((a, b) => a * b, 1);
    if (reference === undefined || referenceLabels === undefined) {
      throw new Error('transfer learning on the reference set (pretrainOnReference) needs its labels: give a labelled reference set');
    }
    if (referenceLabels.length * d !== reference.length) {
      throw new Error(`the reference set holds ${reference.length / d} samples but ${referenceLabels.length} labels`);
    }
    const top = largestLabel(referenceLabels);
    if (top >= student.numClasses) throw new Error(`the reference set's labels reach ${top}; the session has ${student.numClasses} classes (0–${student.numClasses - 1})`);
    const labelled: LabeledDataset = { x: reference, y: referenceLabels, sampleShape: train.sampleShape, numClasses: student.numClasses };
    const options = { epochs, batchSize: this.options.batchSize, alpha: 1, temperature: 1 };
    const onReference = await student.train({ labeled: labelled }, options);
    const referenceAccuracy = (await student.evaluate(labelled)).accuracy;
    const onPrivate = train.y.length === 0 ? undefined : await student.train({ labeled: train }, options);
    const referenceAccuracyBeforeRound1 = (await student.evaluate(labelled)).accuracy;
    this.pretrained = { epochs, referenceAccuracy, referenceAccuracyBeforeRound1, train: onPrivate === undefined ? onReference : combined(onReference, onPrivate) };
    this.log(
      `transfer learning: ${epochs} epochs on the ${referenceLabels.length} labelled reference samples (accuracy on them ${(100 * referenceAccuracy).toFixed(1)} %), ` +
        `then ${epochs} on ${train.y.length} private samples (${(100 * referenceAccuracyBeforeRound1).toFixed(1)} % on the reference set before round 1)`,
    );
  }

  /**
   * The session sampled other participants for this round: nothing to share, learn or report.
   * The round is still recorded here (the student as it stands, evaluated), so that a run's
   * rounds stay complete; the participant waits for the next round, or the end.
   */
  private async sitOut(round: ServerMessage<'round'>): Promise<void> {
    this.current = undefined;
    this.log(`round ${round.round}: not sampled; sitting it out`);
    if (this.options.role !== 'teacher') {
      const evaluation = this.options.evaluation === undefined ? undefined : await this.student!.evaluate(this.options.evaluation);
      this.record({ round: round.round, receivedTarget: false, sampled: false, train: { loss: Number.NaN, steps: 0, samples: 0, ms: 0 }, accuracy: evaluation?.accuracy, evaluationProbs: evaluation?.probs });
    }
    if (round.round >= this.identity!.info.rounds) this.doneWithLastRound();
  }

  /** The round's target arrived: learn from it and report. */
  private async receiveTarget(bytes: Uint8Array): Promise<void> {
    this.bytesDown += byteLength(bytes);
    const message = decodeMessage(serverMessages.target, bytes, this.limits());
    const current = this.current;
    if (current === undefined || message.round !== current.round) {
      this.log(`ignored a target for round ${message.round}; the current round is ${current?.round ?? 'none'}`);
      return;
    }
    const { info } = this.identity!;
    if (message.kind !== info.knowledge) {
      throw new ProtocolError(ErrorCode.Schema, `the target of round ${message.round} is ${message.kind}; session ${info.session} exchanges ${info.knowledge}`);
    }
    const shape = targetShape(this.context(current));
    const wire = message.target;
    // Decoded (a top-k target to dense rows) and held to what an honest coordinator sends for the
    // kind before the student trains on it: probabilities on the simplex, counts per class, ….
    // A learner that completes a top-k target's remaining mass itself (sparseTail: student) also needs its support.
    const values = wire === null ? null : readTarget(info.knowledge as KnowledgeKind, wire, shape, message.counts, info.numClasses, info.uploadDtype);
    const support = wire !== null && isTopK(wire) && info.sparseTail === 'student' ? topKSupport(decodeTopKRows(wire, shape)) : undefined;
    const target = values === null ? null : { values, counts: message.counts, ...(support === undefined ? {} : { support }) };
    await this.learnAndReport(current, target);
  }

  /** This participant's side of secure aggregation, made at its first secure round. */
  private secureAggregation(identity: Identity): SecureParticipant {
    const send: SecureSend = async (event, message, round) => {
      const envelope = encodeMessage(clientMessages[event], { v: PROTOCOL_VERSION, session: identity.info.session, round, participant: identity.participant, ...message } as never, this.limits());
      readReply(replyMessages.ack, await this.request(event, envelope));
    };
    this.secure ??= new SecureParticipant(identity.participant, identity.info, send);
    return this.secure;
  }

  /** A step of secure aggregation: answer it, or, with the round's sum, learn and report. */
  private async secureStep(event: 'secure-roster' | 'secure-routed' | 'secure-unmask' | 'secure-sum', bytes: Uint8Array): Promise<void> {
    this.bytesDown += byteLength(bytes);
    // As a round announcement: the join's answer came first, but its handling may not have run yet.
    await this.joined;
    const identity = this.identity;
    if (identity === undefined) return;
    if (identity.info.secure === undefined) {
      throw new ProtocolError(ErrorCode.Secure, `the coordinator sent ${event}, but session ${identity.info.session} does not run secure aggregation`);
    }
    const distiller = this.options.role === 'distiller';
    const secure = this.secureAggregation(identity);
    if (event === 'secure-roster') return secure.roster(decodeMessage(serverMessages[event], bytes, this.limits()));
    if (event === 'secure-routed') return secure.routed(decodeMessage(serverMessages[event], bytes, this.limits()));
    if (event === 'secure-unmask') {
      const request = decodeMessage(serverMessages[event], bytes, this.limits());
      await secure.unmask(request);
      // A teacher's part of a round ends with its reveal, as a plain round's ends with its upload.
      if (this.options.role === 'teacher' && request.round >= identity.info.rounds) this.doneWithLastRound();
      return;
    }
    const message = decodeMessage(serverMessages[event], bytes, this.limits());
    const current = this.current;
    if (current === undefined || message.round !== current.round || current.knowledge === 'none') {
      this.log(`ignored the sum of round ${message.round}; the current round is ${current?.round ?? 'none'}`);
      return;
    }
    let target: Target | null;
    try {
      target = secure.target(message, current.knowledge, current.referenceIds.length, distiller);
    } catch (error) {
      // A sum that no honest members could have made: the coordinator cannot see a hostile upload
      // under secure aggregation, so the participant refuses the target and keeps its round.
      if (!(error instanceof ProtocolError && error.code === ErrorCode.Value)) throw error;
      this.log(`${error.message}; learning from the private data alone this round`);
      target = null;
    }
    await this.learnAndReport(current, target);
  }

  private async learnAndReport(round: ServerMessage<'round'>, target: Target | null): Promise<void> {
    const procedure = this.identity!.procedure;
    if (this.options.role === 'teacher' || procedure.mode !== 'sync') return;
    const train = await procedure.learn(this.context(round), target);
    await this.report(round.round, train, target !== null);
  }

  private roundFailed(bytes: Uint8Array): void {
    const message = decodeMessage(serverMessages['round-failed'], bytes, this.limits());
    this.log(`round ${message.round} failed: ${message.error.code}: ${message.error.message}`);
  }

  /** Evaluates, reports the round (or checkpoint) to the coordinator, and records it. */
  private async report(round: number, train: TrainResult, receivedTarget: boolean): Promise<void> {
    const { participant, info } = this.identity!;
    const { options } = this;
    const evaluation = options.evaluation === undefined ? undefined : await this.student!.evaluate(options.evaluation);
    const privacy = this.hook?.spent?.();
    const envelope = encodeMessage(clientMessages.report, {
      v: PROTOCOL_VERSION,
      session: info.session,
      round,
      participant,
      metrics: { accuracy: evaluation?.accuracy, loss: train.loss, trainSamples: train.samples, trainMs: train.ms, privacy },
    }, this.limits());
    // The round happened here whether or not the report gets through (a link dropping before the
    // ack, a round closed meanwhile): it is recorded either way, and the refusal then handled.
    let refused: unknown;
    try {
      readReply(replyMessages.ack, await this.request('report', envelope));
    } catch (error) {
      refused = error;
    }
    this.record({ round, receivedTarget, train, accuracy: evaluation?.accuracy, evaluationProbs: evaluation?.probs, ...(privacy === undefined ? {} : { privacy }) });
    if (round >= info.rounds) this.doneWithLastRound();
    if (refused !== undefined) throw refused;
  }

  /** Records a round (or checkpoint) with the bytes since the last one, and tells the caller. */
  private record(result: Omit<RoundResult, 'bytesUp' | 'bytesDown' | 'numTensors'>): void {
    const full: RoundResult = { ...result, bytesUp: this.bytesUp, bytesDown: this.bytesDown, numTensors: tf.memory().numTensors };
    this.bytesUp = 0;
    this.bytesDown = 0;
    // A round run again (the coordinator restarted before it completed) replaces the first try.
    const again = this.results.findIndex((r) => r.round === full.round);
    if (again === -1) this.results.push(full);
    else this.results[again] = full;
    this.options.onRound?.(full);
  }

  // ---------------------------------------------------------------- the asynchronous run

  /** Asynchronous sessions: the procedure runs at its own pace, pushing, pulling and reporting checkpoints. */
  private async runAsync(round: ServerMessage<'round'>, procedure: AsyncProcedure): Promise<void> {
    const { participant, info } = this.identity!;
    const C = info.numClasses;
    // Soft predictions on a shard's rows: [rows, classes], or per token [rows, positions, vocab].
    const kind = info.knowledge === 'reference-token-predictions' ? 'reference-token-predictions' : 'reference-predictions';
    const rowSize = C * (kind === 'reference-token-predictions' ? info.positions! : 1);
    const shapeOf = (rows: number) => knowledgeShape(kind, { rows, numClasses: C, positions: info.positions });
    const header = { v: PROTOCOL_VERSION, session: info.session, participant } as const;
    // An asynchronous run outlives a dropped link: a push or pull the link lost is sent again once
    // this participant has rejoined (a push replaces its previous one, a pull only reads). Before,
    // the run ended at the first dropped link, and the coordinator — which sends a rejoining
    // participant no new go signal — heard no more from it until the training deadline.
    const again = async <T>(send: () => Promise<T>): Promise<T> => {
      for (let told = false; ; told = true) {
        try {
          return await send();
        } catch (error) {
          if (!(error instanceof LinkDropped) || this.finished) throw error;
          if (!told) this.log(`${error.message}; the asynchronous run sends it again once rejoined`);
          await new Promise((resolve) => setTimeout(resolve, 250));
        }
      }
    };
    const channel: AsyncChannel = {
      push: (shard, step, predictions) => again(async () => {
        const shape = shapeOf(predictions.length / rowSize);
        const { values } = rewritten(this.hook, { values: predictions, shape }, { kind, numClasses: C, round: round.round });
        const envelope = encodeMessage(clientMessages.push, {
          // No copy (float32): the envelope encoder copies the bytes right here, before anything can change them.
          ...header, shard, step, values: packShare({ values, shape }, kind, info),
        }, this.limits());
        readReply(replyMessages.ack, await this.request('push', envelope));
      }),
      pull: (shard) => again(async () => {
        const reply = await this.request('pull', encodeMessage(clientMessages.pull, { ...header, shard }, this.limits()));
        this.bytesDown += byteLength(reply);
        const ensemble = readReply(replyMessages.ensemble, reply);
        if (ensemble.shard !== shard) throw new ProtocolError(ErrorCode.Schema, `asked for the ensemble on shard ${shard}; the coordinator answered for shard ${ensemble.shard}`);
        if (ensemble.target === null) return null;
        // The shard's rows, as this participant cuts the reference set: never the rows the answer claims.
        const rows = shardIds(info.referenceSize, info.async!.shards, shard).length;
        const values = readTarget(kind, ensemble.target, shapeOf(rows), undefined, C, info.uploadDtype);
        return { values, contributors: ensemble.contributors, oldestMs: ensemble.oldestMs };
      }),
      // A checkpoint report the link lost, or one the coordinator refused because the checkpoint
      // closed without this participant while it was away, is recorded here all the same; the run goes on.
      checkpoint: async (number, train, taught) => {
        try {
          await this.report(number, train, taught);
        } catch (error) {
          const closed = error instanceof ProtocolError && error.code === ErrorCode.RoundClosed;
          if (!(error instanceof LinkDropped || closed) || this.finished) throw error;
          this.log(`checkpoint ${number}: ${error.message}`);
        }
      },
    };
    await procedure.run(this.context(round), channel);
  }

  // ---------------------------------------------------------------- finishing

  private async sessionEnded(bytes: Uint8Array): Promise<void> {
    const message = decodeMessage(serverMessages.end, bytes, this.limits());
    await this.joined;
    if (this.identity === undefined) {
      this.fail(new ProtocolError(ErrorCode.Session, `session ${message.session} ended before this participant joined: ${message.reason}`));
      return;
    }
    this.finish(message.reason);
  }

  private finish(endReason: string): void {
    if (this.finished) return;
    this.finished = true;
    clearTimeout(this.endingAfterLastRound);
    this.socket.close();
    const { participant, info } = this.identity!;
    this.settle!.resolve({ participant, info, ...(this.pretrained === undefined ? {} : { pretrain: this.pretrained }), rounds: this.results, endReason });
  }

  private fail(error: unknown): void {
    if (this.finished) return;
    this.finished = true;
    clearTimeout(this.endingAfterLastRound);
    this.socket.close();
    this.settle!.reject(error instanceof Error ? error : new Error(String(error)));
  }
}

/** A language-model site must fit the session: its tokenizer (the coordinator checked it too), vocabulary and window length. */
function checkTextSite(site: TextSite, info: SessionInfo): void {
  // Weights: FedAvg of the site's trainable weights (a LoRA model's adapters), which carry no tokens.
  const perToken = info.knowledge === 'reference-token-predictions' && info.positions !== undefined;
  if (!perToken && info.knowledge !== 'weights') {
    throw new ProtocolError(ErrorCode.Schema, `session ${info.session} exchanges ${info.knowledge}; this participant is a language-model site and takes part only in sessions of reference-token-predictions or weights`);
  }
  if (info.numClasses !== site.model.spec.vocab) {
    throw new ProtocolError(ErrorCode.Tokenizer, `session ${info.session}'s vocabulary has ${info.numClasses} tokens; this participant's language model has ${site.model.spec.vocab}`);
  }
  if (perToken && (info.positions !== site.reference.context || info.positions > site.model.spec.ctx)) {
    throw new ProtocolError(
      ErrorCode.Shape,
      `session ${info.session}'s reference windows have ${info.positions} positions; this participant's windows have ${site.reference.context} and its model a context of ${site.model.spec.ctx}`,
    );
  }
}

/** The procedure of the session's algorithm; E_SCHEMA when the coordinator names one this participant does not have. */
function knownProcedure(info: SessionInfo): Procedure {
  try {
    return procedureFor(info.algorithm);
  } catch (error) {
    throw new ProtocolError(ErrorCode.Schema, `session ${info.session} runs ${JSON.stringify(info.algorithm)}: ${(error as Error).message}`);
  }
}

/** Bytes of an event's payload as received: 0 for one that is not binary (decodeMessage then refuses it, E_MALFORMED). */
function byteLength(bytes: unknown): number {
  return bytes instanceof Uint8Array ? bytes.byteLength : 0;
}

function largestLabel(labels: ArrayLike<number>): number {
  let top = -1;
  for (let i = 0; i < labels.length; i++) top = Math.max(top, labels[i]!);
  return top;
}

/**
 * A round announcement must fit the session it belongs to: its knowledge is the session's, and
 * its reference ids name distinct rows of the reference set — the participant allocates features
 * for each id, so a coordinator must not make it allocate for ids it does not have.
 */
function checkRound(round: ServerMessage<'round'>, info: SessionInfo): void {
  const what = `round ${round.round} of session ${info.session}`;
  if (round.knowledge !== info.knowledge) throw new ProtocolError(ErrorCode.Schema, `${what} exchanges ${round.knowledge}; the session said ${info.knowledge}`);
  if (round.model !== undefined && info.knowledge !== 'weights') throw new ProtocolError(ErrorCode.Schema, `${what} carries a global model; the session exchanges ${info.knowledge}, not weights`);
  const ids = round.referenceIds;
  if (ids.length > info.referenceSize) {
    throw new ProtocolError(ErrorCode.Schema, `${what} names ${ids.length} reference samples; the session's reference set holds ${info.referenceSize}`);
  }
  const seen = new Set<number>();
  for (const id of ids) {
    if (!(id < info.referenceSize) || seen.has(id)) {
      throw new ProtocolError(ErrorCode.Schema, `${what} names reference sample ${id}${seen.has(id) ? ' twice' : `; the reference set holds 0…${info.referenceSize - 1}`}`);
    }
    seen.add(id);
  }
}

/** What a TLS failure means, told apart by its cause: each has another remedy. */
function tlsAdvice(url: string, cause: string, caGiven: boolean): string {
  if (/altname|does not match|ERR_TLS_CERT_ALTNAME/i.test(cause)) {
    return `TLS: the coordinator at ${url} presented a certificate for another name (${cause}); connect by a name the certificate carries, or have the operator issue one whose subjectAltName names this address`;
  }
  if (/wrong version number|packet length too long|unknown protocol/i.test(cause)) {
    return `TLS: the coordinator at ${url} does not speak TLS (${cause}): it was started without --tls-cert; use http:// on a closed network, or have the operator start it with a certificate`;
  }
  return caGiven
    ? `TLS: the coordinator at ${url} presented a certificate that the certificate authority given (--ca) does not vouch for (${cause}); ask the operator for the certificate it serves`
    : `TLS: the coordinator at ${url} presented a certificate this participant does not trust (${cause}); pass its certificate authority (--ca FILE)`;
}


/**
 * An upload's tensor: soft predictions in the top-k sparse form when the session asks for it
 * (uploadTopK), everything else dense; packed as the session's uploadDtype.
 */
function packShare(share: Share, knowledge: ServerMessage<'round'>['knowledge'], info: SessionInfo) {
  if (info.uploadTopK !== undefined && isProbabilityKind(knowledge)) return packTopK(share.values, share.shape, info.uploadTopK, info.uploadDtype);
  // No copy (float32): encodeMessage copies the bytes into the envelope at once.
  return packTensor(share.values, share.shape, info.uploadDtype, { copy: false });
}
