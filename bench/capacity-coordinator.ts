/**
 * The coordinator of the capacity benchmark, alone in its own process (started with
 * --expose-gc) so that its memory is the coordinator's and nothing else's. Driven over IPC by
 * bench/capacity.ts.
 */
import { randomBytes } from 'node:crypto';
import { Coordinator } from '../server/coordinator.js';
import type { SessionConfig } from '../server/session.js';

export type CoordinatorCommand =
  | { type: 'session'; id: string; participants: number; rounds: number; rows: number; classes: number }
  | { type: 'measure' }
  /** Memory as it is, without collecting garbage first: for sampling while load is on. */
  | { type: 'sample' }
  | { type: 'stop' };

export type CoordinatorEvent =
  | { type: 'ready'; url: string }
  | { type: 'session'; participants: Array<{ id: string; token: string }> }
  | { type: 'memory'; heapUsed: number; external: number; rss: number }
  | { type: 'round'; round: number; contributors: number; participants: number; ms: number; failure?: string }
  | { type: 'end'; reason: string }
  | { type: 'error'; message: string };

const send = (event: CoordinatorEvent) => process.send?.(event);
const gc = (globalThis as { gc?: () => void }).gc;

async function main(): Promise<void> {
  const coordinator = await Coordinator.start({ host: '127.0.0.1', port: 0 });
  process.on('message', (command: CoordinatorCommand) => {
    try {
      switch (command.type) {
        case 'session': {
          const participants = Array.from({ length: command.participants }, (_, i) => ({ id: `p${i}`, token: randomBytes(18).toString('hex') }));
          const config: SessionConfig = {
            id: command.id,
            algorithm: 'dml',
            rounds: command.rounds,
            participants,
            minParticipants: command.participants,
            numClasses: command.classes,
            referenceSize: command.rows,
            referencePerRound: command.rows,
            temperature: 3,
            alpha: 0.5,
            uploadDtype: 'float32',
            roundTimeoutMs: 300_000,
            trainTimeoutMs: 300_000,
            onRoundFailure: 'stop',
            seed: 1,
            maxMessageBytes: 16 * 1024 * 1024,
          };
          const session = coordinator.createSession(config);
          session.on('round', (record) =>
            send({
              type: 'round',
              round: record.round,
              contributors: record.contributors.length,
              participants: record.participants.length,
              ms: record.closedAt - record.openedAt,
              failure: record.failure?.message,
            }),
          );
          session.once('end', ({ reason }) => send({ type: 'end', reason }));
          send({ type: 'session', participants });
          break;
        }
        case 'measure': {
          // Twice: the first pass can leave finalisers that free more on the second.
          gc?.();
          gc?.();
          const m = process.memoryUsage();
          send({ type: 'memory', heapUsed: m.heapUsed, external: m.external, rss: m.rss });
          break;
        }
        case 'sample': {
          const m = process.memoryUsage();
          send({ type: 'memory', heapUsed: m.heapUsed, external: m.external, rss: m.rss });
          break;
        }
        case 'stop':
          void coordinator.close().finally(() => process.exit(0));
          break;
      }
    } catch (error) {
      send({ type: 'error', message: (error as Error).message });
    }
  });
  process.on('disconnect', () => process.exit(0));
  send({ type: 'ready', url: coordinator.url });
}

main().catch((error: unknown) => {
  send({ type: 'error', message: (error as Error).message });
  process.exit(1);
});
