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
  ErrorCode,
  packTensor,
  PROTOCOL_VERSION,
  ProtocolError,
  readReply,
  replyMessages,
  serverMessages,
  unpackTensor,
  type ClientToServerEvents,
  type ServerMessage,
  type ServerToClientEvents,
  type SessionInfo,
} from '../protocol/index.js';
import type { LabeledDataset } from './data/dataset.js';
import {
  procedureFor,
  targetShape,
  type AsyncChannel,
  type ParticipantData,
  type Procedure,
  type RoundContext,
  type Share,
  type Target,
  type UploadContext,
  type UploadHook,
} from './procedures/index.js';
import { GaussianUploads, type PrivacySettings, type PrivacySpent } from './privacy.js';
import type { Student, TrainResult } from './student.js';

export interface ParticipantOptions {
  url: string;
  session: string;
  token: string;
  student: Student;
  data: ParticipantData;
  /** Labeled data to report accuracy on after each round (a held-out or validation set). */
  evaluation?: LabeledDataset;
  /** Local epochs over the private data per round. */
  epochs: number;
  batchSize: number;
  /** PEM certificate authority to trust for an https:// coordinator with its own (e.g. self-signed) certificate. */
  ca?: string;
  /** A teacher only shares knowledge: it never receives a target or trains. */
  role?: 'participant' | 'teacher';
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

export interface ParticipantSummary {
  participant: string;
  info: SessionInfo;
  rounds: RoundResult[];
  endReason: string;
}

type ParticipantSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

/** The link to the coordinator dropped: what was being sent is lost, and the participant rejoins. */
class LinkDropped extends Error {
  override readonly name = 'LinkDropped';
}

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

export function runParticipant(options: ParticipantOptions): Promise<ParticipantSummary> {
  let hook: UploadHook | undefined;
  try {
    hook = uploadHookFor(options);
  } catch (error) {
    return Promise.reject(error);
  }
  const log = options.log ?? (() => {});
  const timeout = options.requestTimeoutMs ?? 60_000;
  const socket: ParticipantSocket = io(options.url, {
    transports: ['websocket'],
    auth: { v: PROTOCOL_VERSION, token: options.token },
    reconnectionAttempts: options.reconnect?.attempts ?? 30,
    reconnectionDelay: options.reconnect?.delayMs ?? 500,
    reconnectionDelayMax: options.reconnect?.maxDelayMs ?? 5_000,
    ...(options.ca === undefined ? {} : { ca: options.ca }),
  });

  return new Promise<ParticipantSummary>((resolve, reject) => {
    let identity: { participant: string; info: SessionInfo; procedure: Procedure } | undefined;
    let current: ServerMessage<'round'> | undefined;
    let bytesUp = 0;
    let bytesDown = 0;
    const results: RoundResult[] = [];
    let queue: Promise<void> = Promise.resolve();
    let finished = false;

    const finish = (endReason: string) => {
      if (finished) return;
      finished = true;
      socket.close();
      resolve({ participant: identity!.participant, info: identity!.info, rounds: results, endReason });
    };
    const fail = (error: unknown) => {
      if (finished) return;
      finished = true;
      socket.close();
      reject(error instanceof Error ? error : new Error(String(error)));
    };
    // Messages are handled one at a time, in arrival order: a target never overtakes its round.
    // A round that closed, or a link that dropped, costs this round only: the coordinator tells a
    // participant that (re)joins the round in progress.
    const enqueue = (task: () => Promise<void>) => {
      queue = queue.then(task).catch((error: unknown) => {
        if (error instanceof ProtocolError && error.code === ErrorCode.RoundClosed) log(error.message);
        else if (error instanceof LinkDropped) log(error.message);
        else fail(error);
      });
    };
    /** Requests in flight: a dropped link fails them at once rather than at their timeout. */
    const inFlight = new Set<(error: Error) => void>();
    const request = async (event: keyof ClientToServerEvents, envelope: Uint8Array): Promise<Uint8Array> => {
      // Not buffered for the next connection: it would reach the coordinator before the rejoin.
      if (!socket.connected) throw new LinkDropped(`${event} not sent: the link to the coordinator is down; waiting to rejoin`);
      bytesUp += envelope.byteLength;
      let drop: (error: Error) => void = () => {};
      const dropped = new Promise<never>((_, reject) => (drop = reject));
      inFlight.add(drop);
      try {
        return await Promise.race([socket.timeout(timeout).emitWithAck(event, envelope), dropped]);
      } finally {
        inFlight.delete(drop);
      }
    };
    socket.on('disconnect', (reason) => {
      for (const drop of inFlight) drop(new LinkDropped(`the link to the coordinator dropped (${reason}) before it answered; waiting to rejoin`));
      if (!finished) log(`disconnected (${reason}); reconnecting`);
    });
    const limits = () => ({ maxBytes: identity?.info.maxMessageBytes ?? 16 * 1024 * 1024 });
    const context = (round: ServerMessage<'round'>): RoundContext => ({
      info: identity!.info,
      round,
      student: options.student,
      data: options.data,
      epochs: options.epochs,
      batchSize: options.batchSize,
    });

    const learnAndReport = async (round: ServerMessage<'round'>, target: Target | null) => {
      if (options.role === 'teacher') return;
      const train = await identity!.procedure.learn(context(round), target);
      await report(round.round, train, target !== null);
    };

    /** Evaluates, reports the round (or checkpoint) to the coordinator, and records it. */
    const report = async (round: number, train: TrainResult, receivedTarget: boolean) => {
      const { participant, info } = identity!;
      const evaluation = options.evaluation === undefined ? undefined : await options.student.evaluate(options.evaluation);
      const privacy = hook?.spent?.();
      const envelope = encodeMessage(clientMessages.report, {
        v: PROTOCOL_VERSION,
        session: info.session,
        round,
        participant,
        metrics: { accuracy: evaluation?.accuracy, loss: train.loss, trainSamples: train.samples, trainMs: train.ms, privacy },
      }, limits());
      // The round happened here whether or not the report gets through (a link dropping before the
      // ack, a round closed meanwhile): it is recorded either way, and the refusal then handled.
      let refused: unknown;
      try {
        readReply(replyMessages.ack, await request('report', envelope));
      } catch (error) {
        refused = error;
      }
      const result: RoundResult = {
        round,
        receivedTarget,
        train,
        accuracy: evaluation?.accuracy,
        evaluationProbs: evaluation?.probs,
        bytesUp,
        bytesDown,
        numTensors: tf.memory().numTensors,
        ...(privacy === undefined ? {} : { privacy }),
      };
      bytesUp = 0;
      bytesDown = 0;
      // A round run again (the coordinator restarted before it completed) replaces the first try.
      const again = results.findIndex((r) => r.round === round);
      if (again === -1) results.push(result);
      else results[again] = result;
      options.onRound?.(result);
      if (refused !== undefined) throw refused;
    };

    /** Asynchronous sessions: the procedure runs at its own pace, pushing, pulling and reporting checkpoints. */
    const runAsync = async (round: ServerMessage<'round'>) => {
      const { participant, info, procedure } = identity!;
      if (procedure.run === undefined) throw new Error(`algorithm ${info.algorithm} has no asynchronous procedure`);
      const C = info.numClasses;
      const header = { v: PROTOCOL_VERSION, session: info.session, participant } as const;
      const channel: AsyncChannel = {
        async push(shard, step, predictions) {
          const shape = [predictions.length / C, C];
          const { values } = rewritten(hook, { values: predictions, shape }, { kind: 'reference-predictions', numClasses: C, round: round.round });
          const envelope = encodeMessage(clientMessages.push, {
            // No copy (float32): the envelope encoder copies the bytes right here, before anything can change them.
            ...header, shard, step, values: packTensor(values, shape, info.uploadDtype, { copy: false }),
          }, limits());
          readReply(replyMessages.ack, await request('push', envelope));
        },
        async pull(shard) {
          const reply = await request('pull', encodeMessage(clientMessages.pull, { ...header, shard }, limits()));
          bytesDown += reply.byteLength;
          const ensemble = readReply(replyMessages.ensemble, reply);
          if (ensemble.target === null) return null;
          return { values: unpackTensor(ensemble.target, [ensemble.target.shape[0] ?? 0, C]), contributors: ensemble.contributors, oldestMs: ensemble.oldestMs };
        },
        checkpoint: (number, train, taught) => report(number, train, taught),
      };
      await procedure.run(context(round), channel);
    };

    socket.on('connect', () =>
      enqueue(async () => {
        const envelope = encodeMessage(clientMessages.join, { v: PROTOCOL_VERSION, session: options.session, role: options.role ?? 'participant' });
        const joined = readReply(replyMessages.joined, await request('join', envelope));
        if (joined.info.numClasses !== options.student.numClasses) {
          throw new ProtocolError(
            ErrorCode.Shape,
            `session ${joined.info.session} has ${joined.info.numClasses} classes; this participant's model outputs ${options.student.numClasses}`,
          );
        }
        // Keep the procedure across reconnects: some carry state from share to learn.
        identity = { participant: joined.participant, info: joined.info, procedure: identity?.procedure ?? procedureFor(joined.info.algorithm) };
        log(`joined ${joined.info.session} as ${joined.participant} (${joined.info.algorithm}, round ${joined.round})`);
        options.onJoined?.(joined.participant, joined.info);
      }),
    );
    socket.on('connect_error', (error) => {
      const code = (error as Error & { data?: { code?: string } }).data?.code;
      // Refusals are final; anything else (the server is not up yet, a dropped link) is retried by socket.io.
      const reason = error.message.replace(/^E_[A-Z_]+: /, '');
      // The session ended while this participant was away: its rounds are done.
      if (code === ErrorCode.Session && identity !== undefined) {
        log(`the session ended while this participant was away: ${reason}`);
        finish(reason.replace(/^session \S+ has ended: /, ''));
      }
      else if (code === ErrorCode.Auth || code === ErrorCode.Version || code === ErrorCode.Session) fail(new ProtocolError(code, reason));
      // A certificate the participant does not trust will not change by retrying.
      const cause = (error as Error & { description?: { message?: string } }).description?.message ?? '';
      if (/certificate|self[- ]signed|SSL|TLS/i.test(cause)) {
        fail(new Error(`TLS: the coordinator at ${options.url} presented a certificate this participant does not trust (${cause}); pass its certificate authority (--ca FILE)`));
      }
    });
    socket.io.on('reconnect_failed', () => fail(new Error(`could not reach the coordinator at ${options.url}`)));

    socket.on('round', (bytes) =>
      enqueue(async () => {
        bytesDown += bytes.byteLength;
        const round = decodeMessage(serverMessages.round, bytes, limits());
        if (identity === undefined || round.session !== identity.info.session) return;
        current = round;
        if (round.knowledge === 'none') return learnAndReport(round, null);
        if (identity.info.async !== undefined) return runAsync(round);
        const computed = await identity.procedure.share(context(round));
        if (computed === undefined) return;
        const share = rewritten(hook, computed, { kind: round.knowledge, numClasses: identity.info.numClasses, round: round.round });
        const upload = encodeMessage(clientMessages.upload, {
          v: PROTOCOL_VERSION,
          session: round.session,
          round: round.round,
          participant: identity.participant,
          kind: round.knowledge,
          // No copy (float32): encodeMessage copies the bytes into the envelope at once.
          values: packTensor(share.values, share.shape, identity.info.uploadDtype, { copy: false }),
          sampleCount: share.sampleCount,
          labelCounts: share.labelCounts,
        }, limits());
        readReply(replyMessages.ack, await request('upload', upload));
      }),
    );
    socket.on('target', (bytes) =>
      enqueue(async () => {
        bytesDown += bytes.byteLength;
        const message = decodeMessage(serverMessages.target, bytes, limits());
        if (current === undefined || message.round !== current.round) {
          log(`ignored a target for round ${message.round}; the current round is ${current?.round ?? 'none'}`);
          return;
        }
        const target = message.target === null ? null : { values: unpackTensor(message.target, targetShape(context(current))), counts: message.counts };
        await learnAndReport(current, target);
      }),
    );
    socket.on('round-failed', (bytes) =>
      enqueue(async () => {
        const message = decodeMessage(serverMessages['round-failed'], bytes, limits());
        log(`round ${message.round} failed: ${message.error.code}: ${message.error.message}`);
      }),
    );
    socket.on('end', (bytes) =>
      enqueue(async () => {
        const message = decodeMessage(serverMessages.end, bytes, limits());
        if (identity === undefined) {
          fail(new Error(`session ${message.session} ended before this participant joined: ${message.reason}`));
          return;
        }
        finish(message.reason);
      }),
    );
  });
}
