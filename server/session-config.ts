/**
 * What a session is configured with and what it records: the server's shared types, the config
 * checks, and the digests by which records name an aggregate. The session, the journal, the
 * coordinator and the CLI all read these; this file reads only protocol and the registries.
 */
import { createHash } from 'node:crypto';
import { SPARSE_TAILS, type ClientMessage, type Role, type SparseTail, type TokenizerIdentity, type WireDtype, type WireError } from '../protocol/index.js';
import { aggregatorConfigProblems } from './aggregators/index.js';
import { sampleSize, samplingProblems, type SamplingSettings } from './participant-sampling.js';
import { STRATEGIES } from './strategies/index.js';
import { secureAggregationProblems, type SecureAggregationSettings } from './secure-config.js';

export type { Role, SamplingSettings };

/**
 * One participant a session admits: its token, or (in a journal, or a config restored from one)
 * the token's sha256 — and, optionally, the one role its token may join as.
 */
export type ParticipantEntry = { id: string; role?: Role } & ({ token: string } | { tokenHash: string });

/** Asynchronous exchange (co-distillation): reference shards, how often to exchange, burn-in, staleness bound. */
export interface AsyncSettings {
  shards: number;
  exchangeEvery: number;
  burnInSteps: number;
  stalenessMs: number;
}

export const DEFAULT_ASYNC: AsyncSettings = { shards: 5, exchangeEvery: 20, burnInSteps: 20, stalenessMs: 120_000 };

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
  /**
   * SHA-256 of the reference set's float32 features, as participants compute it (referenceDigest
   * in protocol); when omitted, the first participant to join with one fixes it for the others.
   */
  referenceDigest?: string;
  /** Reference samples per round (all of them when ≥ referenceSize). */
  referencePerRound: number;
  temperature: number;
  alpha: number;
  uploadDtype: WireDtype;
  /**
   * How targets travel down (float32 when omitted): float16 halves and uint8 quarters the bytes
   * of every target, at the precision packTensor states for each.
   */
  targetDtype?: WireDtype;
  /**
   * Soft predictions go up in the top-k sparse form (protocol/sparse.ts: the k largest
   * probabilities per row, the remaining mass spread uniformly on decoding); dense when omitted.
   * The coordinator decodes them to dense rows and aggregates as usual.
   */
  uploadTopK?: number;
  /** Probability targets go down in the top-k sparse form with this k (other targets stay dense); dense when omitted. */
  targetTopK?: number;
  /**
   * How participants complete a top-k target's remaining mass (protocol/sparse.ts SPARSE_TAILS):
   * spread evenly (uniform) or in proportion to the learner's own distribution (student; per-token
   * sessions with targetTopK). When omitted: student for per-token sessions with targetTopK
   * (server/session.ts info), uniform otherwise.
   */
  sparseTail?: SparseTail;
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
  /**
   * Participant sampling per round (synchronous sessions): only the sampled contributors upload,
   * receive targets and train; the quorum and the deadline apply to them. Every connected
   * contributor takes part each round when omitted. In a weight-averaging session (FedAvg's
   * client fraction C) a sampled participant that lacks the latest global model gets it with the round.
   */
  sampling?: SamplingSettings;
  /** What a round that cannot reach its quorum does to the session. */
  onRoundFailure: 'continue' | 'stop';
  seed: number;
  maxMessageBytes: number;
  /**
   * Secure aggregation (server/secure-rounds.ts): the coordinator learns only the sum of the
   * members' knowledge, never one member's; `threshold` survivors' shares recover a round from
   * dropouts. Off when omitted.
   */
  secureAggregation?: SecureAggregationSettings;
  /**
   * Per-token knowledge (reference-token-predictions) between language models: the tokenizer
   * every participant must join with (numClasses is its vocabulary) and the tokens per reference
   * window (the reference set is shared text cut into referenceSize windows of this many tokens).
   * Both or neither; only algorithms whose descriptor says `perToken` take them.
   */
  tokenizer?: TokenizerIdentity;
  positions?: number;
}

export type ParticipantMetrics = ClientMessage<'report'>['metrics'];

export interface RoundRecord {
  round: number;
  /** Participants connected when the round opened. */
  participants: string[];
  /** With sampling: the contributors sampled for the round, who alone upload, get targets and train (absent without sampling). */
  sampled?: string[];
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

/** sha256 of a tensor's float32 bytes: how records name an aggregate or a target so that it can be recomputed and compared. */
export function valuesDigest(values: Float32Array): string {
  return createHash('sha256').update(new Uint8Array(values.buffer, values.byteOffset, values.byteLength)).digest('hex');
}

/** The entries that can contribute: every one but the distillers. */
export function contributorEntries(c: Pick<SessionConfig, 'participants'>): ParticipantEntry[] {
  return c.participants.filter((p) => p.role !== 'distiller');
}

/** What is wrong with a session's per-token settings (tokenizer, positions). */
function perTokenProblems(c: SessionConfig): string[] {
  if (c.tokenizer === undefined && c.positions === undefined) return [];
  if (c.tokenizer === undefined || c.positions === undefined) return ['tokenizer and positions go together: a session of per-token knowledge needs the tokenizer and the tokens per reference window'];
  const problems: string[] = [];
  if (!(Number.isInteger(c.positions) && c.positions >= 1 && c.positions <= 65_536)) problems.push(`positions must be an integer in [1, 65536] (got ${c.positions})`);
  if (c.tokenizer.vocabSize !== c.numClasses) problems.push(`numClasses (${c.numClasses}) must be the tokenizer's vocabulary (${c.tokenizer.vocabSize}): per-token predictions are over the vocabulary`);
  const descriptor = Object.hasOwn(STRATEGIES, c.algorithm) ? STRATEGIES[c.algorithm] : undefined;
  if (descriptor !== undefined && descriptor.perToken !== true) {
    const able = Object.values(STRATEGIES).filter((d) => d.perToken === true).map((d) => d.name);
    problems.push(`${c.algorithm} does not exchange per-token knowledge; with a tokenizer and positions choose ${able.join(', ')}`);
  }
  if (c.secureAggregation !== undefined) problems.push('secure aggregation of per-token knowledge is not supported');
  return problems;
}

/** Throws one error listing everything wrong with a session config. */
export function checkSessionConfig(c: SessionConfig): void {
  const problems: string[] = [];
  if (!Number.isInteger(c.rounds) || c.rounds < 1) problems.push(`rounds must be an integer ≥ 1 (got ${c.rounds})`);
  if (c.participants.length === 0) problems.push('participants must list at least one {id, token}');
  if (new Set(c.participants.map((p) => ('token' in p ? p.token : p.tokenHash))).size !== c.participants.length) problems.push('every participant needs its own token');
  if (new Set(c.participants.map((p) => p.id)).size !== c.participants.length) problems.push('participant ids must be unique');
  const contributors = contributorEntries(c).length;
  if (!Number.isInteger(c.minParticipants) || c.minParticipants < 1 || c.minParticipants > contributors) {
    const distillers = c.participants.length - contributors;
    problems.push(`minParticipants must be in [1, ${contributors}]${distillers > 0 ? ` (distillers upload nothing and do not count)` : ''} (got ${c.minParticipants})`);
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
    const descriptor = Object.hasOwn(STRATEGIES, c.algorithm) ? STRATEGIES[c.algorithm] : undefined;
    if (descriptor?.mode === 'sync') problems.push(`async settings are for asynchronous exchange (co-distillation): ${c.algorithm} runs synchronous rounds and would ignore them`);
  }
  if (c.sampling !== undefined) {
    problems.push(...samplingProblems(c.sampling, contributors, c.minParticipants));
    const descriptor = Object.hasOwn(STRATEGIES, c.algorithm) ? STRATEGIES[c.algorithm] : undefined;
    if (descriptor?.mode === 'async') problems.push(`sampling is for synchronous rounds: ${c.algorithm} exchanges asynchronously, with no round to sample participants for`);
  }
  if (c.aggregator !== undefined) problems.push(...aggregatorConfigProblems(c.aggregator, { trimFraction: c.trimFraction, participants: c.participants.length }));
  if (c.secureAggregation !== undefined) problems.push(...secureAggregationProblems({ ...c, secureAggregation: c.secureAggregation }, contributors));
  if (c.secureAggregation !== undefined && c.sampling !== undefined) {
    // A secure round needs the threshold's members to reveal; a sampled round has only its sample.
    const sampled = sampleSize(c.sampling, contributors, c.minParticipants);
    if (c.secureAggregation.threshold > sampled) {
      problems.push(`secureAggregation.threshold (${c.secureAggregation.threshold}) exceeds the ${sampled} participants sampled each round: every secure round would fail; lower the threshold or sample more`);
    }
  }
  if (c.referenceDigest !== undefined && !/^[0-9a-f]{64}$/.test(c.referenceDigest)) problems.push(`referenceDigest must be a SHA-256 in 64 lowercase hex digits (got "${c.referenceDigest}")`);
  for (const [field, k] of [['uploadTopK', c.uploadTopK], ['targetTopK', c.targetTopK]] as const) {
    if (k !== undefined && !(Number.isInteger(k) && k >= 1 && k <= c.numClasses)) problems.push(`${field} must be an integer in [1, ${c.numClasses}] (the classes) (got ${k})`);
  }
  if (c.sparseTail !== undefined && !(SPARSE_TAILS as readonly string[]).includes(c.sparseTail)) problems.push(`sparseTail must be one of ${SPARSE_TAILS.join(', ')} (got ${String(c.sparseTail)})`);
  if (c.sparseTail === 'student' && (c.targetTopK === undefined || c.positions === undefined)) {
    problems.push('sparseTail "student" completes top-k targets of per-token knowledge: it needs targetTopK and a per-token session (tokenizer and positions)');
  }
  problems.push(...perTokenProblems(c));
  if (!(c.temperature > 0)) problems.push(`temperature must be > 0 (got ${c.temperature})`);
  if (!(c.alpha >= 0 && c.alpha <= 1)) problems.push(`alpha must be in [0, 1] (got ${c.alpha})`);
  if (problems.length > 0) throw new Error(`invalid session config "${c.id}": ${problems.join('; ')}`);
}
