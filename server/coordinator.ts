/**
 * The coordinator: a socket.io server (WebSocket transport only) that authenticates
 * participants by token, decodes and validates every envelope, and hands it to its session.
 * It never trains and never imports tfjs; a bad message is answered with an error code and
 * changes nothing.
 */
import { createServer, type Server as HttpServer } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { Server, type Socket } from 'socket.io';
import {
  clientMessages,
  decodeMessage,
  DEFAULT_MAX_BYTES,
  encodeEnvelope,
  ErrorCode,
  PROTOCOL_VERSION,
  ProtocolError,
  readContribution,
  refusal,
  toWireError,
  type ClientMessage,
  type ClientToServerEvents,
  type ServerToClientEvents,
} from '../protocol/index.js';
import { Admission, authMiddleware, checkAdmission, closeWith, DEFAULT_ADMISSION, type AdmissionLimits, type Gate } from './admission.js';
import { Journal } from './journal.js';
import { checkOperators, OperatorDesk, type OperatorAccount } from './operator.js';
import { TokenBucket } from './rate-limit.js';
import { Session } from './session.js';
import type { SecureEvent } from './secure-rounds.js';
import type { SessionConfig } from './session-config.js';
import { entryTokenHash, hashToken, withTokenHashes } from './tokens.js';
import { serveWeb, type WebOptions } from './web.js';
import { encodeEnsembleReply, encodeOutgoing, readPush, type PeerLink } from './wire.js';

const SECURE_EVENTS: readonly SecureEvent[] = ['secure-keys', 'secure-shares', 'secure-upload', 'secure-reveal'];

export interface CoordinatorOptions {
  /** Interface to listen on; 127.0.0.1 unless a deployment says otherwise. */
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** Largest envelope any session may exchange; socket.io's own limit is set just above it. */
  maxMessageBytes?: number;
  /** PEM certificate and key: the coordinator then speaks wss:// (HTTPS) only. */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /**
   * Path of the round journal (SQLite). Sessions and rounds are recorded there; a coordinator
   * started on a journal resumes every session that had not ended, from its last completed round.
   */
  journal?: string;
  /** Per-connection limit on messages (token bucket); 'off' for none. Default: 100 per second, bursts of 200. */
  rateLimit?: RateLimit | 'off';
  log?: (line: string) => void;
  /** Observers and admins, on the /operator namespace (server/operator.ts). */
  operators?: OperatorAccount[];
  /** Serve the browser participant and dashboard pages (server/web.ts). */
  web?: WebOptions;
  /**
   * Limits on connections before and beyond authentication (server/admission.ts): the most open
   * at once, how long and how many bytes one may take to authenticate. Defaults: DEFAULT_ADMISSION.
   */
  admission?: Partial<AdmissionLimits>;
}

export interface RateLimit {
  messagesPerSecond: number;
  burst: number;
}

/** Tokens of ended sessions remembered, to tell a returning participant its session is over. */
const ENDED_KEPT = 100_000;

export const DEFAULT_RATE_LIMIT: RateLimit = { messagesPerSecond: 100, burst: 200 };

interface Identity {
  session: Session;
  participant: string;
}

type CoordinatorSocket = Socket<ClientToServerEvents, ServerToClientEvents, Record<string, never>, { identity: Identity }>;


export class Coordinator {
  /** Where participants connect, known once listening. */
  url = '';
  private readonly io: Server<ClientToServerEvents, ServerToClientEvents, Record<string, never>, { identity: Identity }>;
  private readonly http: HttpServer;
  private readonly sessions = new Map<string, Session>();
  /** sha256(token) → identity: tokens themselves are not kept. */
  private readonly identities = new Map<string, Identity>();
  /**
   * sha256(token) → how its session ended, for participants that were away at the end: they are
   * told so at the handshake instead of being refused as strangers. The oldest are forgotten
   * first past ENDED_KEPT tokens.
   */
  private readonly endings = new Map<string, string>();
  private readonly maxMessageBytes: number;
  private readonly log: (line: string) => void;
  private readonly journal: Journal | undefined;
  private readonly rateLimit: RateLimit | undefined;
  private readonly operators: OperatorDesk;
  private readonly admission: Admission;
  /** "session/participant" → its connection: a newer connection of the same participant replaces it. */
  private readonly connections = new Map<string, CoordinatorSocket>();

  private constructor(http: HttpServer, options: CoordinatorOptions, journal: Journal | undefined) {
    this.http = http;
    this.maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_BYTES;
    this.log = options.log ?? (() => {});
    this.journal = journal;
    this.rateLimit = options.rateLimit === 'off' ? undefined : (options.rateLimit ?? DEFAULT_RATE_LIMIT);
    const maxMessageBytes = this.maxMessageBytes;
    this.admission = new Admission({ ...DEFAULT_ADMISSION, ...options.admission }, this.log);
    this.io = new Server(http, {
      transports: ['websocket'],
      // socket.io drops a connection silently past this size; our own check (codec) answers
      // with E_TOO_LARGE first, so give socket.io some headroom above the envelope limit. Before
      // authenticating, a connection may send far less (the admission's unauthenticatedBytes).
      maxHttpBufferSize: maxMessageBytes + 64 * 1024,
      serveClient: false,
      ...this.admission.serverOptions(),
    });
    this.admission.install(http, this.io as unknown as Server);
    const participants: Gate<Identity> = {
      who: 'participant',
      versionAdvice: 'Run matching codistill versions.',
      tokenAdvice: 'pass the participant token the session operator issued',
      resolve: (token) => this.authenticate(token),
    };
    this.io.use(authMiddleware(participants, (socket, identity) => (socket.data.identity = identity), this.admission, this.log));
    this.io.on('connection', (socket) => {
      this.replaceOlder(socket);
      this.attach(socket);
    });
    this.operators = new OperatorDesk(this.io as unknown as Server, options.operators ?? [], this.log, this.admission);
  }

  static async start(options: CoordinatorOptions = {}): Promise<Coordinator> {
    const rate = options.rateLimit;
    if (rate !== undefined && rate !== 'off' && !(rate.messagesPerSecond > 0 && rate.burst >= 1)) {
      throw new Error(`rateLimit needs messagesPerSecond > 0 and burst ≥ 1 (got ${rate.messagesPerSecond} and ${rate.burst})`);
    }
    checkOperators(options.operators ?? []);
    checkAdmission({ ...DEFAULT_ADMISSION, ...options.admission });
    // Opened before listening: a journal that cannot be read stops the start, before anyone connects.
    const journal = options.journal === undefined ? undefined : new Journal(options.journal);
    const http = options.tls === undefined ? createServer() : createTlsServer({ cert: options.tls.cert, key: options.tls.key });
    const coordinator = new Coordinator(http, options, journal);
    const host = options.host ?? '127.0.0.1';
    try {
      // Resumed before listening: a participant reconnecting at once must find its session.
      coordinator.resumeJournalled();
      if (options.web !== undefined) serveWeb(http, options.web, (token) => coordinator.identities.get(hashToken(token))?.session.config.id);
      await new Promise<void>((resolve, reject) => {
        http.once('error', reject);
        http.listen(options.port ?? 0, host, () => resolve());
      });
    } catch (error) {
      journal?.close();
      throw error;
    }
    const { port } = http.address() as AddressInfo;
    coordinator.url = `${options.tls === undefined ? 'http' : 'https'}://${host}:${port}`;
    return coordinator;
  }

  /** The session by that name, if it is running here (created, or resumed from the journal). */
  session(id: string): Session | undefined {
    return this.sessions.get(id);
  }

  createSession(config: SessionConfig): Session {
    if (this.sessions.has(config.id)) throw new Error(`a session named "${config.id}" already exists`);
    if (config.maxMessageBytes > this.maxMessageBytes) {
      throw new Error(`session "${config.id}" allows ${config.maxMessageBytes}-byte messages; this coordinator takes at most ${this.maxMessageBytes}`);
    }
    for (const p of config.participants) {
      if (this.identities.has(entryTokenHash(p)) || this.operators.holds(entryTokenHash(p))) throw new Error(`participant ${p.id}'s token is already in use`);
    }
    const session = new Session(config, { journal: this.journal?.forSession(config.id) });
    this.journal?.createSession(withTokenHashes(config));
    return this.register(session);
  }

  private register(session: Session): Session {
    const { config } = session;
    this.sessions.set(config.id, session);
    for (const p of config.participants) this.identities.set(entryTokenHash(p), { session, participant: p.id });
    session.once('end', ({ reason }) => {
      for (const p of config.participants) {
        const key = entryTokenHash(p);
        this.identities.delete(key);
        this.endings.set(key, `session ${config.id} has ended: ${reason}`);
      }
      for (const key of this.endings.keys()) {
        if (this.endings.size <= ENDED_KEPT) break;
        this.endings.delete(key);
      }
      this.sessions.delete(config.id);
    });
    this.operators.track(session);
    return session;
  }

  /** Sessions the journal holds that had not ended: they go on from their last completed round as participants rejoin. */
  private resumeJournalled(): void {
    if (this.journal === undefined) return;
    for (const stored of this.journal.unfinished()) {
      const { config, history } = stored;
      const writer = this.journal.forSession(config.id);
      const session = new Session(config, { history, journal: writer });
      if (session.strategy.mode === 'async') {
        // Asynchronous participants keep their own step counts and shard stores; none of it is journalled.
        writer.ended('the coordinator restarted: asynchronous sessions do not resume; start a new session');
        this.log(`session ${config.id} (asynchronous) not resumed: ended in the journal`);
        continue;
      }
      const shared = config.participants.find((p) => this.operators.holds(entryTokenHash(p)));
      if (shared !== undefined) {
        throw new Error(`the journal's session ${config.id}: participant ${shared.id}'s token is also an operator's; give the operator another token`);
      }
      this.register(session);
      this.log(`session ${config.id} resumed from the journal after round ${history.length} of ${config.rounds}`);
    }
  }

  /**
   * Stops listening. With a journal, running sessions are only suspended: a coordinator started
   * again on the same journal resumes them. Without one they end, and participants are told why.
   */
  async close(): Promise<void> {
    for (const session of [...this.sessions.values()]) {
      if (this.journal === undefined) session.end('the coordinator is shutting down');
      else session.suspend();
    }
    this.operators.close();
    await new Promise<void>((resolve) => this.io.close(() => resolve()));
    this.http.closeAllConnections();
    this.journal?.close();
  }

  /** The participant a token belongs to (the handshake's shape and version are checked by authMiddleware). */
  private authenticate(token: string): Identity {
    const identity = this.identities.get(hashToken(token));
    const ending = this.endings.get(hashToken(token));
    if (identity === undefined && ending !== undefined) throw new ProtocolError(ErrorCode.Session, ending);
    if (identity === undefined) throw new ProtocolError(ErrorCode.Auth, 'the token is not valid for any running session');
    return identity;
  }

  /**
   * One connection per participant: a newer one replaces the older, which is told so (E_REPLACED)
   * and disconnected — by the server, so its socket.io client does not reconnect by itself and
   * take the place back. Its departure is the session's usual leave; the newer connection then
   * joins as a reconnecting participant does.
   */
  private replaceOlder(socket: CoordinatorSocket): void {
    const { session, participant } = socket.data.identity;
    const key = `${session.config.id}/${participant}`;
    const older = this.connections.get(key);
    this.connections.set(key, socket);
    socket.once('disconnect', () => {
      if (this.connections.get(key) === socket) this.connections.delete(key);
    });
    if (older === undefined || older.disconnected) return;
    this.log(`${participant} of ${session.config.id} connected again: the older connection is closed`);
    closeWith(older as unknown as Socket, {
      code: ErrorCode.Replaced,
      message: `${participant} connected again from another connection, which takes its place in session ${session.config.id}; this one is closed`,
    });
  }

  private attach(socket: CoordinatorSocket): void {
    const { session, participant } = socket.data.identity;
    const limits = { maxBytes: session.config.maxMessageBytes };
    const ok = encodeEnvelope({ v: PROTOCOL_VERSION, ok: true });
    let joined = false;
    /** This connection's link to the session, replaced by the next connection if the participant reconnects. */
    let link: PeerLink | undefined;

    // Every handler answers through its ack, with either success or an error code; nothing
    // thrown by a message escapes to crash the process.
    const answer = (ack: unknown, work: () => Uint8Array): void => {
      let reply: Uint8Array;
      try {
        reply = work();
      } catch (error) {
        const wire = toWireError(error);
        if (wire.code === ErrorCode.Internal) this.log(`internal error handling a message from ${participant}: ${wire.message}`);
        reply = refusal(wire);
      }
      if (typeof ack === 'function') ack(reply);
    };
    const rate = this.rateLimit;
    const bucket = rate === undefined ? undefined : new TokenBucket(rate.messagesPerSecond, rate.burst);
    const requireWithinRate = (event: string) => {
      if (bucket !== undefined && !bucket.take()) {
        throw new ProtocolError(
          ErrorCode.RateLimited,
          `${participant} sent more than ${rate!.messagesPerSecond} messages a second (bursts of ${rate!.burst}); ${event} refused — slow down and retry`,
        );
      }
    };
    const requireJoined = () => {
      if (!joined) throw new ProtocolError(ErrorCode.NotJoined, `${participant} must join session ${session.config.id} before sending anything else`);
    };
    const requireSelf = (claimed: string) => {
      if (claimed !== participant) throw new ProtocolError(ErrorCode.Auth, `this token belongs to ${participant}, not ${claimed}`);
    };
    const requireSession = (name: string) => {
      if (name !== session.config.id) throw new ProtocolError(ErrorCode.Session, `this token belongs to session ${session.config.id}, not ${name}`);
    };

    /**
     * Listens for one request event. socket.io passes however many arguments the peer sent, then
     * the ack if it asked for one: the ack is taken from the end, so that a peer sending no
     * envelope or several still gets its refusal (instead of an ack never called, or a join run
     * without one), and only an event with exactly one envelope is read.
     */
    const listen = (event: keyof ClientToServerEvents, work: (bytes: unknown) => Uint8Array) =>
      // The event maps type every request alike, (envelope, ack); a peer need not keep to them.
      (socket.on.bind(socket) as (event: string, listener: (...args: unknown[]) => void) => void)(event, (...args) => {
        const ack = typeof args.at(-1) === 'function' ? args.pop() : undefined;
        answer(ack, () => {
          requireWithinRate(event);
          if (args.length !== 1) {
            throw new ProtocolError(ErrorCode.Malformed, `a ${event} event carries exactly one binary envelope; got ${args.length} arguments`);
          }
          return work(args[0]);
        });
      });
    // An event the protocol does not have gets a refusal too, if the peer waits for an answer.
    socket.onAny((event: unknown, ...args: unknown[]) => {
      if (typeof event === 'string' && Object.hasOwn(clientMessages, event)) return;
      const ack = args.at(-1);
      const name = typeof event === 'string' ? JSON.stringify(event.length > 40 ? `${event.slice(0, 40)}…` : event) : String(event);
      answer(ack, () => {
        requireWithinRate(`unknown event ${name}`);
        throw new ProtocolError(ErrorCode.Schema, `unknown event ${name}; a participant sends ${Object.keys(clientMessages).join(', ')}`);
      });
    });

    listen('join', (bytes) => {
      const message = decodeMessage(clientMessages.join, bytes, limits);
      requireSession(message.session);
      const ownLink: PeerLink = {
        send: (event, outgoing) => {
          const envelope = encodeOutgoing(event, outgoing, limits.maxBytes, session.config.targetDtype, session.config.targetTopK);
          (socket.emit as (event: string, envelope: Uint8Array) => boolean)(event, envelope);
          return envelope.byteLength;
        },
      };
      link = ownLink;
      const reply = session.join(participant, ownLink, message.role, message.reference, message.tokenizer);
      joined = true;
      this.log(`${participant} joined ${session.config.id}`);
      return encodeEnvelope(reply);
    });
    /** A request of a joined participant about itself in its own session: checked, then handled. */
    const request = <E extends 'upload' | 'report' | 'push' | 'pull' | SecureEvent>(
      event: E,
      handle: (message: ClientMessage<E>, bytes: number) => Uint8Array,
    ) =>
      listen(event, (bytes) => {
        requireJoined();
        const message = decodeMessage(clientMessages[event], bytes, limits) as ClientMessage<E>;
        requireSession(message.session);
        requireSelf(message.participant);
        return handle(message, byteLength(bytes));
      });
    // The codec is the coordinator's: the session is asked what an upload must hold, is handed
    // the decoded contribution, and answers in decoded values that are encoded here.
    request('upload', (message, size) => {
      const expectation = session.expectUpload(participant, message.round);
      if (expectation !== null) session.upload(participant, message.round, readContribution(participant, message, expectation), size);
      return ok;
    });
    request('report', (message, size) => (session.report(participant, message, size), ok));
    request('push', (message, size) => {
      const contribution = readPush(participant, message, session.expectPush(participant, message.shard));
      session.push(participant, message.shard, message.step, contribution, size);
      return ok;
    });
    request('pull', (message, size) => {
      const reply = encodeEnsembleReply(session.pull(participant, message.shard, size), limits.maxBytes);
      session.replied(reply.byteLength);
      return reply;
    });
    // Secure aggregation's steps (server/secure-rounds.ts): checked and kept by the session's mode.
    for (const event of SECURE_EVENTS) request(event, (message, size) => (session.secure(participant, event, message, size), ok));
    socket.on('disconnect', (reason) => {
      if (!joined) return;
      this.log(`${participant} left ${session.config.id}: ${reason}`);
      session.leave(participant, link);
    });
  }
}

function byteLength(bytes: unknown): number {
  return bytes instanceof Uint8Array ? bytes.byteLength : 0;
}
