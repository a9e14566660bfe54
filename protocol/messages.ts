/**
 * The messages both ends exchange, their schemas and the socket.io event maps.
 *
 * Every event carries exactly one binary envelope (msgpack, see codec.ts); requests that expect
 * an answer (join, upload, report) get a binary envelope back through the socket.io ack.
 * Headers are validated with zod on receipt; tensor bytes are checked by unpackTensor, never by
 * the schema.
 */
import { z } from 'zod';
import { decodeEnvelope, encodeAlignedEnvelope, encodeEnvelope, type CodecLimits } from './codec.js';
import { ErrorCode, ProtocolError, type WireError } from './errors.js';
import { KNOWLEDGE_KINDS, type KnowledgeKind } from './knowledge.js';
import { decodeReferenceIds, encodeReferenceIds, MAX_REFERENCE_IDS } from './reference-ids.js';
import { MAX_TOP_K_WIDTH, SPARSE_TAILS, type TopKWireTensor } from './sparse.js';
import { WIRE_DTYPES, type WireTensor } from './tensor.js';
import { PROTOCOL_VERSION } from './version.js';

const id = z.string().min(1).max(128).regex(/^[A-Za-z0-9._:-]+$/, 'letters, digits and . _ : - only');
const roundNumber = z.number().int().min(1).max(1_000_000);
const count = z.number().int().min(0).max(2 ** 31);

const wireTensor = z.object({
  dtype: z.enum(WIRE_DTYPES as [WireTensor['dtype'], ...WireTensor['dtype'][]]),
  shape: z.array(count).max(8),
  data: z.custom<Uint8Array>((value) => value instanceof Uint8Array, 'expected binary bytes (msgpack bin)'),
  min: z.number().optional(),
  scale: z.number().optional(),
}) satisfies z.ZodType<WireTensor>;

/**
 * A tensor of probabilities in the top-k sparse form (sparse.ts). Tried before the dense form in
 * `knowledgeTensor`: a dense schema would accept the same map with k and indices stripped.
 */
const topKWireTensor = z.object({
  dtype: wireTensor.shape.dtype,
  shape: wireTensor.shape.shape,
  k: z.number().int().min(1).max(MAX_TOP_K_WIDTH),
  indices: z.custom<Uint8Array>((value) => value instanceof Uint8Array, 'expected binary bytes (msgpack bin)'),
  data: wireTensor.shape.data,
  min: z.number().optional(),
  scale: z.number().optional(),
}) satisfies z.ZodType<TopKWireTensor>;

/** What knowledge travels as: dense, or (soft predictions only; checked on decoding) top-k sparse. */
const knowledgeTensor = z.union([topKWireTensor, wireTensor]);

const wireError = z.object({
  code: z.enum(Object.values(ErrorCode) as [ErrorCode, ...ErrorCode[]]),
  message: z.string().max(4096),
}) satisfies z.ZodType<WireError>;

/**
 * A language model's tokenizer as far as token ids go (client/lm/tokenizer.ts): two ends exchange
 * per-token knowledge only if these agree, or token ids would mean different things.
 */
const tokenizerIdentity = z.object({
  kind: z.string().min(1).max(64),
  encoding: z.string().min(1).max(64),
  vocabSize: z.number().int().min(2).max(100_000),
  bos: z.number().int().min(0).max(100_000),
});
export type TokenizerIdentity = z.infer<typeof tokenizerIdentity>;

/** What a participant needs to know about the session it joined. */
const sessionInfo = z.object({
  session: id,
  algorithm: z.string().max(64),
  knowledge: z.enum([...KNOWLEDGE_KINDS, 'none'] as [KnowledgeKind | 'none', ...(KnowledgeKind | 'none')[]]),
  rounds: roundNumber,
  numClasses: z.number().int().min(2).max(100_000),
  referenceSize: count,
  temperature: z.number().positive().max(1000),
  /** Weight of the task loss; the distillation loss gets 1 − alpha. */
  alpha: z.number().min(0).max(1),
  uploadDtype: z.enum(WIRE_DTYPES as [WireTensor['dtype'], ...WireTensor['dtype'][]]),
  /** Soft predictions go up in the top-k sparse form with this k (sparse.ts); dense when absent. */
  uploadTopK: z.number().int().min(1).max(MAX_TOP_K_WIDTH).optional(),
  /** How a learner completes a top-k target's remaining mass (sparse.ts SPARSE_TAILS); uniform when absent. */
  sparseTail: z.enum(SPARSE_TAILS).optional(),
  maxMessageBytes: z.number().int().positive(),
  /**
   * Present for asynchronous sessions (co-distillation): no round barrier; participants push
   * predictions on a reference shard every `exchangeEvery` local steps and pull the others'
   * ensemble, which counts only predictions younger than `stalenessMs`; distillation starts
   * after `burnInSteps`. `rounds` then counts checkpoints at which participants report.
   */
  async: z
    .object({
      shards: z.number().int().min(1).max(100_000),
      exchangeEvery: z.number().int().min(1),
      burnInSteps: z.number().int().min(0),
      stalenessMs: z.number().positive(),
    })
    .optional(),
  /**
   * Present for sessions under secure aggregation (protocol/secure, server/secure-rounds.ts): the
   * coordinator sees only masked sums; any `threshold` members' shares rebuild a dropped member's
   * mask key. `targets` says what a participant makes of the round's sum: the mean of the others
   * (S − own)/(n − 1), or the mean of all S/n.
   */
  secure: z.object({ threshold: z.number().int().min(2).max(255), targets: z.enum(['others', 'all']) }).optional(),
  /**
   * Sessions of per-token knowledge (reference-token-predictions): the tokenizer every
   * participant must use (numClasses is its vocabulary) and the tokens per reference window.
   */
  tokenizer: tokenizerIdentity.optional(),
  positions: z.number().int().min(1).max(65_536).optional(),
});
export type SessionInfo = z.infer<typeof sessionInfo>;

const header = { v: z.literal(PROTOCOL_VERSION), session: id };

/** Binary of at most `max` bytes; exact sizes are the session's to check (E_SHAPE), not the schema's. */
const bytes = (max: number) =>
  z.custom<Uint8Array>((value) => value instanceof Uint8Array && value.byteLength <= max, `expected binary bytes (msgpack bin) of at most ${max} bytes`);
/** A secure round holds at most 255 members (protocol/secure's MAX_SECURE_MEMBERS). */
const secureMembers = 255;
const secureShare = z.object({ to: id, nonce: bytes(64), ciphertext: bytes(1024) });
const revealedShare = z.object({ of: id, share: bytes(1024) });

/**
 * What a participant joins as: a participant contributes and learns; a teacher contributes and
 * never learns; a distiller holds no private data, contributes nothing, and learns from the
 * ensemble of everyone's knowledge on the reference set (one global student per session).
 */
export const ROLES = ['participant', 'teacher', 'distiller'] as const;
export type Role = (typeof ROLES)[number];

export const clientMessages = {
  /** A teacher contributes knowledge and never learns: it receives no target and owes no report. A distiller only learns. */
  join: z.object({
    ...header,
    role: z.enum(ROLES),
    /**
     * The reference set this participant predicts on: its rows and the SHA-256 of its float32
     * features (referenceDigest). The coordinator refuses a set that is not the session's.
     */
    reference: z.object({ rows: count, digest: z.string().regex(/^[0-9a-f]{64}$/, 'a SHA-256 in 64 lowercase hex digits') }).optional(),
    /** The tokenizer of this participant's language model: a session of per-token knowledge refuses any other (E_TOKENIZER). */
    tokenizer: tokenizerIdentity.optional(),
  }),
  upload: z.object({
    ...header,
    round: roundNumber,
    participant: id,
    kind: z.enum(KNOWLEDGE_KINDS as unknown as [KnowledgeKind, ...KnowledgeKind[]]),
    /** The knowledge itself; its shape depends on the kind (see knowledge.ts). */
    values: knowledgeTensor,
    /** Private samples behind the knowledge (for sample-weighted aggregation and FedAvg). */
    sampleCount: count.optional(),
    /** Private samples per class (class-logits needs them; label-weighted aggregation uses them). */
    labelCounts: z.array(count).max(100_000).optional(),
  }),
  report: z.object({
    ...header,
    round: roundNumber,
    participant: id,
    metrics: z.object({
      accuracy: z.number().min(0).max(1).optional(),
      loss: z.number().optional(),
      trainSamples: count.optional(),
      trainMs: z.number().min(0).optional(),
      /**
       * With differential privacy on the uploads (client/privacy.ts): what this participant has
       * spent so far — zCDP ρ, the (ε, δ) it implies, and the number of noisy uploads.
       */
      privacy: z
        .object({ epsilon: z.number().min(0), delta: z.number().gt(0).lt(1), rho: z.number().min(0), releases: count })
        .optional(),
    }),
  }),
  /** Asynchronous sessions: the latest predictions of this participant on one reference shard. */
  push: z.object({
    ...header,
    participant: id,
    shard: count,
    /** The participant's local step count when it predicted (for the record; age is measured in time). */
    step: count,
    values: knowledgeTensor,
  }),
  /** Asynchronous sessions: asks for the ensemble of the *others'* latest predictions on a shard. */
  pull: z.object({ ...header, participant: id, shard: count }),
  /**
   * Secure aggregation (Bonawitz et al. 2017), step 1: this member's two fresh X25519 public keys
   * for the round — one to agree share-encryption keys, one to agree pairwise masks.
   */
  'secure-keys': z.object({ ...header, round: roundNumber, participant: id, cipherKey: bytes(1024), maskKey: bytes(1024) }),
  /** Step 2: for every other member of the roster, its shares of this member's mask key and self-mask seed, encrypted to it (AES-GCM). */
  'secure-shares': z.object({ ...header, round: roundNumber, participant: id, shares: z.array(secureShare).max(secureMembers) }),
  /** Step 3: the fixed-point knowledge plus the self mask and the pairwise masks, uint32 little-endian, mod 2^32. */
  'secure-upload': z.object({ ...header, round: roundNumber, participant: id, masked: bytes(2 ** 31) }),
  /** Step 4: the shares the coordinator asked for — mask-key shares of members that dropped, seed shares of members that uploaded. */
  'secure-reveal': z.object({
    ...header, round: roundNumber, participant: id,
    maskKeyShares: z.array(revealedShare).max(secureMembers), seedShares: z.array(revealedShare).max(secureMembers),
  }),
} as const;

/**
 * Whether a schema holds a field whose wire form differs from its value (a z.codec, found by walking
 * its definition once; a z.lazy counts, as it cannot be walked): only these are encoded through
 * z.safeEncode. Every other message is checked by safeParse, which gives the same result at a third
 * of the cost — each of a round's 100 leave-one-out targets is checked once.
 */
export function carriesCodec(schema: z.ZodType): boolean {
  let found = codecWalks.get(schema);
  if (found === undefined) codecWalks.set(schema, (found = holdsCodec(schema, new Set())));
  return found;
}
function holdsCodec(schema: z.ZodType, seen: Set<z.ZodType>): boolean {
  if (seen.has(schema)) return false;
  seen.add(schema);
  const def = schema._zod.def as unknown as Record<string, unknown>;
  const inner = (value: unknown): boolean => value instanceof z.ZodType && holdsCodec(value, seen);
  return schema instanceof z.ZodCodec || def.type === 'lazy' || Object.values(def).some((value) =>
    inner(value) || (Array.isArray(value) ? value.some(inner) : value !== null && typeof value === 'object' && Object.values(value).some(inner)));
}
const codecWalks = new WeakMap<z.ZodType, boolean>();

/**
 * A round's reference ids: `number[]` to every sender and receiver, a plain array or a bitmap on the
 * wire (protocol/reference-ids.ts), whichever is smaller — encodeMessage encodes through this codec,
 * decodeMessage decodes through it. `referenceSize` bounds a bitmap before it is expanded: the
 * session's for a participant that joined (roundMessage), else what any session may hold.
 */
function referenceIdSet(referenceSize: number) {
  // Every id is checked once, on the wire side: as the array, or by encodeReferenceIds (integers,
  // increasing from 0) and decodeReferenceIds (below referenceSize) for the bitmap. The value side
  // only says it is an array: a second pass over 60,000 ids costs as much as the first.
  const wire = z.union([z.array(count).max(MAX_REFERENCE_IDS), bytes(Math.ceil(MAX_REFERENCE_IDS / 8))]);
  const ids = z.custom<number[]>((value) => Array.isArray(value), 'expected an array of reference ids');
  return z.codec(wire, ids, {
    decode: (wire, payload) => {
      try {
        return decodeReferenceIds(wire, referenceSize);
      } catch (error) {
        if (!(error instanceof ProtocolError)) throw error;
        // parseMessage reports it as E_SCHEMA with the field's path, as every other schema issue.
        payload.issues.push({ code: 'custom', message: error.toWire().message, input: wire });
        return [];
      }
    },
    encode: (ids) => encodeReferenceIds(ids),
  });
}

export const serverMessages = {
  round: z.object({
    ...header,
    round: roundNumber,
    knowledge: sessionInfo.shape.knowledge,
    referenceIds: referenceIdSet(MAX_REFERENCE_IDS),
    temperature: z.number().positive(),
    /** Milliseconds since the epoch after which uploads for this round are refused. */
    deadline: z.number(),
    /**
     * Sessions that sample participants per round: true for a sampled participant; false for one
     * that sits the round out — it uploads nothing, gets no target, owes no report and waits for
     * the next round (its referenceIds are then empty). Absent: every participant takes part.
     */
    sampled: z.boolean().optional(),
    /**
     * Sessions that average weights (FedAvg): the global model, [parameters] dense, that this
     * participant starts the round from — McMahan et al. 2017, Algorithm 1, sends w_t to each
     * selected client. Sent only to a participant that does not hold it already: one that sat out
     * (or missed) the round that made it, or rejoined; the others hold it as their last target.
     * Absent before the first aggregate: each participant starts from its initial model.
     */
    model: wireTensor.optional(),
  }),
  target: z.object({
    ...header,
    round: roundNumber,
    kind: sessionInfo.shape.knowledge,
    /** What this participant learns from (its shape depends on the kind), or null without peers. */
    target: knowledgeTensor.nullable(),
    /** Per-class sample counts behind a class-logits target (0: no peer holds the class). */
    counts: z.array(count).max(100_000).optional(),
    contributors: count,
  }),
  'round-failed': z.object({ ...header, round: roundNumber, error: wireError }),
  /** Secure aggregation: the round's members and their public keys; a member's share x-coordinate is its index + 1. */
  'secure-roster': z.object({
    ...header, round: roundNumber,
    members: z.array(z.object({ participant: id, cipherKey: bytes(1024), maskKey: bytes(1024) })).min(1).max(secureMembers),
  }),
  /** The members whose shares went out (they mask with each other), and the shares addressed to this member. */
  'secure-routed': z.object({
    ...header, round: roundNumber, senders: z.array(id).max(secureMembers),
    shares: z.array(z.object({ from: id, nonce: bytes(64), ciphertext: bytes(1024) })).max(secureMembers),
  }),
  /** Who uploaded a masked vector: each survivor reveals seed shares of these and mask-key shares of the other senders. */
  'secure-unmask': z.object({ ...header, round: roundNumber, uploaded: z.array(id).max(secureMembers) }),
  /** The round's unmasked sum (uint32 little-endian, fixed point) over `contributors` members: participants build their targets from it. */
  'secure-sum': z.object({ ...header, round: roundNumber, sum: bytes(2 ** 31), contributors: count }),
  end: z.object({ ...header, reason: z.string().max(4096), rounds: count }),
} as const;

/**
 * The round schema of a session whose reference set holds `referenceSize` rows: a bitmap naming
 * more rows is refused before it is expanded. The last one is kept: a participant asks every round.
 */
export function roundMessage(referenceSize: number): typeof serverMessages.round {
  if (lastRoundMessage?.referenceSize !== referenceSize) {
    lastRoundMessage = { referenceSize, schema: serverMessages.round.extend({ referenceIds: referenceIdSet(referenceSize) }) };
  }
  return lastRoundMessage.schema;
}
let lastRoundMessage: { referenceSize: number; schema: typeof serverMessages.round } | undefined;

export const replyMessages = {
  joined: z.object({
    v: z.literal(PROTOCOL_VERSION),
    ok: z.literal(true),
    participant: id,
    info: sessionInfo,
    /** The round in progress when the participant joined (0 before the first). */
    round: count,
  }),
  ack: z.object({ v: z.literal(PROTOCOL_VERSION), ok: z.literal(true) }),
  /** The answer to a pull: the others' ensemble on the shard, or null when none is fresh enough. */
  ensemble: z.object({
    v: z.literal(PROTOCOL_VERSION),
    ok: z.literal(true),
    shard: count,
    target: wireTensor.nullable(),
    contributors: count,
    /** Age of the oldest prediction in the ensemble, in milliseconds. */
    oldestMs: z.number().min(0),
  }),
  refused: z.object({ v: z.literal(PROTOCOL_VERSION), ok: z.literal(false), error: wireError }),
} as const;

export type ClientMessage<E extends keyof typeof clientMessages> = z.infer<(typeof clientMessages)[E]>;
export type ServerMessage<E extends keyof typeof serverMessages> = z.infer<(typeof serverMessages)[E]>;
export type ReplyMessage<E extends keyof typeof replyMessages> = z.infer<(typeof replyMessages)[E]>;

/** An answer to a request: the request's success shape or a refusal. */
export type Reply<Ok> = Ok | ReplyMessage<'refused'>;

type Envelope = Uint8Array;
type Ack = (reply: Envelope) => void;

/** socket.io event maps, shared by the coordinator (`Server<…>`) and participants (`Socket<…>`). */
export interface ClientToServerEvents {
  join: (envelope: Envelope, ack: Ack) => void;
  upload: (envelope: Envelope, ack: Ack) => void;
  report: (envelope: Envelope, ack: Ack) => void;
  push: (envelope: Envelope, ack: Ack) => void;
  pull: (envelope: Envelope, ack: Ack) => void;
  'secure-keys': (envelope: Envelope, ack: Ack) => void;
  'secure-shares': (envelope: Envelope, ack: Ack) => void;
  'secure-upload': (envelope: Envelope, ack: Ack) => void;
  'secure-reveal': (envelope: Envelope, ack: Ack) => void;
}
export interface ServerToClientEvents {
  round: (envelope: Envelope) => void;
  target: (envelope: Envelope) => void;
  'round-failed': (envelope: Envelope) => void;
  'secure-roster': (envelope: Envelope) => void;
  'secure-routed': (envelope: Envelope) => void;
  'secure-unmask': (envelope: Envelope) => void;
  'secure-sum': (envelope: Envelope) => void;
  end: (envelope: Envelope) => void;
  /**
   * The coordinator is about to close this connection, and says why: a refusal envelope
   * (E_REPLACED: the same participant connected again elsewhere; E_MALFORMED: a packet it could
   * not decode). The connection is closed by the server, so the client does not reconnect by itself.
   */
  closing: (envelope: Envelope) => void;
}

/**
 * Encodes after checking the message against its own schema: a sender never emits what a receiver
 * would refuse. Fields the schema gives a wire form of their own (a round's referenceIds) are
 * encoded through it, the rest travel as they are. A large tensor's bytes are aligned in the envelope (encodeAlignedEnvelope), so that
 * the receiver can read them in place.
 */
export function encodeMessage<S extends z.ZodType>(schema: S, message: z.infer<S>, limits?: CodecLimits): Uint8Array {
  return encodeAlignedEnvelope(parseMessage(schema, message, 'encode') as object, limits);
}

/** Decodes and validates one envelope: E_MALFORMED, E_TOO_LARGE, E_VERSION or E_SCHEMA on failure. */
export function decodeMessage<S extends z.ZodType>(schema: S, bytes: unknown, limits?: CodecLimits): z.infer<S> {
  return parseMessage(schema, decodeEnvelope(bytes, limits));
}

/** Checks a message against its schema: decoding what arrived into its values, or (`encode`) values into what travels. */
function parseMessage<S extends z.ZodType>(schema: S, message: unknown, direction: 'decode' | 'encode' = 'decode'): z.infer<S> {
  const v = (message as { v?: unknown } | null)?.v;
  if (v !== PROTOCOL_VERSION) {
    const claim = v === undefined ? 'names no protocol version (field v)' : `speaks protocol version ${describeVersion(v)}`;
    throw new ProtocolError(ErrorCode.Version, `the envelope ${claim}; this end speaks ${PROTOCOL_VERSION}. Upgrade the older side.`);
  }
  // Encoding yields the wire form (z.input), which only the envelope encoder reads.
  const parsed = direction === 'encode' && carriesCodec(schema) ? (z.safeEncode(schema, message as z.output<S>) as z.ZodSafeParseResult<z.output<S>>) : schema.safeParse(message);
  if (!parsed.success) {
    const issues = parsed.error.issues
      .slice(0, 3)
      .map((issue) => `${issue.path.join('.') || '(envelope)'}: ${issue.message}`)
      .join('; ');
    throw new ProtocolError(ErrorCode.Schema, issues);
  }
  return parsed.data;
}

/**
 * A received version as a refusal may quote it: the peer chose its type and size. Not
 * JSON.stringify, which throws on a bigint (msgpack uint64/int64 beyond 2^53) and would copy a
 * kilobytes-long string into a refusal past the 4096 characters a wire error may carry.
 */
function describeVersion(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean' || v === null) return String(v);
  if (Array.isArray(v)) return 'an array';
  if (v instanceof Uint8Array) return 'binary';
  return `a ${typeof v === 'object' ? 'map' : typeof v}`;
}

/** The refusal envelope for an error, as sent back through an ack; cut to the 4096 characters the schema lets a receiver read. */
export function refusal(error: WireError): Uint8Array {
  const message = error.message.length > 4096 ? `${error.message.slice(0, 4095)}…` : error.message;
  return encodeEnvelope({ v: PROTOCOL_VERSION, ok: false, error: { code: error.code, message } });
}

/** Reads an ack: returns the success message, or throws the refusal as a ProtocolError. */
export function readReply<S extends z.ZodType>(schema: S, bytes: unknown): z.infer<S> {
  const message = decodeEnvelope(bytes);
  if (message.ok === false) {
    const refused = parseMessage(replyMessages.refused, message);
    throw new ProtocolError(refused.error.code, refused.error.message);
  }
  return parseMessage(schema, message);
}
