/**
 * The operator wire: what observers and admins (the dashboard) exchange with the coordinator on
 * its own socket.io namespace, `/operator`, apart from the participants' default namespace.
 * Operator tokens and participant tokens live in separate tables and are checked by separate
 * namespaces, so neither kind of token is worth anything on the other's side.
 *
 * Same envelope rules as the participants' wire: one msgpack envelope per event, the protocol
 * version in each, requests answered through the socket.io ack with `ack` or `refused`.
 */
import { z } from 'zod';
import { PROTOCOL_VERSION } from './version.js';
import { ROLES } from './messages.js';

/** The socket.io namespace operators connect to. */
export const OPERATOR_NAMESPACE = '/operator';

/** Observers read; admins also start, pause, resume and stop sessions. */
export const OPERATOR_ROLES = ['observer', 'admin'] as const;
export type OperatorRole = (typeof OPERATOR_ROLES)[number];

export const SESSION_ACTIONS = ['start', 'pause', 'resume', 'stop'] as const;
export type SessionAction = (typeof SESSION_ACTIONS)[number];

const id = z.string().min(1).max(128).regex(/^[A-Za-z0-9._:-]+$/, 'letters, digits and . _ : - only');
const count = z.number().int().min(0).max(2 ** 31);

/**
 * A listed participant as the dashboard shows it:
 * - `pending`: has not taken part in a round and is not connected;
 * - `active`: connected and not holding anything up;
 * - `late`: connected, and the open round either aggregated without its upload or is waiting
 *   for it alone (every other member has delivered);
 * - `dropped`: took part in a round, and is no longer connected (in an ended session: did not
 *   take part in its last round);
 * - `finished`: the session has ended, and this participant took part in its last round.
 */
export const PARTICIPANT_STATES = ['pending', 'active', 'late', 'dropped', 'finished'] as const;
export type ParticipantState = (typeof PARTICIPANT_STATES)[number];

const participantStatus = z.object({
  id,
  state: z.enum(PARTICIPANT_STATES),
  role: z.enum(ROLES).optional(),
});

const roundSummary = z.object({
  round: count,
  participants: count,
  contributors: count,
  bytesUp: count,
  bytesDown: count,
  /** Reported held-out accuracy per participant, in [0, 1]; a participant that did not report is absent. */
  accuracy: z.record(z.string(), z.number().min(0).max(1)),
  /** `CODE: message` of a failed round. */
  failure: z.string().max(4096).optional(),
  openedAt: z.number(),
  closedAt: z.number(),
});
export type RoundSummary = z.infer<typeof roundSummary>;

const sessionStatus = z.object({
  id,
  algorithm: z.string().max(64),
  /** The round state machine's phase (server/session.ts). */
  phase: z.enum(['waiting', 'collecting', 'training', 'running', 'ended']),
  /** Paused: the round in progress finishes, and the next does not open until resumed. */
  paused: z.boolean(),
  /** The round in progress, or the number completed when none is open. */
  round: count,
  rounds: count,
  endReason: z.string().max(4096).optional(),
  /** The session config without tokens; nested settings as JSON text. */
  config: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])),
  participants: z.array(participantStatus),
  history: z.array(roundSummary),
});
export type SessionStatus = z.infer<typeof sessionStatus>;

export const operatorServerMessages = {
  /** Sent on connection and whenever anything an operator sees has changed. */
  status: z.object({
    v: z.literal(PROTOCOL_VERSION),
    operator: z.object({ id, role: z.enum(OPERATOR_ROLES) }),
    sessions: z.array(sessionStatus),
    /** Coordinator clock, ms since the epoch. */
    at: z.number(),
  }),
} as const;

export const operatorClientMessages = {
  /** An admin's action on a session (an observer's is refused with E_FORBIDDEN). */
  control: z.object({ v: z.literal(PROTOCOL_VERSION), session: id, action: z.enum(SESSION_ACTIONS) }),
} as const;

export type OperatorServerMessage<E extends keyof typeof operatorServerMessages> = z.infer<(typeof operatorServerMessages)[E]>;
export type OperatorClientMessage<E extends keyof typeof operatorClientMessages> = z.infer<(typeof operatorClientMessages)[E]>;

type Envelope = Uint8Array;

export interface OperatorToServerEvents {
  control: (envelope: Envelope, ack: (reply: Envelope) => void) => void;
}
export interface ServerToOperatorEvents {
  status: (envelope: Envelope) => void;
}
