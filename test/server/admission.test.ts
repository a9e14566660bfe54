/**
 * Issue 15, defects 2, 3 and 4 (the handshake part): the coordinator's front door, over real
 * connections on 127.0.0.1.
 *
 * - A participant that connects again replaces its older connection, which is told E_REPLACED
 *   and disconnected; the newer one takes part in the rounds.
 * - Raw WebSocket connections that never authenticate cannot make the coordinator hold more than
 *   a small number of bytes each (a frame announced as 16 MiB is cut after a few KiB), are closed
 *   when they take too long, and past the connection cap a new one is refused with E_CAPACITY.
 * - Every handshake shape gets an answer with an error code and a sentence about the input: auth
 *   as an array, a string, a number, null, text that is not JSON, a version nested too deep to
 *   print, a token of a megabyte — on both namespaces.
 */
import type { Socket } from 'socket.io-client';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { decodeEnvelope, packTensor, PROTOCOL_VERSION } from '../../protocol/index.js';
import { Coordinator } from '../../server/coordinator.js';
import { C, config, RawParticipant, REFERENCE, refusalCode, until } from './raw-participant.js';

/** The session every test here opens: two participants, a and b, with `door-token-` tokens. */
const doorConfig = () => config({ id: 'door', rounds: 2, minParticipants: 2, participants: ['a', 'b'].map((id) => ({ id, token: `door-token-${id}` })) });

let coordinator: Coordinator | undefined;
const opened: Array<{ close(): void }> = [];
afterEach(async () => {
  for (const s of opened.splice(0)) s.close();
  await coordinator?.close();
  coordinator = undefined;
});

/** A raw participant of session door that also records how the coordinator closed it. */
class Peer extends RawParticipant {
  closing: { code: string; message: string } | undefined;
  disconnectReason: string | undefined;

  constructor(url: string, id: string) {
    super(url, id, `door-token-${id}`);
    opened.push(this);
    this.socket.on('closing', (b) => (this.closing = (decodeEnvelope(b) as { error: { code: string; message: string } }).error));
    this.socket.on('disconnect', (reason) => (this.disconnectReason = reason));
  }

  /** Uniform probabilities for `round`: 'ok' or the refusal's code. */
  async uploadUniform(round: number): Promise<string> {
    const values = packTensor(new Float32Array(REFERENCE * C).fill(1 / C), [REFERENCE, C], 'float32');
    return refusalCode(await this.upload({ session: 'door', round, values }));
  }
}

describe('a participant connecting twice', () => {
  it('keeps the newer connection: the older is told E_REPLACED and disconnected, the newer takes part in the rounds', async () => {
    coordinator = await Coordinator.start();
    coordinator.createSession(doorConfig());
    const first = new Peer(coordinator.url, 'a');
    await first.join('door');
    const b = new Peer(coordinator.url, 'b');
    await b.join('door');
    await until(() => first.rounds.length === 1 && b.rounds.length === 1, 'round 1 to open');

    const second = new Peer(coordinator.url, 'a');
    await second.join('door');
    await until(() => first.disconnectReason !== undefined, 'the older connection to be closed', 3000);
    expect(first.closing?.code).toBe('E_REPLACED');
    expect(first.closing?.message).toMatch(/^a connected again from another connection, which takes its place in session door; this one is closed$/);
    // Closed by the server: socket.io-client does not reconnect by itself and take the place back.
    expect(first.disconnectReason).toBe('io server disconnect');

    // The newer connection is told the open round when it joins and takes part from there.
    await until(() => second.rounds.length >= 1, 'the newer connection to learn the round');
    const round = second.rounds.at(-1)!.round;
    expect(await second.uploadUniform(round)).toBe('ok');
    expect(await b.uploadUniform(round)).toBe('ok');
    expect(first.socket.connected).toBe(false);
  });
});

// ---- raw WebSocket connections ----------------------------------------------------------------

function wsUrl(url: string): string {
  return `${url.replace(/^http/, 'ws')}/socket.io/?EIO=4&transport=websocket`;
}

interface RawLink {
  ws: WebSocket;
  texts: string[];
  binaries: Buffer[];
  closed: Promise<number>;
  /** HTTP status and body when the upgrade was refused. */
  refused?: { status: number; body: string };
}

/** A raw engine.io WebSocket on 127.0.0.1, open once the server's engine.io "open" packet arrived (or refused). */
async function rawLink(url: string): Promise<RawLink> {
  const ws = new WebSocket(wsUrl(url));
  opened.push({ close: () => ws.terminate() });
  const link: RawLink = { ws, texts: [], binaries: [], closed: new Promise((resolve) => ws.once('close', (code) => resolve(code))) };
  ws.on('message', (data, isBinary) => {
    if (!isBinary) link.texts.push(data.toString());
    else link.binaries.push(data as Buffer);
  });
  ws.on('error', () => {});
  await new Promise<void>((resolve) => {
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (b: Buffer) => (body += b.toString()));
      res.on('end', () => {
        link.refused = { status: res.statusCode ?? 0, body };
        resolve();
      });
    });
    ws.once('close', () => resolve());
    ws.on('message', () => resolve());
  });
  return link;
}

/** Writes the start of one masked binary WebSocket frame announcing `announced` bytes, and `sent` of them. */
function partialFrame(ws: WebSocket, announced: number, sent: number): void {
  const header = Buffer.alloc(14);
  header[0] = 0x82; // FIN, binary
  header[1] = 0x80 | 127; // masked, 64-bit length
  header.writeBigUInt64BE(BigInt(announced), 2);
  header.writeUInt32BE(0x12345678, 10); // masking key
  const raw = (ws as unknown as { _socket: { write(b: Buffer): boolean } })._socket;
  raw.write(header);
  for (let left = sent; left > 0; left -= 64 * 1024) raw.write(Buffer.alloc(Math.min(left, 64 * 1024), 0x41));
}

describe('connections that never authenticate', () => {
  it('are cut once they send more than a few KiB, even inside one frame announced as 16 MiB', async () => {
    coordinator = await Coordinator.start({ admission: { unauthenticatedBytes: 8 * 1024, unauthenticatedTimeoutMs: 20_000 } });
    const links = await Promise.all(Array.from({ length: 8 }, () => rawLink(coordinator!.url)));
    expect(links.every((l) => l.texts[0]?.startsWith('0{'))).toBe(true); // engine.io open
    const started = Date.now();
    for (const l of links) partialFrame(l.ws, 16 * 1024 * 1024, 256 * 1024);
    const closes = await Promise.race([Promise.all(links.map((l) => l.closed)), new Promise<null>((r) => setTimeout(() => r(null), 5000))]);
    expect(closes, 'every connection cut within 5 s').not.toBeNull();
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('are closed after the authentication timeout, while an authenticated one stays', async () => {
    coordinator = await Coordinator.start({ admission: { unauthenticatedTimeoutMs: 300 } });
    coordinator.createSession(doorConfig());
    const idle = await rawLink(coordinator.url);
    const participant = new Peer(coordinator.url, 'a');
    await participant.join('door');
    const code = await Promise.race([idle.closed, new Promise<null>((r) => setTimeout(() => r(null), 3000))]);
    expect(code, 'the idle connection closed within 3 s').not.toBeNull();
    await new Promise((r) => setTimeout(r, 400));
    expect(participant.socket.connected).toBe(true);
  });

  it('are refused past the connection cap with E_CAPACITY, and let in again once one closes', async () => {
    coordinator = await Coordinator.start({ admission: { maxConnections: 4 } });
    const links = await Promise.all(Array.from({ length: 4 }, () => rawLink(coordinator!.url)));
    expect(links.every((l) => l.refused === undefined)).toBe(true);
    const over = await rawLink(coordinator.url);
    expect(over.refused?.status).toBe(400);
    expect(over.refused?.body).toBe('E_CAPACITY: this coordinator holds its limit of 4 connections; try again later');
    links[0]!.ws.terminate();
    await links[0]!.closed;
    await until(() => true, 'nothing');
    let again: RawLink | undefined;
    for (let attempt = 0; attempt < 50; attempt++) {
      again = await rawLink(coordinator.url);
      if (again.refused === undefined) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(again?.refused).toBeUndefined();
  });
});

// ---- handshake shapes ---------------------------------------------------------------------------

/** Sends one socket.io CONNECT packet (after "40", or "40/operator,") and returns the coordinator's answer packet, or 'NO ANSWER'. */
async function handshake(url: string, namespace: string, payload: string): Promise<string> {
  const link = await rawLink(url);
  link.ws.send(`40${namespace === '/' ? '' : `${namespace},`}${payload}`);
  const deadline = Date.now() + 3000;
  while (Date.now() < deadline) {
    const answer = link.texts.find((t) => t.startsWith('4'));
    if (answer !== undefined) return answer;
    await new Promise((r) => setTimeout(r, 5));
  }
  return 'NO ANSWER';
}

describe('every handshake gets an answer', () => {
  it('refuses auth that is not a map, a version of any shape and a token of any size with a code and a sentence, on both namespaces', async () => {
    coordinator = await Coordinator.start({ operators: [{ id: 'ops', token: 'operator-token-0123456789', role: 'admin' }] });
    coordinator.createSession(doorConfig());
    const deep = `${'['.repeat(20_000)}${']'.repeat(20_000)}`;
    const cases: Array<[string, RegExp]> = [
      ['[1,2]', /^E_AUTH: the handshake's auth must be a map \{ v, token \}; the (participant|operator) sent an array$/],
      ['"token"', /^E_AUTH: the handshake's auth must be a map \{ v, token \}; the (participant|operator) sent "token"$/],
      ['-4.5', /^E_AUTH: .* sent -4.5$/], // (digits right after the packet type would be read as an ack id)
      ['null', /^E_AUTH: .* sent null$/],
      ['true', /^E_AUTH: .* sent true$/],
      ['{"v":1,', /^E_AUTH: .* sent 7 characters that are not JSON$/],
      [`{"v":${deep},"token":"x"}`, new RegExp(`^E_VERSION: this coordinator speaks protocol version ${PROTOCOL_VERSION}; the (participant|operator) sent an array\\. `)],
      ['{"v":{"a":{"b":1}},"token":"x"}', /^E_VERSION: .* sent a map\. /],
      [`{"v":"${'9'.repeat(500)}","token":"x"}`, /^E_VERSION: .* sent "9{40}…"\. /],
      [`{"v":${PROTOCOL_VERSION},"token":["door-token-a"]}`, /^E_AUTH: no token given: /],
      [`{"v":${PROTOCOL_VERSION},"token":"${'t'.repeat(40_000)}"}`, /^E_AUTH: the token has 40000 characters; tokens have at most 1024$/],
      [`{"v":${PROTOCOL_VERSION},"token":"door-token-zzz"}`, /^E_AUTH: the token is not (valid for any running session|an operator token of this coordinator)/],
    ];
    for (const namespace of ['/', '/operator']) {
      for (const [payload, expected] of cases) {
        const answer = await handshake(coordinator.url, namespace, payload);
        // A CONNECT_ERROR packet: "44" then the namespace, then { message, data: { code, message } }.
        const prefix = namespace === '/' ? '44' : `44${namespace},`;
        expect(answer.startsWith(prefix), `${namespace} ${payload.slice(0, 60)} → ${answer.slice(0, 200)}`).toBe(true);
        const body = JSON.parse(answer.slice(prefix.length)) as { message: string; data: { code: string; message: string } };
        expect(body.message, `${namespace} ${payload.slice(0, 60)}`).toMatch(expected);
        expect(`${body.data.code}: ${body.data.message}`).toBe(body.message);
      }
    }
  });
});

describe('a packet socket.io cannot decode, after authenticating', () => {
  it('is answered with E_MALFORMED on the closing event before the link closes', async () => {
    coordinator = await Coordinator.start();
    coordinator.createSession(doorConfig());
    for (const packet of ['42"upload"', '42{"a":1}', '49', '451-["upload",{"_placeholder":true,"num":0}]', '42["disconnect"]']) {
      const link = await rawLink(coordinator.url);
      link.ws.send(`40{"v":${PROTOCOL_VERSION},"token":"door-token-a"}`);
      await until(() => link.texts.some((t) => t.startsWith('40{')), 'the handshake to be accepted');
      // A text packet where the binary attachment should be, for the binary event.
      link.ws.send(packet);
      if (packet.startsWith('451-')) link.ws.send('42["x"]');
      const closed = await Promise.race([link.closed, new Promise<null>((r) => setTimeout(() => r(null), 3000))]);
      expect(closed, `${packet}: closed`).not.toBeNull();
      const closing = link.texts.find((t) => t.startsWith('451-["closing"'));
      expect(closing, `${packet}: ${JSON.stringify(link.texts)}`).toBeDefined();
      const error = (decodeEnvelope(link.binaries.at(-1)!) as { error: { code: string; message: string } }).error;
      expect(error.code).toBe('E_MALFORMED');
      expect(error.message).toMatch(/^the connection sent a socket\.io packet that cannot be decoded \((invalid payload|unknown packet type 9|got plaintext data when reconstructing a packet)\); it is closed/);
    }
  });

  it('is not confused with a peer\'s own event named "error", which is refused and leaves the link open', async () => {
    coordinator = await Coordinator.start();
    coordinator.createSession(doorConfig());
    const peer = new Peer(coordinator.url, 'a');
    await peer.join('door');
    // "error" is no event of the protocol: the socket without the protocol's event types sends it.
    const socket = peer.socket as unknown as Socket;
    const reply: Uint8Array = await socket.timeout(3000).emitWithAck('error', new Uint8Array([1, 2, 3]));
    expect((decodeEnvelope(reply) as { error: { code: string } }).error.code).toBe('E_SCHEMA');
    socket.emit('error', 'no ack');
    await new Promise((r) => setTimeout(r, 200));
    expect(peer.socket.connected).toBe(true);
    expect(peer.closing).toBeUndefined();
  });
});

describe('admission limits', () => {
  it('are checked before the coordinator starts', async () => {
    await expect(Coordinator.start({ admission: { maxConnections: 0 } })).rejects.toThrow(/^invalid admission limits: maxConnections must be an integer ≥ 1 \(got 0\)$/);
    await expect(Coordinator.start({ admission: { unauthenticatedBytes: 10 } })).rejects.toThrow(/unauthenticatedBytes must be an integer ≥ 1024/);
    await expect(Coordinator.start({ admission: { unauthenticatedTimeoutMs: Number.NaN } })).rejects.toThrow(/unauthenticatedTimeoutMs must be a number > 0/);
  });
});
