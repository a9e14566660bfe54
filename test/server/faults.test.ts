/**
 * Faults, over real sockets on 127.0.0.1: participants that die mid-round, stall past the
 * deadline, or lose their link and come back; a round without quorum; and a coordinator killed
 * with SIGKILL mid-round and started again on its journal. Every test checks that the rounds
 * completed with the right participants and that no round's aggregate differs from one
 * recomputed from the journal.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Coordinator } from '../../server/coordinator.js';
import { Journal } from '../../server/journal.js';
import type { RoundRecord, SessionConfig } from '../../server/session.js';
import { CLASSES, expectJournalConsistent, freePort, ScriptedParticipant, startServer, until, type Script } from './fault-kit.js';

const SESSION = 'faults';
const REFERENCE = 6;
const IDS = ['a', 'b', 'c'] as const;
const token = (id: string) => `token-of-${id}-0123456789`;

function config(overrides: Partial<SessionConfig> = {}): SessionConfig {
  return {
    id: SESSION, algorithm: 'dml', rounds: 3, minParticipants: 2, numClasses: CLASSES, referenceSize: REFERENCE,
    referencePerRound: REFERENCE, temperature: 1, alpha: 0.5, uploadDtype: 'float32', roundTimeoutMs: 10_000,
    trainTimeoutMs: 10_000, onRoundFailure: 'continue', seed: 1, maxMessageBytes: 64 * 1024,
    participants: IDS.map((id) => ({ id, token: token(id) })),
    ...overrides,
  };
}

const sorted = (ids: readonly string[]) => [...ids].sort();

describe('faults, with a journal', () => {
  let coordinator: Coordinator | undefined;
  let participants: ScriptedParticipant[] = [];
  let journalPath = '';

  afterEach(async () => {
    for (const p of participants) p.kill();
    participants = [];
    await coordinator?.close();
    coordinator = undefined;
  });

  /** A coordinator with a fresh journal, one session, and the three participants scripted as given. */
  async function run(scripts: Partial<Record<(typeof IDS)[number], Script>>, overrides: Partial<SessionConfig> = {}): Promise<RoundRecord[]> {
    journalPath = join(mkdtempSync(join(tmpdir(), 'codistill-faults-')), 'journal.db');
    coordinator = await Coordinator.start({ journal: journalPath });
    const session = coordinator.createSession(config(overrides));
    const ended = new Promise<void>((resolve) => session.once('end', () => resolve()));
    participants = IDS.map((id) => new ScriptedParticipant(coordinator!.url, id, token(id), SESSION, scripts[id]));
    await ended;
    return session.history;
  }

  it('leaves a participant that dies mid-round out of that round and the next; the others complete every round', async () => {
    const history = await run({ c: { onRound: (round, self) => (round === 2 ? (self.kill(), 'stop') : 'upload') } });
    expect(history.map((r) => r.round)).toEqual([1, 2, 3]);
    expect(sorted(history[0]!.contributors)).toEqual(['a', 'b', 'c']);
    expect(sorted(history[1]!.participants)).toEqual(['a', 'b', 'c']);
    expect(sorted(history[1]!.contributors)).toEqual(['a', 'b']);
    expect(sorted(history[2]!.participants)).toEqual(['a', 'b']);
    expect(history.every((r) => r.failure === undefined)).toBe(true);
    expectJournalConsistent(journalPath, SESSION, participants);
  });

  it('refuses a straggler past the deadline with E_ROUND_CLOSED and aggregates the quorum without it', async () => {
    const history = await run({ c: { uploadDelayMs: (round) => (round === 1 ? 1_600 : 0) } }, { roundTimeoutMs: 800 });
    const c = participants[2]!;
    await until(() => c.uploads.has(1), "c's late upload to be answered");
    expect(c.uploads.get(1)).toEqual(['E_ROUND_CLOSED']);
    expect(sorted(history[0]!.contributors)).toEqual(['a', 'b']);
    expect(history[0]!.reports).not.toHaveProperty('c');
    expect(sorted(history[1]!.contributors)).toEqual(['a', 'b', 'c']);
    expect(sorted(history[2]!.contributors)).toEqual(['a', 'b', 'c']);
    expectJournalConsistent(journalPath, SESSION, participants);
  });

  it('tells a participant whose link dropped mid-round the round again when it rejoins, and takes its upload', async () => {
    let dropped = false;
    const slow: Script = { uploadDelayMs: (round) => (round === 2 ? 1_500 : 0) };
    const history = await run({
      a: slow,
      b: slow,
      c: {
        onRound: (round, self) => {
          if (round !== 2 || dropped) return 'upload';
          dropped = true;
          self.dropLink();
          return 'stop';
        },
      },
    });
    const c = participants[2]!;
    expect(c.announced).toEqual([1, 2, 2, 3]);
    expect(c.joins).toEqual([0, 2]); // it rejoined during round 2, and was told so
    expect(sorted(history[1]!.contributors)).toEqual(['a', 'b', 'c']);
    expect(history[1]!.reports).toHaveProperty('c');
    expectJournalConsistent(journalPath, SESSION, participants);
  });

  it('fails a round that misses its quorum, and stops the session when so configured', async () => {
    const history = await run({ c: { onRound: () => 'stop' } }, { minParticipants: 3, roundTimeoutMs: 500, onRoundFailure: 'stop' });
    expect(history).toHaveLength(1);
    expect(history[0]!.failure?.code).toBe('E_ROUND_CLOSED');
    expect(history[0]!.failure?.message).toMatch(/round 1 failed: 2 of 3 participants uploaded before the deadline; the quorum is 3/);
    await until(() => participants[0]!.ended !== undefined, 'a to be told the session ended');
    expect(participants[0]!.failedRounds).toEqual([1]);
    const journal = new Journal(journalPath);
    try {
      const stored = journal.session(SESSION)!;
      expect(stored.endReason).toMatch(/stopped after round 1 failed/);
      expect(stored.history[0]!.failure?.code).toBe('E_ROUND_CLOSED');
      expect(journal.contributions(SESSION, 1)).toEqual([]);
    } finally {
      journal.close();
    }
  });
});

describe('a coordinator killed with SIGKILL mid-round', () => {
  const participants: ScriptedParticipant[] = [];
  let server: ChildProcess | undefined;
  afterEach(() => {
    for (const p of participants) p.kill();
    server?.kill('SIGKILL');
  });

  it('resumes from its journal at the last completed round; participants rejoin by themselves and every round completes', { timeout: 60_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'codistill-restart-'));
    writeFileSync(join(dir, 'session.yaml'), [
      `id: ${SESSION}`, 'algorithm: dml', 'rounds: 3', `numClasses: ${CLASSES}`, `referenceSize: ${REFERENCE}`, 'roundTimeoutMs: 20000',
      'participants:', ...IDS.map((id) => `  - { id: ${id}, token: ${token(id)} }`),
    ].join('\n'));
    const port = await freePort();
    const args = ['--config', join(dir, 'session.yaml'), '--port', String(port), '--journal', join(dir, 'journal.db'), '--out', join(dir, 'history.json')];
    const first = await startServer(args);
    server = first.process;

    // c stalls on round 2 the first time it is told it, so the kill lands with a and b uploaded and c not.
    let cToldRound2 = 0;
    const scripts: Record<string, Script> = { c: { uploadDelayMs: (round) => (round === 2 && ++cToldRound2 === 1 ? 3_000 : 0) } };
    for (const id of IDS) participants.push(new ScriptedParticipant(`http://127.0.0.1:${port}`, id, token(id), SESSION, scripts[id]));
    const [a, b, c] = participants as [ScriptedParticipant, ScriptedParticipant, ScriptedParticipant];
    await until(() => a.uploads.get(2)?.[0] === 'ok' && b.uploads.get(2)?.[0] === 'ok', 'a and b to upload for round 2');
    expect(c.uploads.has(2)).toBe(false);
    first.process.kill('SIGKILL');
    expect(await first.exited).toBeNull(); // killed, not exited

    const second = await startServer(args);
    server = second.process;
    expect(await second.exited).toBe(0);
    expect(second.output()).toMatch(/session faults \(dml, 3 rounds\), resumed after round 1,/);
    expect(second.output()).toMatch(/session ended: completed 3 rounds/);

    for (const p of participants) {
      expect(p.ended).toBe('completed 3 rounds');
      expect(p.announced).toEqual([1, 2, 2, 3]); // round 2 again, after the restart
      expect(p.joins).toEqual([0, 1]); // the second join: after round 1, the last completed
    }
    const history = JSON.parse(readFileSync(join(dir, 'history.json'), 'utf8')) as { rounds: RoundRecord[] };
    expect(history.rounds.map((r) => r.round)).toEqual([1, 2, 3]);
    for (const record of history.rounds) {
      expect(sorted(record.contributors)).toEqual(['a', 'b', 'c']);
      expect(sorted(Object.keys(record.reports))).toEqual(['a', 'b', 'c']);
    }
    expectJournalConsistent(join(dir, 'journal.db'), SESSION, participants);
  });
});
