/**
 * Error codes on the wire. Every refusal the coordinator or a participant sends carries one
 * code and a message a person can act on, e.g.
 * `E_SHAPE: predictions for round 7 have shape [500,9]; the session expects [500,10]`.
 */
export const ErrorCode = {
  /** The peer speaks another protocol version. */
  Version: 'E_VERSION',
  /** The bytes are not a msgpack envelope at all, or are truncated. */
  Malformed: 'E_MALFORMED',
  /** The envelope decoded but a field is missing, has the wrong type or an invalid value; or the event is not one the protocol has. */
  Schema: 'E_SCHEMA',
  /** A payload exceeds the session's size limit. */
  TooLarge: 'E_TOO_LARGE',
  /** A tensor's shape or byte length does not match what the session expects. */
  Shape: 'E_SHAPE',
  /** A tensor's dtype is not one the wire knows. */
  Dtype: 'E_DTYPE',
  /** A tensor holds NaN or ±Infinity, or probabilities off the simplex. */
  Value: 'E_VALUE',
  /** Unknown or rejected token, or an action the role may not take. */
  Auth: 'E_AUTH',
  /** A valid token whose role may not take this action (an observer asking to stop a session). */
  Forbidden: 'E_FORBIDDEN',
  /** The named session does not exist or has ended. */
  Session: 'E_SESSION',
  /** An upload for a round that is not open (already aggregated, failed, or not yet begun). */
  RoundClosed: 'E_ROUND_CLOSED',
  /** The participant has not joined the session it names. */
  NotJoined: 'E_NOT_JOINED',
  /** The connection sent more messages than the coordinator's per-connection rate limit allows; slow down and retry. */
  RateLimited: 'E_RATE_LIMITED',
  /** The same participant connected again: this, the older connection, is closed (the newer one takes part). */
  Replaced: 'E_REPLACED',
  /** The coordinator holds as many connections as it is configured to; try again later. */
  Capacity: 'E_CAPACITY',
  /** The participant's reference set is not the session's (another digest): every site must predict on the same rows. */
  Reference: 'E_REFERENCE',
  /** The participant's tokenizer is not the session's: token ids (and so per-token knowledge) would mean different things. */
  Tokenizer: 'E_TOKENIZER',
  /**
   * A secure-aggregation message out of turn or naming members it may not: a step the round is
   * not at, a participant not in the round's roster, a share for oneself or one missing.
   */
  Secure: 'E_SECURE',
  /** A bug on the answering side; the message says what failed. */
  Internal: 'E_INTERNAL',
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/**
 * An error as a value: a code plus a message a person can act on, printed as `CODE: message`.
 * The wire's errors (ProtocolError) use ErrorCode; a module whose refusals never travel (a loss's
 * configuration, a tokenizer, a student's files) names its own codes, e.g. `E_CONFIG`.
 */
export class CodedError<Code extends string = string> extends Error {
  constructor(
    readonly code: Code,
    message: string,
  ) {
    super(`${code}: ${message}`);
  }
}

/** An error that travels: a code plus a message, printed as `CODE: message`. */
export class ProtocolError extends CodedError<ErrorCode> {
  override readonly name = 'ProtocolError';

  /** The wire form, without the code repeated in the message. */
  toWire(): WireError {
    return { code: this.code, message: this.message.slice(this.code.length + 2) };
  }
}

export interface WireError {
  code: ErrorCode;
  message: string;
}

/** Turns anything thrown into a wire error; unknown failures become E_INTERNAL. */
export function toWireError(error: unknown): WireError {
  if (error instanceof ProtocolError) return error.toWire();
  const message = error instanceof Error ? error.message : String(error);
  return { code: ErrorCode.Internal, message };
}
