/**
 * Who may do what, and how fast: a token bound to a role joins only as that role, and a
 * connection that floods the coordinator is refused past its rate limit — while the others are
 * not slowed and the session goes on.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { clientMessages, encodeMessage, PROTOCOL_VERSION } from '../../protocol/index.js';
import { Coordinator } from '../../server/coordinator.js';
import { TokenBucket } from '../../server/rate-limit.js';
import { config, RawParticipant, refusalCode } from './raw-participant.js';

/** Session access: a participant, a teacher, and one whose role the config leaves open. */
const accessConfig = (overrides: Parameters<typeof config>[0] = {}) =>
  config({
    id: 'access', minParticipants: 1,
    participants: [
      { id: 'site', token: 'token-site-0123456789', role: 'participant' },
      { id: 'oracle', token: 'token-oracle-0123456789', role: 'teacher' },
      { id: 'other', token: 'token-other-0123456789' },
    ],
    ...overrides,
  });

async function connect(url: string, id: string): Promise<RawParticipant> {
  const p = new RawParticipant(url, id, `token-${id}-0123456789`);
  await p.connected();
  return p;
}

/** The coordinator's raw answer to a join as `role`: tests read refusals from it. */
const join = (p: RawParticipant, role: 'participant' | 'teacher') =>
  p.send('join', encodeMessage(clientMessages.join, { v: PROTOCOL_VERSION, session: 'access', role }));

describe('access', () => {
  let coordinator: Coordinator | undefined;
  const sockets: RawParticipant[] = [];
  afterEach(async () => {
    for (const s of sockets) s.close();
    sockets.length = 0;
    await coordinator?.close();
  });

  it('lets a token join only as the role the session gave it', async () => {
    coordinator = await Coordinator.start();
    coordinator.createSession(accessConfig({ minToStart: 3 }));
    const site = await connect(coordinator.url, 'site');
    const oracle = await connect(coordinator.url, 'oracle');
    const other = await connect(coordinator.url, 'other');
    sockets.push(site, oracle, other);
    const teacherClaim = await join(site, 'teacher');
    expect(refusalCode(teacherClaim)).toBe('E_AUTH');
    expect(Buffer.from(teacherClaim).toString()).toMatch(/site's token is for a participant of session access; it cannot join as a teacher/);
    expect(refusalCode(await join(oracle, 'participant'))).toBe('E_AUTH');
    // A refused join admits nothing; the right role is then accepted.
    expect(coordinator.session('access')!.connected).toEqual([]);
    expect(refusalCode(await join(oracle, 'teacher'))).toBe('ok');
    expect(refusalCode(await join(site, 'participant'))).toBe('ok');
    // No role in the config: either.
    expect(refusalCode(await join(other, 'teacher'))).toBe('ok');
  });

  it('refuses a flooding connection past its rate limit, with E_RATE_LIMITED, and not its neighbour', async () => {
    coordinator = await Coordinator.start({ rateLimit: { messagesPerSecond: 5, burst: 10 } });
    coordinator.createSession(accessConfig({ minToStart: 3 }));
    const flood = await connect(coordinator.url, 'site');
    const calm = await connect(coordinator.url, 'other');
    sockets.push(flood, calm);
    const started = performance.now();
    const replies = await Promise.all(Array.from({ length: 40 }, () => join(flood, 'participant')));
    const seconds = (performance.now() - started) / 1000;
    const codes = replies.map(refusalCode);
    const limited = codes.filter((c) => c === 'E_RATE_LIMITED').length;
    // The burst, plus what refilled while the 40 were in flight, went through; the rest were refused.
    expect(codes.length - limited).toBeGreaterThanOrEqual(10);
    expect(codes.length - limited).toBeLessThanOrEqual(10 + Math.ceil(5 * seconds) + 1);
    expect(Buffer.from(replies[replies.length - 1]!).toString()).toMatch(/more than 5 messages a second \(bursts of 10\); join refused — slow down and retry/);
    // Unknown events count too (they would otherwise be a free flood).
    expect(refusalCode(await flood.socket.timeout(5000).emitWithAck('no-such-event' as 'join', new Uint8Array(1)))).toBe('E_RATE_LIMITED');
    expect(refusalCode(await join(calm, 'participant'))).toBe('ok');
    await new Promise((resolve) => setTimeout(resolve, 450));
    expect(refusalCode(await join(flood, 'participant'))).toBe('ok'); // refilled: it may speak again
  });

  it('refills a token bucket at its rate, up to its burst', () => {
    let now = 0;
    const bucket = new TokenBucket(10, 3, () => now);
    expect([bucket.take(), bucket.take(), bucket.take(), bucket.take()]).toEqual([true, true, true, false]);
    now = 150; // 1.5 tokens
    expect([bucket.take(), bucket.take()]).toEqual([true, false]);
    now = 10_000; // long idle: no more than the burst
    expect([bucket.take(), bucket.take(), bucket.take(), bucket.take()]).toEqual([true, true, true, false]);
  });
});
