/**
 * Issue 15, defect 6a: `codistill server` that meets a fatal error once it listens (here: its
 * journal says the session already ran to its end) prints it, closes its port and exits non-zero
 * — it used to print the error and keep listening for ever.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Journal } from '../../server/journal.js';
import type { SessionConfig } from '../../server/session.js';
import { withTokenHashes } from '../../server/tokens.js';
import { freePort, startCli, startServer, type RunningCommand } from './fault-kit.js';

const dirs: string[] = [];
const running: RunningCommand[] = [];
afterEach(() => {
  for (const r of running.splice(0)) if (r.process.exitCode === null) r.process.kill('SIGKILL');
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });
}

describe('codistill server on a fatal error', () => {
  it('exits non-zero with its port closed when the journal holds the session as finished', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'codistill-exit-'));
    dirs.push(dir);
    const participants = [{ id: 'a', token: 'exit-token-aaaaaaaaaaaa' }, { id: 'b', token: 'exit-token-bbbbbbbbbbbb' }];
    const file = join(dir, 'session.json');
    writeFileSync(file, JSON.stringify({ id: 'done', algorithm: 'dml', rounds: 1, participants, numClasses: 3, referenceSize: 4 }));
    const journalPath = join(dir, 'journal.db');
    const journal = new Journal(journalPath);
    const config: SessionConfig = {
      id: 'done', algorithm: 'dml', rounds: 1, minParticipants: 2, numClasses: 3, referenceSize: 4, referencePerRound: 4,
      temperature: 2, alpha: 0.5, uploadDtype: 'float32', roundTimeoutMs: 1000, trainTimeoutMs: 1000, onRoundFailure: 'continue',
      seed: 1, maxMessageBytes: 65536, participants,
    };
    journal.createSession(withTokenHashes(config));
    journal.forSession('done').ended('finished earlier');
    journal.close();

    const port = await freePort();
    const server = startCli(['server', '--config', file, '--journal', journalPath, '--port', String(port), '--out', join(dir, 'h.json')]);
    running.push(server);
    const code = await Promise.race([server.exited, new Promise<'still running'>((r) => setTimeout(() => r('still running'), 20_000))]);
    expect(code, server.output()).not.toBe('still running');
    expect(code).not.toBe(0);
    expect(server.output()).toMatch(/session "done" has already run to its end in the journal/);
    expect(await portOpen(port)).toBe(false);
  }, 40_000);

  it('says so at start when the session file pins no reference digest (the first joiner would fix it), and not when it does', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'codistill-digest-note-'));
    dirs.push(dir);
    const participants = [{ id: 'a', token: 'note-token-aaaaaaaaaaaa' }, { id: 'b', token: 'note-token-bbbbbbbbbbbb' }];
    const started = async (pin: object) => {
      const file = join(dir, `session-${Object.keys(pin).length}.json`);
      writeFileSync(file, JSON.stringify({ id: 'note', algorithm: 'dml', rounds: 1, participants, numClasses: 3, referenceSize: 4, ...pin }));
      const server = await startServer(['--config', file, '--port', String(await freePort()), '--out', join(dir, 'h.json')]);
      running.push(server);
      return server.output();
    };
    expect(await started({})).toMatch(/pins no referenceDigest, so the first participant to join fixes it for everyone/);
    expect(await started({ referenceDigest: 'ab'.repeat(32) })).not.toMatch(/referenceDigest/);
  }, 60_000);
});
