/**
 * The operator desk: observers and admins on the coordinator's `/operator` namespace.
 *
 * Operators are configured on the coordinator, not in a session, each with its own token
 * (stored as sha256, like participant tokens). The namespace has its own authentication over
 * its own token table, so a participant token opens nothing here and an operator token opens
 * nothing on the participants' namespace: a participant cannot act as an admin, and an admin's
 * token cannot upload predictions. Observers receive every session's status as it changes;
 * admins may also start, pause, resume and stop sessions.
 */
import type { Namespace, Server, Socket } from 'socket.io';
import {
  encodeEnvelope,
  encodeMessage,
  decodeMessage,
  ErrorCode,
  PROTOCOL_VERSION,
  ProtocolError,
  refusal,
  toWireError,
} from '../protocol/index.js';
import {
  OPERATOR_NAMESPACE,
  OPERATOR_ROLES,
  operatorClientMessages,
  operatorServerMessages,
  type OperatorRole,
  type OperatorToServerEvents,
  type ServerToOperatorEvents,
  type SessionAction,
  type SessionStatus,
} from '../protocol/operator.js';
import { authMiddleware, type Admission, type Gate } from './admission.js';
import type { Session } from './session.js';
import { hashToken } from './tokens.js';

export interface OperatorAccount {
  id: string;
  /** At least 16 characters; never shared with a participant or another operator. */
  token: string;
  role: OperatorRole;
}

interface Operator {
  id: string;
  role: OperatorRole;
}

type OperatorSocket = Socket<OperatorToServerEvents, ServerToOperatorEvents, Record<string, never>, { operator: Operator }>;

/** How often connected operators' views are refreshed when something changed. */
const REFRESH_MS = 250;
/** Ended sessions stay on the dashboard; only the latest ones, so a long-lived coordinator does not grow. */
const KEEP_ENDED = 50;


/** Refuses a list of operators with a bad id, role or token, or two sharing an id or a token. */
export function checkOperators(accounts: readonly OperatorAccount[]): void {
  const problems: string[] = [];
  const ids = new Set<string>();
  const tokens = new Set<string>();
  for (const a of accounts) {
    if (!/^[A-Za-z0-9._:-]{1,128}$/.test(a.id)) problems.push(`operator id ${JSON.stringify(a.id)}: letters, digits and . _ : - only`);
    if (ids.has(a.id)) problems.push(`operator id ${a.id} is listed twice`);
    ids.add(a.id);
    if (!(OPERATOR_ROLES as readonly string[]).includes(a.role)) problems.push(`operator ${a.id}: role must be one of ${OPERATOR_ROLES.join(', ')} (got ${JSON.stringify(a.role)})`);
    if (typeof a.token !== 'string' || a.token.length < 16) problems.push(`operator ${a.id}: tokens must have at least 16 characters`);
    else if (tokens.has(a.token)) problems.push(`operator ${a.id}: every operator needs its own token`);
    else tokens.add(a.token);
  }
  if (problems.length > 0) throw new Error(`invalid operators: ${problems.join('; ')}`);
}

export class OperatorDesk {
  private readonly accounts = new Map<string, Operator>();
  private readonly namespace: Namespace<OperatorToServerEvents, ServerToOperatorEvents, Record<string, never>, { operator: Operator }>;
  /** Every session created on the coordinator, in creation order; ended ones keep their end reason. */
  private readonly sessions = new Map<string, { session: Session; endReason?: string }>();
  private timer: NodeJS.Timeout | undefined;
  /** The sessions' status last sent, as JSON: a refresh sends only when it differs. */
  private lastSent = '';
  private readonly log: (line: string) => void;

  /** `accounts` as checked by checkOperators; `admission` is the coordinator's, which counts an operator's connection as any other. */
  constructor(io: Server, accounts: readonly OperatorAccount[], log: (line: string) => void, admission?: Admission) {
    this.log = log;
    checkOperators(accounts);
    for (const a of accounts) this.accounts.set(hashToken(a.token), { id: a.id, role: a.role });

    this.namespace = io.of(OPERATOR_NAMESPACE) as unknown as typeof this.namespace;
    const operators: Gate<Operator> = {
      who: 'operator',
      versionAdvice: 'Reload the dashboard from this coordinator.',
      tokenAdvice: 'pass the observer or admin token the coordinator operator issued',
      resolve: (token) => this.authenticate(token),
    };
    (this.namespace as unknown as Namespace).use(authMiddleware(operators, (socket, operator) => ((socket.data as { operator: Operator }).operator = operator), admission, log));
    this.namespace.on('connection', (socket) => this.attach(socket));
  }

  /** Whether a token, by its sha256 (hex), is an operator's: a participant may not hold one. */
  holds(tokenHash: string): boolean {
    return this.accounts.has(tokenHash);
  }

  /** Shows a session to operators from now on, and keeps it (with its end reason) after it ends. */
  track(session: Session): void {
    const entry: { session: Session; endReason?: string } = { session };
    // A new session under the name of an ended one replaces it on the dashboard.
    this.sessions.delete(session.config.id);
    this.sessions.set(session.config.id, entry);
    session.once('end', ({ reason }) => {
      entry.endReason = reason;
      const ended = [...this.sessions.values()].filter((e) => e.session.ended);
      for (const old of ended.slice(0, Math.max(0, ended.length - KEEP_ENDED))) this.sessions.delete(old.session.config.id);
      this.refresh();
    });
    this.refresh();
  }

  close(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** The operator a token belongs to (the handshake's shape and version are checked by authMiddleware). */
  private authenticate(token: string): Operator {
    const operator = this.accounts.get(hashToken(token));
    if (operator === undefined) {
      throw new ProtocolError(ErrorCode.Auth, 'the token is not an operator token of this coordinator (participant tokens open only the participants\' namespace)');
    }
    return operator;
  }

  private attach(socket: OperatorSocket): void {
    const { operator } = socket.data;
    this.log(`operator ${operator.id} (${operator.role}) connected`);
    socket.emit('status', this.statusFor(operator, this.statuses()));
    // Refresh only while someone is watching: a coordinator without dashboards pays nothing.
    this.timer ??= setInterval(() => this.refresh(), REFRESH_MS);
    socket.on('disconnect', () => {
      if (this.namespace.sockets.size === 0) this.close();
    });

    // As on the participants' namespace, the ack is taken from the end of whatever the peer sent,
    // so that a malformed request still gets its refusal.
    (socket.on.bind(socket) as (event: string, listener: (...args: unknown[]) => void) => void)('control', (...args) => {
      const ack = typeof args.at(-1) === 'function' ? (args.pop() as (reply: Uint8Array) => void) : undefined;
      let reply: Uint8Array;
      try {
        if (args.length !== 1) throw new ProtocolError(ErrorCode.Malformed, `a control event carries exactly one binary envelope; got ${args.length} arguments`);
        const message = decodeMessage(operatorClientMessages.control, args[0]);
        this.control(operator, message.session, message.action);
        reply = encodeEnvelope({ v: PROTOCOL_VERSION, ok: true });
      } catch (error) {
        const wire = toWireError(error);
        if (wire.code === ErrorCode.Internal) this.log(`internal error handling ${operator.id}'s control request: ${wire.message}`);
        reply = refusal(wire);
      }
      ack?.(reply);
    });
    socket.onAny((event: unknown, ...args: unknown[]) => {
      if (event === 'control') return;
      const ack = args.at(-1);
      if (typeof ack === 'function') ack(refusal({ code: ErrorCode.Schema, message: 'unknown event; an operator sends control' }));
    });
  }

  private control(operator: Operator, name: string, action: SessionAction): void {
    if (operator.role !== 'admin') {
      throw new ProtocolError(ErrorCode.Forbidden, `${operator.id} is an ${operator.role}: observers watch sessions; to ${action} one takes an admin token`);
    }
    const entry = this.sessions.get(name);
    if (entry === undefined) throw new ProtocolError(ErrorCode.Session, `no session named ${name} on this coordinator`);
    const { session } = entry;
    switch (action) {
      case 'start':
        session.start();
        break;
      case 'pause':
        session.pause();
        break;
      case 'resume':
        session.resume();
        break;
      case 'stop':
        session.stop(`admin ${operator.id}`);
        break;
    }
    this.log(`admin ${operator.id}: ${action} session ${name}`);
    this.refresh();
  }

  private statuses(): SessionStatus[] {
    return [...this.sessions.values()].map((e) => e.session.status(e.endReason));
  }

  private statusFor(operator: Operator, sessions: SessionStatus[]): Uint8Array {
    return encodeMessage(operatorServerMessages.status, { v: PROTOCOL_VERSION, operator, sessions, at: Date.now() });
  }

  /** Sends every connected operator the sessions' status, if it changed since the last time. */
  private refresh(): void {
    if (this.namespace.sockets.size === 0) return;
    const sessions = this.statuses();
    const json = JSON.stringify(sessions);
    if (json === this.lastSent) return;
    this.lastSent = json;
    for (const socket of this.namespace.sockets.values()) socket.emit('status', this.statusFor(socket.data.operator, sessions));
  }
}
