/**
 * The journal on its own: what it keeps (and that tokens are not among it), bit-exact
 * contributions, a round aggregated but not completed, and clear refusals.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { Journal, valuesDigest } from '../../server/journal.js';
import type { RoundRecord, SessionConfig } from '../../server/session.js';

const path = () => join(mkdtempSync(join(tmpdir(), 'codistill-journal-')), 'j.db');

function config(id = 's1'): SessionConfig {
  return {
    id, algorithm: 'dml', rounds: 2, minParticipants: 1, numClasses: 3, referenceSize: 2, referencePerRound: 2, temperature: 1,
    alpha: 0.5, uploadDtype: 'float32', roundTimeoutMs: 1000, trainTimeoutMs: 1000, onRoundFailure: 'continue', seed: 1,
    maxMessageBytes: 1 << 16, participants: [{ id: 'a', tokenHash: 'ab'.repeat(32) }, { id: 'b', tokenHash: 'cd'.repeat(32), role: 'teacher' }],
  };
}

const record = (round: number): RoundRecord => ({
  round, participants: ['a', 'b'], contributors: ['b', 'a'], referenceCount: 2, bytesUp: 10, bytesDown: 20,
  reports: { a: { accuracy: 0.5 } }, ensembleDigest: 'f'.repeat(64), openedAt: 1, closedAt: 2,
});

describe('journal', () => {
  it('keeps sessions, aggregates bit for bit and completed rounds across a reopen', () => {
    const file = path();
    const journal = new Journal(file);
    journal.createSession(config());
    const writer = journal.forSession('s1');
    // Values that float32 keeps exactly only if no step converts them: subnormals, -0, extremes.
    const values = new Float32Array([1e-45, -0, 3.4028234663852886e38, 0.1, 1 / 3, 2 ** -126]);
    const unaligned = new Float32Array(new ArrayBuffer(values.byteLength + 4), 4, values.length);
    unaligned.set(values);
    writer.aggregated(1, 'reference-predictions', [{ participant: 'b', values: unaligned, sampleCount: 7, labelCounts: [1, 2, 4] }, { participant: 'a', values }], new Map([['a', 'd1'], ['b', null]]));
    writer.completed(record(1));
    writer.aggregated(2, 'reference-predictions', [{ participant: 'a', values }], new Map([['a', 'x']]));
    journal.close();

    const again = new Journal(file);
    const [stored] = again.unfinished();
    expect(stored!.config).toEqual(config());
    expect(stored!.history).toEqual([record(1)]); // round 2 was aggregated, never completed
    const contributions = again.contributions('s1', 1);
    expect(contributions.map((c) => c.participant)).toEqual(['b', 'a']);
    expect(valuesDigest(contributions[0]!.values)).toBe(valuesDigest(values));
    expect(Object.is(contributions[0]!.values[1], -0)).toBe(true);
    expect(contributions[0]).toMatchObject({ sampleCount: 7, labelCounts: [1, 2, 4] });
    expect(contributions[1]!.sampleCount).toBeUndefined();
    expect(again.targetDigests('s1', 1)).toEqual(new Map([['a', 'd1'], ['b', null]]));
    // Round 2 run again: its first aggregate is replaced, not added to.
    const writer2 = again.forSession('s1');
    writer2.aggregated(2, 'reference-predictions', [{ participant: 'b', values }], new Map([['b', 'y']]));
    expect(again.contributions('s1', 2).map((c) => c.participant)).toEqual(['b']);
    expect(again.targetDigests('s1', 2)).toEqual(new Map([['b', 'y']]));
    writer2.ended('completed 2 rounds');
    expect(again.unfinished()).toEqual([]);
    expect(again.session('s1')!.endReason).toBe('completed 2 rounds');
    again.close();
  });

  it('refuses tokens, a session twice, and a journal of another schema version, saying which', () => {
    const file = path();
    const journal = new Journal(file);
    expect(() => journal.createSession({ ...config(), participants: [{ id: 'a', token: 'secret-token-0123456789' }] })).toThrow(/must carry token hashes, not tokens/);
    journal.createSession(config());
    expect(() => journal.createSession(config())).toThrow(/already holds session "s1": resume it/);
    journal.forSession('s1').ended('done');
    expect(() => journal.createSession(config())).toThrow(/session "s1" has already run to its end in the journal .*: pick a new session id/);
    journal.close();
    const raw = new Database(file);
    raw.prepare(`UPDATE meta SET value = '99' WHERE key = 'schema'`).run();
    raw.close();
    expect(() => new Journal(file)).toThrow(/has schema version 99; this coordinator reads version 1/);
    expect(() => new Journal(join(tmpdir(), 'no-such-folder-codistill', 'j.db'))).toThrow(/cannot open the journal/);
  });

  it('holds no token in its file', async () => {
    const { Coordinator } = await import('../../server/coordinator.js');
    const file = path();
    const coordinator = await Coordinator.start({ journal: file });
    const secret = 'very-secret-token-0123456789';
    coordinator.createSession({ ...config('s2'), participants: [{ id: 'a', token: secret }] });
    await coordinator.close();
    for (const f of [file, `${file}-wal`]) {
      let bytes = '';
      try {
        bytes = readFileSync(f).toString('latin1');
      } catch {
        continue;
      }
      expect(bytes).not.toContain(secret);
    }
    const journal = new Journal(file);
    expect(journal.session('s2')!.config.participants).toEqual([{ id: 'a', tokenHash: expect.stringMatching(/^[0-9a-f]{64}$/) }]);
    journal.close();
  });
});
