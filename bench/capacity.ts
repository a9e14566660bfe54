/**
 * 5. Coordinator capacity: how many participants one coordinator holds at once on loopback,
 *    with rounds still completing, and its memory per participant.
 *
 * The coordinator runs alone in a child process; raw socket.io participants (bench/raw-clients.ts)
 * are spread over several more. Steps of growing size; each step is one dml session of a few
 * rounds. Memory is measured (after GC) before the session and once every participant but one
 * has joined — the session waits for that last one, which then joins and lets the rounds start.
 * Stops by itself after the largest step, the first step whose rounds do not all complete, or
 * the time budget.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import type { CoordinatorCommand, CoordinatorEvent } from './capacity-coordinator.js';
import { ClientPool } from './client-pool.js';
import { bytesText, figure, fmt, median, type Benchmark, type Figure, type Table } from './harness.js';

const ROWS = 100;
const CLASSES = 10;
const ROUNDS = 3;
const CLIENT_PROCESSES = 4;

class CoordinatorProcess {
  private events: CoordinatorEvent[] = [];
  private waiters = new Set<() => void>();
  url = '';

  private constructor(private readonly child: ChildProcess) {
    child.on('message', (event: CoordinatorEvent) => {
      this.events.push(event);
      for (const w of [...this.waiters]) w();
    });
  }

  static async start(): Promise<CoordinatorProcess> {
    const child = fork(new URL('./capacity-coordinator.js', import.meta.url), [], {
      execArgv: ['--expose-gc'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const p = new CoordinatorProcess(child);
    const ready = await p.next('ready', 30_000);
    p.url = ready.url;
    return p;
  }

  send(command: CoordinatorCommand): void {
    this.child.send(command);
  }

  /** The next event of a type (taking it off the queue); errors from the child reject. */
  next<T extends CoordinatorEvent['type']>(type: T, timeoutMs: number): Promise<Extract<CoordinatorEvent, { type: T }>> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const error = this.events.find((e) => e.type === 'error');
        if (error !== undefined && error.type === 'error') return finish(new Error(`coordinator process: ${error.message}`));
        const index = this.events.findIndex((e) => e.type === type);
        if (index >= 0) finish(undefined, this.events.splice(index, 1)[0] as Extract<CoordinatorEvent, { type: T }>);
      };
      const timer = setTimeout(() => finish(new Error(`timed out after ${timeoutMs} ms waiting for the coordinator's ${type}`)), timeoutMs);
      const finish = (error?: Error, value?: Extract<CoordinatorEvent, { type: T }>) => {
        clearTimeout(timer);
        this.waiters.delete(check);
        if (error) reject(error);
        else resolve(value!);
      };
      this.waiters.add(check);
      check();
    });
  }

  drain<T extends CoordinatorEvent['type']>(type: T): Array<Extract<CoordinatorEvent, { type: T }>> {
    const taken = this.events.filter((e) => e.type === type) as Array<Extract<CoordinatorEvent, { type: T }>>;
    this.events = this.events.filter((e) => e.type !== type);
    return taken;
  }

  async memory(): Promise<{ heap: number; rss: number }> {
    this.send({ type: 'measure' });
    const m = await this.next('memory', 30_000);
    return { heap: m.heapUsed + m.external, rss: m.rss };
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = once(this.child, 'exit');
    this.send({ type: 'stop' });
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
}

interface Step {
  participants: number;
  connectSeconds: number;
  heapPerParticipant: number;
  rssPerParticipant: number;
  roundMs: number[];
  clientRss: number;
  completed: boolean;
  failure?: string;
}

export const capacityBenchmark: Benchmark = {
  id: 'capacity',
  title: '5. Coordinator capacity',
  async run({ quick, log }) {
    const sizes = quick ? [250, 1000] : [250, 500, 1000, 2000, 4000];
    const budgetMs = quick ? 180_000 : 480_000;
    const stepTimeoutMs = 240_000;
    const started = performance.now();
    const coordinator = await CoordinatorProcess.start();
    const steps: Step[] = [];
    const notes: string[] = [];
    try {
      for (const n of sizes) {
        if (performance.now() - started > budgetMs) {
          notes.push(`Stopped before ${n} participants: the ${budgetMs / 1000} s budget was spent.`);
          break;
        }
        log(`  ${n} participants: connecting over ${CLIENT_PROCESSES} client processes`);
        const before = await coordinator.memory();
        // One more participant than connect first: the session cannot start without it.
        coordinator.send({ type: 'session', id: `capacity-${n}`, participants: n + 1, rounds: ROUNDS, rows: ROWS, classes: CLASSES });
        const { participants } = await coordinator.next('session', 30_000);
        const gate = participants[n]!;
        const connectStarted = performance.now();
        const pool = await ClientPool.start({ processes: CLIENT_PROCESSES, url: coordinator.url, session: `capacity-${n}`, classes: CLASSES, participants: participants.slice(0, n) });
        const step: Step = { participants: n, connectSeconds: 0, heapPerParticipant: 0, rssPerParticipant: 0, roundMs: [], clientRss: 0, completed: false };
        steps.push(step);
        try {
          await pool.waitJoined(stepTimeoutMs);
          step.connectSeconds = (performance.now() - connectStarted) / 1000;
          const held = await coordinator.memory();
          step.heapPerParticipant = (held.heap - before.heap) / n;
          step.rssPerParticipant = (held.rss - before.rss) / n;
          step.clientRss = await pool.rss();
          log(`    all joined in ${fmt(step.connectSeconds)} s; coordinator +${bytesText(step.heapPerParticipant)} heap, +${bytesText(step.rssPerParticipant)} RSS per participant; rounds start`);
          pool.join([gate]);
          const end = await Promise.race([
            coordinator.next('end', stepTimeoutMs),
            pool.until(() => false, stepTimeoutMs, 'the session to end').then(() => undefined),
          ]);
          const rounds = coordinator.drain('round');
          step.roundMs = rounds.map((r) => r.ms);
          const full = rounds.filter((r) => r.failure === undefined && r.contributors === n + 1);
          step.completed = full.length === ROUNDS && end !== undefined && end.reason.startsWith('completed');
          if (!step.completed) step.failure = rounds.find((r) => r.failure)?.failure ?? end?.reason ?? 'did not end';
          log(`    rounds: ${step.roundMs.map((ms) => `${fmt(ms)} ms`).join(', ')}${step.completed ? '' : ` — FAILED: ${step.failure}`}`);
        } catch (error) {
          step.failure = (error as Error).message;
          log(`    FAILED: ${step.failure}`);
        } finally {
          await pool.close();
          coordinator.drain('round');
          coordinator.drain('end');
        }
        if (!step.completed) break;
      }
    } finally {
      await coordinator.stop();
    }

    const held = steps.filter((s) => s.completed);
    const largest = held.reduce((a, s) => Math.max(a, s.participants), 0);
    const perParticipant = held.length > 0 ? held[held.length - 1]! : undefined;
    const figures: Figure[] = [
      figure({
        id: 'capacity.participants',
        label: `Participants held by one coordinator with every round completing (loopback, ${CLIENT_PROCESSES} client processes, largest step tried: ${steps.at(-1)?.participants ?? 0})`,
        value: largest, unit: 'participants',
        target: { on: 'value', op: '>=', goal: 1000 },
      }),
    ];
    if (perParticipant !== undefined) {
      figures.push(figure({
        id: 'capacity.memory-per-participant',
        label: `Coordinator memory per connected participant (heap + external, after GC, at ${perParticipant.participants})`,
        value: perParticipant.heapPerParticipant / 1024, unit: 'KiB',
      }));
      figures.push(figure({
        id: 'capacity.round-time',
        label: `Round time at ${perParticipant.participants} participants (${ROWS}×${CLASSES} float32 uploads, open → all reports)`,
        value: median(perParticipant.roundMs), unit: 'ms',
      }));
    }
    return {
      method: [
        `Steps of ${sizes.join(', ')} participants; each a dml session of ${ROUNDS} rounds, ${ROWS}×${CLASSES} float32 predictions per upload, quorum = everyone.`,
        `Raw participants (socket.io-client, no tfjs) in ${CLIENT_PROCESSES} child processes; the coordinator alone in another, started with --expose-gc.`,
        'Memory per participant: coordinator heapUsed + external (and RSS) after two forced GCs, with n joined, minus the same before the session, over n.',
        `A step fails when a round does not complete with every participant; the run stops there, after the largest step, or after ${budgetMs / 1000} s.`,
      ],
      tables: [{
        caption: 'Capacity steps',
        columns: ['participants', 'all joined in', 'heap / participant', 'RSS / participant', 'round times (ms)', 'client processes RSS', 'rounds completed'],
        rows: steps.map((s) => [
          s.participants, `${fmt(s.connectSeconds)} s`, bytesText(s.heapPerParticipant), bytesText(s.rssPerParticipant),
          s.roundMs.map((ms) => fmt(ms)).join(', '), bytesText(s.clientRss), s.completed ? 'yes' : `no: ${s.failure}`,
        ]),
      }],
      figures,
      notes,
    };
  },
};
