/**
 * A client procedure: what a participant does in a round of its algorithm. It meets the
 * server's strategy only through protocol types.
 */
import type { ServerMessage, SessionInfo } from '../../protocol/index.js';
import type { LabeledDataset } from '../data/dataset.js';
import type { Student, TrainResult } from '../student.js';

/** What a participant holds: its private data, and the shared reference set's features. */
export interface ParticipantData {
  train: LabeledDataset;
  /** Reference features, row-major [referenceSize, ...sampleShape]; labels are never used. */
  reference?: Float32Array;
}

export interface RoundContext {
  info: SessionInfo;
  round: ServerMessage<'round'>;
  student: Student;
  data: ParticipantData;
  epochs: number;
  batchSize: number;
}

export interface Procedure {
  /** The knowledge to upload for the round ([referenceIds × numClasses] probabilities), or undefined to share nothing. */
  share(context: RoundContext): Promise<Float32Array | undefined>;
  /** Trains the student for the round, towards the aggregate when there is one. */
  learn(context: RoundContext, target: Float32Array | null): Promise<TrainResult>;
}

/** The features of the round's reference samples, gathered in id order. */
export function referenceFeatures(context: RoundContext): Float32Array {
  const { reference } = context.data;
  const d = context.student.sampleShape.reduce((a, b) => a * b, 1);
  const ids = context.round.referenceIds;
  if (reference === undefined) throw new Error(`round ${context.round.round} needs the reference set, but this participant was given none`);
  if (reference.length !== context.info.referenceSize * d) {
    throw new Error(`the reference set holds ${reference.length / d} samples; session ${context.info.session} expects ${context.info.referenceSize}`);
  }
  const out = new Float32Array(ids.length * d);
  ids.forEach((id, row) => out.set(reference.subarray(id * d, (id + 1) * d), row * d));
  return out;
}
