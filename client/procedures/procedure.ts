/**
 * A client procedure: what a participant does in a round of its algorithm. It meets the
 * server's strategy only through protocol types.
 */
import { knowledgeShape, type KnowledgeKind, type ServerMessage, type SessionInfo } from '../../protocol/index.js';
import type { LabeledDataset } from '../data/dataset.js';
import type { TextSite } from '../lm/site.js';
import type { Student, TrainResult } from '../student.js';

/** What a participant holds: its private data, and the shared reference set's features. */
export interface ParticipantData {
  train: LabeledDataset;
  /** Reference features, row-major [referenceSize, ...sampleShape]; labels are never used in the rounds. */
  reference?: Float32Array;
  /**
   * The reference set's labels, where they are public (FedMD's setting): used only by the
   * transfer learning before round 1 (ParticipantOptions.pretrainOnReference).
   */
  referenceLabels?: Int32Array;
  /**
   * A language-model site (sessions of reference-token-predictions): its model, private text and
   * the reference windows. `train` is then empty with sample shape [2·positions], and `reference`
   * the windows' features (client/lm/site.ts textParticipantData), so the join's reference digest
   * covers the shared text.
   */
  text?: TextSite;
}

export interface RoundContext {
  info: SessionInfo;
  round: ServerMessage<'round'>;
  student: Student;
  data: ParticipantData;
  epochs: number;
  batchSize: number;
}

/** The knowledge a participant uploads: one tensor, plus counts where the kind needs them. */
export interface Share {
  values: Float32Array;
  shape: number[];
  sampleCount?: number;
  labelCounts?: number[];
  /**
   * For a share that averages per-record vectors (FD's class-logits): those vectors, [n, C]
   * row-major, with their labels, so that a privacy mechanism can clip each record before the
   * mean. Never sent.
   */
  records?: { values: Float32Array; labels: Int32Array };
}

/** Which upload a hook is rewriting. */
export interface UploadContext {
  kind: KnowledgeKind;
  numClasses: number;
  /** The round (or, in asynchronous sessions, the checkpoint) the upload belongs to. */
  round: number;
}

/**
 * The one point where a participant's knowledge can be rewritten just before it is packed and
 * sent: differential privacy (client/privacy.ts) and, in experiments only, hostile behaviour
 * (simulations/attacks.ts) both plug in here.
 */
export interface UploadHook {
  /** What to send instead of `share`: the same kind and shape. Must not modify `share`. */
  transform(share: Share, context: UploadContext): Share;
  /** The privacy spent so far, reported to the coordinator with every round's metrics. */
  spent?(): { epsilon: number; delta: number; rho: number; releases: number };
}

/** What the coordinator sent back to learn from. */
export interface Target {
  values: Float32Array;
  counts?: number[];
  /** For a target that came down top-k: 1 at the entries sent, 0 where `values` holds the spread remainder (protocol/sparse.ts topKSupport). */
  support?: Uint8Array;
}

/** What an asynchronous procedure can do with the coordinator. */
export interface AsyncChannel {
  /** Stores this participant's latest predictions on a reference shard. */
  push(shard: number, step: number, values: Float32Array): Promise<void>;
  /** The others' ensemble on a shard, or null when no peer's predictions are fresh enough. */
  pull(shard: number): Promise<{ values: Float32Array; contributors: number; oldestMs: number } | null>;
  /** Evaluates and reports checkpoint `number`; `taught` says whether distillation was active. */
  checkpoint(number: number, train: TrainResult, taught: boolean): Promise<void>;
}

/** A round-by-round procedure: each round, share knowledge, then learn from the target. */
export interface SyncProcedure {
  readonly mode: 'sync';
  /** The knowledge to upload for the round, or undefined to share nothing. May train first (FedAvg). */
  share(context: RoundContext): Promise<Share | undefined>;
  /** Trains the student for the round, towards the target when there is one. */
  learn(context: RoundContext, target: Target | null): Promise<TrainResult>;
}

/** An asynchronous procedure (co-distillation): the whole run at the participant's own pace. */
export interface AsyncProcedure {
  readonly mode: 'async';
  run(context: RoundContext, channel: AsyncChannel): Promise<void>;
}

export type Procedure = SyncProcedure | AsyncProcedure;

/** The features of the round's reference samples (or of the given ids), gathered in id order. */
export function referenceFeatures(context: RoundContext, ids: readonly number[] = context.round.referenceIds): Float32Array {
  const { reference } = context.data;
  const d = context.student.sampleSize;
  if (reference === undefined) throw new Error(`session ${context.info.session} needs the reference set, but this participant was given none`);
  if (reference.length !== context.info.referenceSize * d) {
    throw new Error(`the reference set holds ${reference.length / d} samples; session ${context.info.session} expects ${context.info.referenceSize}`);
  }
  const out = new Float32Array(ids.length * d);
  ids.forEach((id, row) => out.set(reference.subarray(id * d, (id + 1) * d), row * d));
  return out;
}

/** The shape a target of this session must have, as protocol decides it for the session's knowledge. */
export function targetShape(context: RoundContext): number[] {
  return knowledgeShape(context.info.knowledge, {
    positions: context.info.positions,
    rows: context.round.referenceIds.length,
    numClasses: context.info.numClasses,
    // A language-model site exchanges its trainable weights (a LoRA model's: the adapters).
    parameters: context.info.knowledge === 'weights' ? (context.data.text?.model.countParams() ?? context.student.model.countParams()) : undefined,
    width: classRowWidth(context),
  });
}

/**
 * The row width of the class kinds for this participant's student: its representation, followed
 * for hyper-knowledge by a soft prediction over the classes. Undefined for the other kinds.
 */
export function classRowWidth(context: RoundContext): number | undefined {
  switch (context.info.knowledge) {
    case 'class-representations':
      return context.student.representationWidth;
    case 'class-hyper-knowledge':
      return context.student.representationWidth + context.info.numClasses;
    default:
      return undefined;
  }
}

/** Training options for the round from the session and the participant's settings. */
export function trainOptions(context: RoundContext, alpha = context.info.alpha) {
  return { epochs: context.epochs, batchSize: context.batchSize, alpha, temperature: context.info.temperature };
}

/** Sums two passes' results, for procedures that train in phases. */
export function combined(first: TrainResult, second: TrainResult): TrainResult {
  return { loss: second.loss, steps: first.steps + second.steps, samples: first.samples + second.samples, ms: first.ms + second.ms };
}
