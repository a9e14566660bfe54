/**
 * The coordinator's memory under connections that never authenticate (issue 15, defect 3): N raw
 * WebSocket connections on 127.0.0.1 each start one binary frame announced as M MiB and send its
 * payload as fast as the coordinator takes it, without ever sending a socket.io handshake. Prints
 * the coordinator's RSS before (after GC), its peak during the load (sampled every 50 ms, no GC),
 * and after every connection is closed (after GC), with how many connections the coordinator cut.
 *
 *   node dist/bench/capacity-unauthenticated.js [--connections 40] [--mib 16]
 *
 * The coordinator runs alone in its own process (bench/capacity-coordinator.ts, --expose-gc).
 */
import { fork } from 'node:child_process';
import type { Socket as NetSocket } from 'node:net';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import type { CoordinatorCommand, CoordinatorEvent } from './capacity-coordinator.js';

const MiB = 1024 * 1024;

interface Memory {
  rss: number;
  heapUsed: number;
  external: number;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { connections: { type: 'string' }, mib: { type: 'string' } } });
  const connections = Number(values.connections ?? 40);
  const mib = Number(values.mib ?? 16);
  if (!(Number.isInteger(connections) && connections >= 1 && connections <= 1000)) throw new Error('--connections: an integer in [1, 1000]');
  if (!(mib > 0 && mib <= 64)) throw new Error('--mib: a number in (0, 64]');

  const child = fork(new URL('./capacity-coordinator.js', import.meta.url), [], { execArgv: ['--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const waiting: Array<(event: CoordinatorEvent) => void> = [];
  child.on('message', (event: CoordinatorEvent) => waiting.shift()?.(event));
  const next = () => new Promise<CoordinatorEvent>((resolve) => waiting.push(resolve));
  const ask = async (command: CoordinatorCommand): Promise<Memory> => {
    const reply = next();
    child.send(command);
    const event = await reply;
    if (event.type !== 'memory') throw new Error(`the coordinator answered ${event.type}`);
    return event;
  };
  const ready = await next();
  if (ready.type !== 'ready') throw new Error(`the coordinator did not start: ${JSON.stringify(ready)}`);
  const wsUrl = `${ready.url.replace(/^http/, 'ws')}/socket.io/?EIO=4&transport=websocket`;

  const before = await ask({ type: 'measure' });
  let peak = before.rss;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      peak = Math.max(peak, (await ask({ type: 'sample' })).rss);
      await new Promise((r) => setTimeout(r, 50));
    }
  })();

  const started = Date.now();
  let cut = 0;
  let sentTotal = 0;
  const sockets: WebSocket[] = [];
  await Promise.all(
    Array.from({ length: connections }, async () => {
      const ws = new WebSocket(wsUrl);
      sockets.push(ws);
      ws.on('error', () => {});
      const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
      const refused = await Promise.race([new Promise<boolean>((resolve) => ws.once('open', () => resolve(false))), closed.then(() => true)]);
      if (refused) return void cut++;
      const raw = (ws as unknown as { _socket: NetSocket })._socket;
      const header = Buffer.alloc(14);
      header[0] = 0x82;
      header[1] = 0x80 | 127;
      header.writeBigUInt64BE(BigInt(Math.round(mib * MiB)), 2);
      header.writeUInt32BE(0x0badf00d, 10);
      raw.write(header);
      const chunk = Buffer.alloc(256 * 1024, 0x5a);
      let gone = false;
      void closed.then(() => (gone = true));
      for (let sent = 0; sent < mib * MiB && !gone; sent += chunk.length) {
        if (!raw.write(chunk)) await Promise.race([new Promise((r) => raw.once('drain', r)), closed]);
        if (!gone) sentTotal += chunk.length;
      }
      // Held open with the frame unfinished, as the report's connections were, for a moment.
      await Promise.race([closed, new Promise((r) => setTimeout(r, 1000))]);
      if (gone) cut++;
    }),
  );
  const loadMs = Date.now() - started;
  sampling = false;
  await sampler;
  for (const ws of sockets) ws.terminate();
  await new Promise((r) => setTimeout(r, 1000));
  const after = await ask({ type: 'measure' });
  child.send({ type: 'stop' } satisfies CoordinatorCommand);

  const m = (b: number) => `${(b / MiB).toFixed(0)} MiB`;
  process.stdout.write(
    `${connections} unauthenticated connections, each one frame announced as ${mib} MiB (${m(sentTotal)} written by the clients in all, ${loadMs} ms)\n` +
      `coordinator RSS: before ${m(before.rss)} (after GC) · peak during ${m(peak)} · after, every connection closed, ${m(after.rss)} (after GC)\n` +
      `connections the coordinator cut or refused before the frame ended: ${cut} of ${connections}\n`,
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`${(error as Error).message}\n`);
  process.exit(1);
});
