/**
 * The coordinator's codec, both directions: what arrives is decoded and validated here (an
 * upload by protocol's readContribution, a push by readPush) into protocol's `Contribution`s
 * before a session sees it, and what a session sends — round
 * announcements, targets, ensembles, failures, the end — is packed and encoded here. Sessions
 * deal only in decoded values.
 */
import {
  encodeMessage,
  isProbabilityKind,
  packTensor,
  packTopK,
  PROTOCOL_VERSION,
  readContribution,
  replyMessages,
  serverMessages,
  type ClientMessage,
  type Contribution,
  type KnowledgeExpectation,
  type ServerMessage,
  type WireDtype,
} from '../protocol/index.js';
import type { Target } from './strategies/index.js';

/** A session's messages as it produces them: decoded, targets as float32 values in their shape. */
export interface Outgoing {
  round: Omit<ServerMessage<'round'>, 'v' | 'model'> & { model?: Target };
  target: Omit<ServerMessage<'target'>, 'v' | 'target'> & { target: Target | null };
  'round-failed': Omit<ServerMessage<'round-failed'>, 'v'>;
  end: Omit<ServerMessage<'end'>, 'v'>;
  // Secure aggregation (server/secure-rounds.ts).
  'secure-roster': Omit<ServerMessage<'secure-roster'>, 'v'>;
  'secure-routed': Omit<ServerMessage<'secure-routed'>, 'v'>;
  'secure-unmask': Omit<ServerMessage<'secure-unmask'>, 'v'>;
  'secure-sum': Omit<ServerMessage<'secure-sum'>, 'v'>;
}

/** The answer to a pull (asynchronous sessions): the others' ensemble on a shard, or null. */
export interface EnsembleReply {
  shard: number;
  target: Target | null;
  contributors: number;
  oldestMs: number;
}

/** How a session reaches one participant: sends one message and says how many envelope bytes went out. */
export interface PeerLink {
  send<E extends keyof Outgoing>(event: E, message: Outgoing[E]): number;
}

/**
 * Envelopes already encoded, by message: a broadcast (one message object sent to every link)
 * is encoded once, and a round announcement resent to a rejoining participant is not encoded again.
 */
const encoded = new WeakMap<object, Uint8Array>();

/**
 * The envelope of a session's message, encoded once per message object; targets packed as
 * `targetDtype`, probability targets in the top-k sparse form when `targetTopK` is given.
 */
export function encodeOutgoing<E extends keyof Outgoing>(
  event: E,
  message: Outgoing[E],
  maxBytes: number,
  targetDtype: WireDtype = 'float32',
  targetTopK?: number,
): Uint8Array {
  let envelope = encoded.get(message);
  if (envelope === undefined) {
    envelope = encodeMessage(serverMessages[event], toWire(event, message, targetDtype, targetTopK) as never, { maxBytes });
    encoded.set(message, envelope);
  }
  return envelope;
}

function toWire<E extends keyof Outgoing>(event: E, message: Outgoing[E], targetDtype: WireDtype, targetTopK: number | undefined): ServerMessage<E> {
  if (event === 'round') {
    // The global model a weight-averaging round starts from goes down as that session's targets do: dense, as targetDtype.
    const { model, ...rest } = message as Outgoing['round'];
    if (model !== undefined) return { v: PROTOCOL_VERSION, ...rest, model: packTensor(model.values, model.shape, targetDtype, { copy: false }) } as ServerMessage<E>;
  }
  if (event !== 'target') return { v: PROTOCOL_VERSION, ...message } as ServerMessage<E>;
  const { target, ...rest } = message as Outgoing['target'];
  if (target === null) return { v: PROTOCOL_VERSION, ...rest, target: null } as ServerMessage<E>;
  // Only probabilities have a top-k form; logits, class logits and weights go down dense.
  if (targetTopK !== undefined && isProbabilityKind(rest.kind)) {
    return { v: PROTOCOL_VERSION, ...rest, target: packTopK(target.values, target.shape, targetTopK, targetDtype) } as ServerMessage<E>;
  }
  // No copy: the envelope encoder copies the bytes, and the target is not kept.
  return { v: PROTOCOL_VERSION, ...rest, target: packTensor(target.values, target.shape, targetDtype, { copy: false }) } as ServerMessage<E>;
}

export function encodeEnsembleReply(reply: EnsembleReply, maxBytes: number): Uint8Array {
  const { target, ...rest } = reply;
  return encodeMessage(
    replyMessages.ensemble,
    { v: PROTOCOL_VERSION, ok: true, ...rest, target: target === null ? null : packTensor(target.values, target.shape, 'float32') },
    { maxBytes },
  );
}

/** A push's predictions (asynchronous sessions), decoded and checked against the shard's rows. */
export function readPush(participant: string, message: ClientMessage<'push'>, expectation: KnowledgeExpectation): Contribution {
  return readContribution(participant, { kind: expectation.kind, values: message.values }, expectation);
}
