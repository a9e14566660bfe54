/**
 * Operators over real sockets on 127.0.0.1: observer and admin tokens on the /operator
 * namespace, kept apart from participant tokens in both directions; the status operators see;
 * and the admin's session control (start, pause, resume, stop) taking effect on real rounds.
 */
import { io, type Socket } from 'socket.io-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  clientMessages,
  decodeMessage,
  encodeEnvelope,
  encodeMessage,
  packTensor,
  PROTOCOL_VERSION,
  readReply,
  replyMessages,
  serverMessages,
} from '../../protocol/index.js';
import {
  OPERATOR_NAMESPACE,
  operatorClientMessages,
  operatorServerMessages,
  type OperatorServerMessage,
  type OperatorToServerEvents,
  type ServerToOperatorEvents,
  type SessionAction,
} from '../../protocol/operator.js';
import { Coordinator } from '../../server/coordinator.js';
import { C, config, RawParticipant, REFERENCE, until } from './raw-participant.js';

const ADMIN = { id: 'alice', token: 'admin-token-0123456789abcdef', role: 'admin' as const };
const OBSERVER = { id: 'olga', token: 'observer-token-0123456789abc', role: 'observer' as const };

/** The session every test here opens (or a variant): participants a, b and c. */
const opsConfig = (overrides: Parameters<typeof config>[0] = {}) =>
  config({ id: 'ops', rounds: 3, minParticipants: 1, participants: ['a', 'b', 'c'].map((id) => ({ id, token: `participant-token-${id}-0123456789` })), ...overrides });

const uniform = () => new Float32Array(REFERENCE * C).fill(1 / C);

/** A participant of session ops driven by hand; `auto` makes it upload and report every round it is sent. */
class Participant extends RawParticipant {
  endReason: string | undefined;
  /** Refusals of its automatic uploads and reports: none expected. */
  readonly errors: unknown[] = [];

  /** `reportAfterMs` stands for training time: it keeps a round open long enough to act during it. */
  constructor(url: string, id: string, auto: boolean, reportAfterMs = 0) {
    super(url, id, `participant-token-${id}-0123456789`);
    if (auto) {
      this.socket.on('round', (b) => this.uploadUniform(decodeMessage(serverMessages.round, b).round).catch((error: unknown) => this.errors.push(error)));
      this.socket.on('target', (b) => {
        const { round } = decodeMessage(serverMessages.target, b);
        setTimeout(() => this.reportAccuracy(round).catch((error: unknown) => this.errors.push(error)), reportAfterMs);
      });
    }
    this.socket.on('end', (b) => (this.endReason = decodeMessage(serverMessages.end, b).reason));
  }

  async uploadUniform(round: number): Promise<void> {
    readReply(replyMessages.ack, await this.upload({ session: 'ops', round, values: packTensor(uniform(), [REFERENCE, C], 'float32') }));
  }

  /** A report whose accuracy, round/10, the operators' status shows. */
  async reportAccuracy(round: number): Promise<void> {
    const envelope = encodeMessage(clientMessages.report, { v: PROTOCOL_VERSION, session: 'ops', round, participant: this.id, metrics: { accuracy: round / 10 } });
    readReply(replyMessages.ack, await this.send('report', envelope));
  }
}

/** An operator client, as the dashboard is one: it keeps the latest status it was sent. */
class Operator {
  readonly socket: Socket<ServerToOperatorEvents, OperatorToServerEvents>;
  latest: OperatorServerMessage<'status'> | undefined;
  updates = 0;

  constructor(url: string, token: string) {
    this.socket = io(`${url}${OPERATOR_NAMESPACE}`, { transports: ['websocket'], auth: { v: PROTOCOL_VERSION, token }, reconnection: false, forceNew: true });
    this.socket.on('status', (b) => {
      this.latest = decodeMessage(operatorServerMessages.status, b);
      this.updates++;
    });
  }

  session(id = 'ops') {
    const s = this.latest?.sessions.find((x) => x.id === id);
    if (s === undefined) throw new Error(`operator has no status for session ${id}`);
    return s;
  }

  /** The action's outcome: 'ok', or the refusal's code and message. */
  async control(action: SessionAction, session = 'ops'): Promise<string> {
    const envelope = encodeMessage(operatorClientMessages.control, { v: PROTOCOL_VERSION, session, action });
    try {
      readReply(replyMessages.ack, await this.socket.timeout(5000).emitWithAck('control', envelope));
      return 'ok';
    } catch (error) {
      return (error as Error).message;
    }
  }
}

/** The refusal a connection gets, or 'connected'. */
function connectOutcome(socket: Socket): Promise<string> {
  return new Promise((resolve) => {
    socket.once('connect', () => resolve('connected'));
    socket.once('connect_error', (error) => resolve(error.message));
  });
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('operators: observers and admins on /operator', () => {
  let coordinator: Coordinator;
  const sockets: Socket[] = [];
  const participant = async (id: string, auto = true, reportAfterMs = 0) => {
    const p = new Participant(coordinator.url, id, auto, reportAfterMs);
    sockets.push(p.socket as unknown as Socket);
    await p.join('ops');
    return p;
  };
  const operator = async (token: string) => {
    const o = new Operator(coordinator.url, token);
    sockets.push(o.socket as unknown as Socket);
    await until(() => o.latest !== undefined, 'the first status');
    return o;
  };

  beforeEach(async () => {
    coordinator = await Coordinator.start({ operators: [ADMIN, OBSERVER] });
  });
  afterEach(async () => {
    for (const s of sockets.splice(0)) s.close();
    await coordinator.close();
  });

  it('refuses a participant token on the operator namespace, and an operator token on the participants\'', async () => {
    coordinator.createSession(opsConfig());
    const asOperator = io(`${coordinator.url}${OPERATOR_NAMESPACE}`, { transports: ['websocket'], auth: { v: PROTOCOL_VERSION, token: 'participant-token-a-0123456789' }, reconnection: false, forceNew: true });
    const asParticipant = io(coordinator.url, { transports: ['websocket'], auth: { v: PROTOCOL_VERSION, token: ADMIN.token }, reconnection: false, forceNew: true });
    const noToken = io(`${coordinator.url}${OPERATOR_NAMESPACE}`, { transports: ['websocket'], auth: { v: PROTOCOL_VERSION }, reconnection: false, forceNew: true });
    sockets.push(asOperator, asParticipant, noToken);
    expect(await connectOutcome(asOperator)).toMatch(/^E_AUTH: the token is not an operator token of this coordinator/);
    expect(await connectOutcome(asParticipant)).toBe('E_AUTH: the token is not valid for any running session');
    expect(await connectOutcome(noToken)).toMatch(/^E_AUTH: no token given/);
  });

  it('refuses configs that would let one token serve as both participant and operator', async () => {
    expect(() => coordinator.createSession(opsConfig({ participants: [{ id: 'a', token: ADMIN.token }], minParticipants: 1 }))).toThrow(/participant a's token is already in use/);
    await expect(Coordinator.start({ operators: [ADMIN, { ...OBSERVER, token: ADMIN.token }] })).rejects.toThrow(/every operator needs its own token/);
    await expect(Coordinator.start({ operators: [{ ...ADMIN, token: 'short' }] })).rejects.toThrow(/at least 16 characters/);
    await expect(Coordinator.start({ operators: [{ ...ADMIN, role: 'root' as 'admin' }] })).rejects.toThrow(/role must be one of observer, admin/);
  });

  it('shows observers the session as it runs, and refuses their admin actions with E_FORBIDDEN', async () => {
    const session = coordinator.createSession(opsConfig({ minToStart: 2, rounds: 2 }));
    const observer = await operator(OBSERVER.token);
    expect(observer.latest!.operator).toEqual({ id: 'olga', role: 'observer' });
    expect(observer.session()).toMatchObject({ phase: 'waiting', round: 0, rounds: 2, paused: false });
    expect(observer.session().participants.map((p) => p.state)).toEqual(['pending', 'pending', 'pending']);
    // The config is shown without tokens.
    expect(JSON.stringify(observer.latest)).not.toContain('participant-token');
    expect(observer.session().config).toMatchObject({ algorithm: 'dml', rounds: 2, participants: 'a, b, c' });

    // a uploads and b does not: the round waits for b alone, so b is late.
    const a = await participant('a');
    const b = await participant('b', false);
    await until(() => b.rounds.length === 1, 'round 1 to open');
    await until(() => observer.session().participants[1]?.state === 'late', 'b to be shown late');
    expect(observer.session().participants.map((p) => p.state)).toEqual(['active', 'late', 'pending']);
    expect(observer.session()).toMatchObject({ phase: 'collecting', round: 1 });

    expect(await observer.control('stop')).toBe('E_FORBIDDEN: olga is an observer: observers watch sessions; to stop one takes an admin token');
    expect(await observer.control('pause')).toMatch(/^E_FORBIDDEN: /);
    expect(session.ended).toBe(false);
    expect(session.paused).toBe(false);

    // b leaves: its place in the round is dropped, and the round goes on with a.
    b.socket.close();
    await until(() => session.history.length >= 1, 'round 1 to close without b');
    await until(() => observer.session().participants[1]?.state === 'dropped', 'b to be shown dropped');
    await until(() => session.ended, 'the session to end');
    await until(() => observer.session().phase === 'ended', 'the end to be shown');
    const shown = observer.session();
    expect(shown.endReason).toBe('completed 2 rounds');
    expect(shown.history.map((r) => r.round)).toEqual([1, 2]);
    expect(shown.history.map((r) => r.accuracy)).toEqual([{ a: 0.1 }, { a: 0.2 }]);
    expect(shown.history[0]!.bytesUp).toBe(session.history[0]!.bytesUp);
    expect(a.endReason).toBe('completed 2 rounds');
    expect(a.errors).toEqual([]);
  });

  it('lets an admin start a session before its quorum, pause it between rounds, resume and stop it', async () => {
    const session = coordinator.createSession(opsConfig({ minToStart: 3, rounds: 5 }));
    const admin = await operator(ADMIN.token);
    expect(await admin.control('start')).toBe('E_SESSION: no participant is connected to session ops: a round needs at least one');
    const a = await participant('a', true, 150);
    await pause(100);
    expect(a.rounds).toHaveLength(0); // minToStart is 3: without the admin, round 1 would wait

    expect(await admin.control('start')).toBe('ok');
    await until(() => session.history.length >= 1, 'round 1 to complete');
    expect(await admin.control('start')).toMatch(/^E_SESSION: session ops is already running/);

    // Paused: the round in progress completes, then no next round opens.
    expect(await admin.control('pause')).toBe('ok');
    await until(() => admin.session().paused && admin.session().phase === 'waiting', 'the round in progress to finish');
    const completed = session.history.length;
    expect(a.rounds).toHaveLength(completed);
    await pause(400);
    expect(a.rounds).toHaveLength(completed);
    expect(session.history).toHaveLength(completed);
    expect(admin.session()).toMatchObject({ paused: true, phase: 'waiting', round: completed });

    // Resumed: the next round opens at once.
    expect(await admin.control('resume')).toBe('ok');
    await until(() => session.history.length > completed, 'the next round after resuming');
    expect(session.history[completed]!.round).toBe(completed + 1);

    expect(await admin.control('stop')).toBe('ok');
    await until(() => a.endReason !== undefined, 'the participant to hear of the stop');
    expect(a.endReason).toBe('stopped by admin alice');
    expect(session.ended).toBe(true);
    expect(session.history.length).toBeLessThan(5);
    expect(a.errors).toEqual([]);
    await until(() => admin.session().phase === 'ended', 'the end to be shown');
    expect(admin.session().endReason).toBe('stopped by admin alice');
    expect(await admin.control('resume')).toBe('E_SESSION: session ops has ended: nothing to resume');
    expect(await admin.control('stop', 'nope')).toBe('E_SESSION: no session named nope on this coordinator');
  });

  it('answers malformed operator requests with a code, not silence', async () => {
    coordinator.createSession(opsConfig());
    const admin = await operator(ADMIN.token);
    const raw = admin.socket as unknown as Socket;
    const reply = async (...args: unknown[]) => {
      const bytes = (await raw.timeout(5000).emitWithAck(...(args as [string, ...unknown[]]))) as Uint8Array;
      try {
        readReply(replyMessages.ack, bytes);
        return 'ok';
      } catch (error) {
        return (error as Error).message;
      }
    };
    expect(await reply('control', encodeEnvelope({ v: PROTOCOL_VERSION, session: 'ops', action: 'explode' }))).toMatch(/^E_SCHEMA: action/);
    expect(await reply('control')).toMatch(/^E_MALFORMED: a control event carries exactly one binary envelope; got 0/);
    expect(await reply('control', encodeEnvelope({ v: 99, session: 'ops', action: 'stop' }))).toMatch(/^E_VERSION/);
    expect(await reply('upload', new Uint8Array([1]))).toMatch(/^E_SCHEMA: unknown event/);
  });
});
