/**
 * Who gets in, and what a connection may cost before it has: the coordinator's front door, shared
 * by the participants' namespace and the operators' (/operator).
 *
 * - One authentication function for both namespaces (`authMiddleware`): the handshake's `auth`
 *   must be a map `{ v, token }` with this protocol version and a token the namespace knows;
 *   anything else — an array, a string, text that is not JSON, a version of any type — is refused
 *   with an error code and a sentence about the input, never left unanswered.
 * - Before a connection has authenticated it may send `unauthenticatedBytes` bytes in all (the
 *   WebSocket handshake that follows the upgrade is a few hundred): past that it is cut, so an unauthenticated peer cannot make the
 *   WebSocket layer buffer a large frame (socket.io's maxHttpBufferSize, which authenticated
 *   participants need for their uploads, is per message and applies to everyone).
 * - A connection that has not authenticated within `unauthenticatedTimeoutMs` is closed
 *   (socket.io's connectTimeout), and past `maxConnections` open connections a new one is refused
 *   at the WebSocket upgrade with an HTTP 400 whose body is `E_CAPACITY: …`.
 * - A participant that connects again while its older connection is open replaces it: a
 *   reconnecting site must win. The older one is told why (`closing` event, E_REPLACED) and
 *   disconnected, so that it does not go on believing it takes part.
 */
import type { IncomingMessage, Server as HttpServer } from 'node:http';
import { createRequire } from 'node:module';
import type { Duplex } from 'node:stream';
import type { Server, Socket } from 'socket.io';
import type { Decoder as ParserDecoder } from 'socket.io-parser';
import { ErrorCode, PROTOCOL_VERSION, ProtocolError, refusal, toWireError, type ServerToClientEvents, type WireError } from '../protocol/index.js';

export interface AdmissionLimits {
  /** Open connections (participants, operators and those not yet authenticated) beyond which a new one is refused. */
  maxConnections: number;
  /** A connection that has not authenticated this long after opening is closed. */
  unauthenticatedTimeoutMs: number;
  /** Bytes a connection may send, once its WebSocket is open, before it has authenticated; it is cut past them. */
  unauthenticatedBytes: number;
}

export const DEFAULT_ADMISSION: AdmissionLimits = {
  maxConnections: 10_000,
  unauthenticatedTimeoutMs: 10_000,
  unauthenticatedBytes: 64 * 1024,
};

/** Refuses limits that would let nothing in, or anything. */
export function checkAdmission(limits: AdmissionLimits): AdmissionLimits {
  const { maxConnections, unauthenticatedTimeoutMs, unauthenticatedBytes } = limits;
  const problems: string[] = [];
  if (!(Number.isInteger(maxConnections) && maxConnections >= 1)) problems.push(`maxConnections must be an integer ≥ 1 (got ${maxConnections})`);
  if (!(Number.isFinite(unauthenticatedTimeoutMs) && unauthenticatedTimeoutMs > 0)) problems.push(`unauthenticatedTimeoutMs must be a number > 0 (got ${unauthenticatedTimeoutMs})`);
  if (!(Number.isInteger(unauthenticatedBytes) && unauthenticatedBytes >= 1024)) problems.push(`unauthenticatedBytes must be an integer ≥ 1024: a handshake needs a few hundred (got ${unauthenticatedBytes})`);
  if (problems.length > 0) throw new Error(`invalid admission limits: ${problems.join('; ')}`);
  return limits;
}

/** The event a coordinator sends a connection it is about to close, with the refusal envelope saying why. */
export const CLOSING_EVENT = 'closing';

/** Tells a connection why it is closed (a refusal envelope on CLOSING_EVENT), then disconnects it. */
export function closeWith(socket: Socket, error: WireError): void {
  (socket.emit as (event: string, envelope: Uint8Array) => boolean)(CLOSING_EVENT satisfies keyof ServerToClientEvents, refusal(error));
  socket.disconnect(true);
}

// ---- the handshake ----------------------------------------------------------------------------

/** Tokens are issued by operators: 16 characters or more, far fewer than this. */
const MAX_TOKEN_CHARS = 1024;

/** What the socket.io handshake carried when it was not a map (see AdmissionDecoder). */
class MalformedAuth {
  constructor(readonly got: string) {}
}

/** One namespace's side of authentication: whom it admits, and what it tells those it does not. */
export interface Gate<T> {
  /** Who connects here, in messages: "participant", "operator". */
  who: string;
  /** What to do about a protocol version mismatch. */
  versionAdvice: string;
  /** Which token to pass, when none was. */
  tokenAdvice: string;
  /** The holder of a token, or a ProtocolError naming why it is refused. */
  resolve(token: string): T;
}

/** Reads a handshake's `auth` (whatever the peer sent) and returns the token's holder; throws a ProtocolError otherwise. */
export function authenticate<T>(gate: Gate<T>, auth: unknown): T {
  if (auth instanceof MalformedAuth || !isMap(auth)) {
    const got = auth instanceof MalformedAuth ? auth.got : describeValue(auth);
    throw new ProtocolError(ErrorCode.Auth, `the handshake's auth must be a map { v, token }; the ${gate.who} sent ${got}`);
  }
  if (auth.v !== PROTOCOL_VERSION) {
    throw new ProtocolError(
      ErrorCode.Version,
      `this coordinator speaks protocol version ${PROTOCOL_VERSION}; the ${gate.who} sent ${describeValue(auth.v)}. ${gate.versionAdvice}`,
    );
  }
  if (typeof auth.token !== 'string' || auth.token.length === 0) {
    throw new ProtocolError(ErrorCode.Auth, `no token given: ${gate.tokenAdvice}`);
  }
  if (auth.token.length > MAX_TOKEN_CHARS) {
    throw new ProtocolError(ErrorCode.Auth, `the token has ${auth.token.length} characters; tokens have at most ${MAX_TOKEN_CHARS}`);
  }
  return gate.resolve(auth.token);
}

/**
 * The one authentication middleware, for any namespace: `authenticate`, then `admit` stores the
 * holder on the socket; a refusal travels as the connect_error's `data` ({ code, message }) and
 * its message (`CODE: message`). Anything but a ProtocolError is logged and refused as E_INTERNAL.
 */
export function authMiddleware<T>(
  gate: Gate<T>,
  admit: (socket: Socket, holder: T) => void,
  admission: Admission | undefined,
  log: (line: string) => void,
): (socket: Socket, next: (error?: Error) => void) => void {
  return (socket, next) => {
    let holder: T;
    try {
      holder = authenticate(gate, socket.handshake.auth);
    } catch (error) {
      const wire = toWireError(error);
      if (wire.code === ErrorCode.Internal) log(`internal error authenticating a ${gate.who}: ${wire.message}`);
      next(Object.assign(new Error(`${wire.code}: ${wire.message}`), { data: wire }));
      return;
    }
    admit(socket, holder);
    admission?.authenticated(socket);
    socket.on('error', (error: unknown) => closeUndecodable(socket, error));
    next();
  };
}

/**
 * What socket.io-parser says of a packet it cannot decode: fixed phrases about the packet, kept;
 * anything else is not quoted.
 */
const PARSER_REASONS = [/^invalid payload$/, /^unknown packet type \d+$/, /^Illegal attachments$/, /^too many attachments$/, /^got binary data when not reconstructing a packet$/, /^got plaintext data when reconstructing a packet$/];

/**
 * socket.io closes a connection whose packet it cannot decode (an event whose payload is not an
 * array, an unknown packet type, a binary frame out of place). This tells the peer why first.
 */
function closeUndecodable(socket: Socket, error: unknown): void {
  // A peer's own event named "error" reaches this listener too, with what it sent (never an Error
  // instance: nothing on the wire decodes to one); the onAny handler answers that as an unknown event.
  if (!(error instanceof Error) || socket.disconnected) return;
  const text = error instanceof Error ? error.message : '';
  const reason = PARSER_REASONS.some((r) => r.test(text)) ? text : 'malformed';
  closeWith(socket, {
    code: ErrorCode.Malformed,
    message: `the connection sent a socket.io packet that cannot be decoded (${reason}); it is closed. Send each event as its name, one binary envelope and an ack`,
  });
}

function isMap(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === null || proto === Object.prototype;
}

/** A short description of an untrusted value: never its whole text, never a recursive walk of it. */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint' || value === null || value === undefined) return String(value);
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Uint8Array) return 'binary';
  return typeof value === 'object' ? 'a map' : `a ${typeof value}`;
}

// ---- the parser: a handshake socket.io would drop gets its refusal ---------------------------

/** The socket.io-parser socket.io itself loads (not whichever copy this package would resolve). */
const socketIoParser = createRequire(createRequire(import.meta.url).resolve('socket.io'))('socket.io-parser') as typeof import('socket.io-parser');

/** socket.io-parser's CONNECT packet type. */
const CONNECT = 0;

/**
 * socket.io-parser refuses a CONNECT packet whose payload is not a JSON object by throwing, and
 * socket.io then closes the connection without a word. This decoder hands such a packet on with a
 * MalformedAuth in place of the payload, so that authenticate refuses it with E_AUTH and a
 * sentence. Everything else decodes (and fails) exactly as socket.io-parser's Decoder does.
 */
class AdmissionDecoder extends socketIoParser.Decoder {
  override add(obj: unknown): void {
    try {
      super.add(obj);
    } catch (error) {
      if (typeof obj !== 'string' || obj.charAt(0) !== String(CONNECT)) throw error;
      let nsp = '/';
      let rest = obj.slice(1);
      if (rest.startsWith('/')) {
        const comma = rest.indexOf(',');
        nsp = comma < 0 ? rest : rest.slice(0, comma);
        rest = comma < 0 ? '' : rest.slice(comma + 1);
      }
      (this as unknown as { emitReserved(event: 'decoded', packet: unknown): void }).emitReserved('decoded', {
        type: CONNECT,
        nsp,
        data: new MalformedAuth(describeJsonText(rest)),
      });
    }
  }
}

function describeJsonText(text: string): string {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return `${text.length} characters that are not JSON`;
  }
  return describeValue(value);
}

/** socket.io's parser with the AdmissionDecoder: the `parser` option of the Server. */
export const admissionParser = { ...socketIoParser, Decoder: AdmissionDecoder as unknown as typeof ParserDecoder };

// ---- limits on connections --------------------------------------------------------------------

/**
 * Counts a connection's bytes until it authenticates and cuts it past the limit; refuses new
 * connections past the cap. Installed on the coordinator's HTTP server and socket.io server.
 */
export class Admission {
  /** Raw sockets of connections not yet authenticated → their byte counter (removed on authentication). */
  private readonly counters = new WeakMap<Duplex, (chunk: Buffer) => void>();
  private readonly limits: AdmissionLimits;
  private readonly log: (line: string) => void;
  private io: Server | undefined;
  /** Connections cut for sending too much before authenticating, and refused at the cap (for tests and logs). */
  cut = 0;
  refused = 0;

  constructor(limits: AdmissionLimits, log: (line: string) => void) {
    this.limits = checkAdmission(limits);
    this.log = log;
  }

  /** The socket.io server options this admission needs. */
  serverOptions(): { connectTimeout: number; parser: typeof admissionParser; allowRequest: (req: IncomingMessage, fn: (err: string | null | undefined, success: boolean) => void) => void } {
    return {
      connectTimeout: this.limits.unauthenticatedTimeoutMs,
      parser: admissionParser,
      allowRequest: (req, fn) => this.allowRequest(req, fn),
    };
  }

  /** Starts counting every new connection's bytes; `io` is the server built with serverOptions(). */
  install(http: HttpServer, io: Server): void {
    this.io = io;
    // A hard ceiling on TCP connections (pages, upgrades in progress): twice the cap, so that the
    // cap's clear refusal comes first; past it Node closes a connection at once.
    http.maxConnections = 2 * this.limits.maxConnections;
    io.engine.on('connection', (connection: { request: IncomingMessage }) => this.watch(connection.request.socket));
  }

  private allowRequest(_req: IncomingMessage, fn: (err: string | null | undefined, success: boolean) => void): void {
    const open = this.io?.engine.clientsCount ?? 0;
    if (open >= this.limits.maxConnections) {
      this.refused++;
      fn(`${ErrorCode.Capacity}: this coordinator holds its limit of ${this.limits.maxConnections} connections; try again later`, false);
      return;
    }
    fn(null, true);
  }

  private watch(raw: Duplex): void {
    let received = 0;
    const count = (chunk: Buffer) => {
      received += chunk.byteLength;
      if (received <= this.limits.unauthenticatedBytes) return;
      raw.off('data', count);
      this.cut++;
      this.log(`a connection sent ${received} bytes without authenticating (limit ${this.limits.unauthenticatedBytes}): cut`);
      raw.destroy();
    };
    this.counters.set(raw, count);
    raw.on('data', count);
  }

  /** The connection behind `socket` has authenticated: its bytes are no longer counted. */
  authenticated(socket: Socket): void {
    const raw = socket.request.socket;
    const count = this.counters.get(raw);
    if (count === undefined) return;
    raw.off('data', count);
    this.counters.delete(raw);
  }
}
