/**
 * Raw participants spread over child processes (bench/raw-clients.ts), so that the clients'
 * own work does not run on the coordinator's event loop. Everything is bounded: every wait
 * has a deadline, and close() kills the children it started.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { io, type Socket } from 'socket.io-client';
import { PROTOCOL_VERSION, type ClientToServerEvents, type ServerToClientEvents } from '../protocol/index.js';

export interface RawParticipant {
  id: string;
  token: string;
}

export type RawSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

/**
 * A raw participant's socket (bench/raw-clients.ts, bench/secure-aggregation.ts): WebSocket only,
 * the protocol version and token in the handshake, no reconnection — a benchmark counts a dropped
 * link as a failure and never retries it. `timeout` bounds the handshake (socket.io's default, 20 s).
 */
export function rawSocket(url: string, token: string, timeout = 20_000): RawSocket {
  return io(url, { transports: ['websocket'], auth: { v: PROTOCOL_VERSION, token }, reconnection: false, forceNew: true, timeout });
}

export type PoolCommand =
  | { type: 'start'; url: string; session: string; classes: number; concurrency: number; participants: RawParticipant[] }
  | { type: 'join'; participants: RawParticipant[] }
  | { type: 'memory' }
  | { type: 'stop' };

export type PoolEvent =
  | { type: 'ready' }
  | { type: 'joined'; count: number }
  | { type: 'round'; round: number; uploadAt: number; targetAt: number; targets: number }
  | { type: 'ended'; count: number }
  | { type: 'memory'; rss: number }
  | { type: 'error'; message: string };

export interface RoundTimes {
  /** Latest upload emitted by any client, wall-clock ms. */
  uploadAt: number;
  /** Latest target received by any client, wall-clock ms. */
  targetAt: number;
  processes: number;
}

export class ClientPool {
  readonly rounds = new Map<number, RoundTimes>();
  private readonly children: ChildProcess[] = [];
  private readonly joined: number[] = [];
  private ended = 0;
  private error: string | undefined;
  private listeners = new Set<() => void>();

  private constructor(private readonly expected: number[]) {}

  /** Forks `processes` children and hands each a share of the participants (round robin). */
  static async start(options: {
    processes: number;
    url: string;
    session: string;
    classes: number;
    participants: RawParticipant[];
    concurrency?: number;
  }): Promise<ClientPool> {
    const k = Math.max(1, Math.min(options.processes, options.participants.length));
    const shares = Array.from({ length: k }, (_, i) => options.participants.filter((_, j) => j % k === i));
    const pool = new ClientPool(shares.map((s) => s.length));
    for (let i = 0; i < k; i++) {
      const child = fork(new URL('./raw-clients.js', import.meta.url), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      pool.children.push(child);
      pool.joined.push(0);
      child.on('message', (event: PoolEvent) => pool.onEvent(i, event));
      child.on('exit', (code) => {
        if (code !== 0 && code !== null) pool.fail(`client process ${i} exited with code ${code}`);
      });
      await pool.until(() => pool.readyCount > i, 30_000, `client process ${i} to start`);
    }
    const concurrency = Math.max(1, Math.floor((options.concurrency ?? 64) / k));
    shares.forEach((participants, i) =>
      pool.children[i]!.send({ type: 'start', url: options.url, session: options.session, classes: options.classes, concurrency, participants } satisfies PoolCommand),
    );
    return pool;
  }

  private readyCount = 0;

  get joinedCount(): number {
    return this.joined.reduce((a, b) => a + b, 0);
  }

  get failure(): string | undefined {
    return this.error;
  }

  /** Adds participants to the first child (e.g. the one whose join lets round 1 start). */
  join(participants: RawParticipant[]): void {
    this.expected[0]! += participants.length;
    this.children[0]!.send({ type: 'join', participants } satisfies PoolCommand);
  }

  /** Sum of the children's resident memory. */
  async rss(): Promise<number> {
    let total = 0;
    for (const child of this.children) {
      const reply = new Promise<number>((resolve) => {
        const on = (event: PoolEvent) => {
          if (event.type === 'memory') {
            child.off('message', on);
            resolve(event.rss);
          }
        };
        child.on('message', on);
      });
      child.send({ type: 'memory' } satisfies PoolCommand);
      total += await reply;
    }
    return total;
  }

  waitJoined(timeoutMs: number): Promise<void> {
    const total = this.expected.reduce((a, b) => a + b, 0);
    return this.until(() => this.joinedCount >= total, timeoutMs, `${total} participants to join (${this.joinedCount} so far)`);
  }

  waitEnded(timeoutMs: number): Promise<void> {
    return this.until(() => this.ended >= this.children.length, timeoutMs, 'every client process to see the session end');
  }

  /** Resolves when `done()` holds; rejects on a client failure or after `timeoutMs`. */
  until(done: () => boolean, timeoutMs: number, what: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (this.error !== undefined) finish(new Error(this.error));
        else if (done()) finish();
      };
      const timer = setTimeout(() => finish(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
      const finish = (error?: Error) => {
        clearTimeout(timer);
        this.listeners.delete(check);
        if (error) reject(error);
        else resolve();
      };
      this.listeners.add(check);
      check();
    });
  }

  async close(): Promise<void> {
    await Promise.all(
      this.children.map(async (child) => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = once(child, 'exit');
        try {
          child.send({ type: 'stop' } satisfies PoolCommand);
        } catch {
          child.kill();
        }
        const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
        await exited;
        clearTimeout(timer);
      }),
    );
  }

  private fail(message: string): void {
    this.error ??= message;
    this.notify();
  }

  private notify(): void {
    for (const listener of [...this.listeners]) listener();
  }

  private onEvent(child: number, event: PoolEvent): void {
    switch (event.type) {
      case 'ready':
        this.readyCount++;
        break;
      case 'joined':
        this.joined[child] = event.count;
        break;
      case 'round': {
        const r = this.rounds.get(event.round) ?? { uploadAt: 0, targetAt: 0, processes: 0 };
        r.uploadAt = Math.max(r.uploadAt, event.uploadAt);
        r.targetAt = Math.max(r.targetAt, event.targetAt);
        r.processes++;
        this.rounds.set(event.round, r);
        break;
      }
      case 'ended':
        this.ended++;
        break;
      case 'error':
        this.fail(event.message);
        break;
    }
    this.notify();
  }
}
