/**
 * Faults in a deployment, as processes: `codistill server --journal` and three `codistill
 * client` processes training real students on their own MNIST files. One client is killed with
 * SIGKILL mid-round; later the coordinator is too, and is started again on its journal. The
 * surviving clients reconnect by themselves and the session completes every round; the journal
 * recomputes every aggregate.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadMnist, splitDataset } from '../../client/data/mnist.js';
import { expectJournalConsistent, startCli, startServer, waitForOutput, type RunningCommand } from '../server/fault-kit.js';
import { writeCsv, writeIdxImages } from '../../simulations/demo-sites.js';

const ROUNDS = 5;

describe('a deployment under faults', () => {
  const processes: RunningCommand[] = [];
  afterEach(() => {
    for (const p of processes) p.process.kill('SIGKILL');
  });

  it('survives a participant and the coordinator killed mid-round: the session resumes and completes every round', { timeout: 300_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'codistill-faults-e2e-'));
    const split = splitDataset(loadMnist(), { test: 0, reference: 200 }, 5);
    const sites = [0, 1, 2];
    for (const k of sites) {
      const rows = Array.from({ length: 400 }, (_, i) => k * 400 + i);
      const x = Float32Array.from(rows.flatMap((r) => Array.from(split.pool.x.subarray(r * 784, (r + 1) * 784))));
      writeCsv(join(dir, `site${k}.csv`), x, Int32Array.from(rows, (r) => split.pool.y[r]!));
    }
    writeIdxImages(join(dir, 'reference-idx3-ubyte'), split.reference.x);
    const tokens = sites.map((k) => `token-site-${k}-0123456789abcdef`);
    writeFileSync(join(dir, 'session.yaml'), [
      'id: faults-e2e', 'algorithm: dml', `rounds: ${ROUNDS}`, 'numClasses: 10', 'referenceSize: 200',
      // All three start the session; two are a quorum, enough to go on (and to resume it).
      'minParticipants: 2',
      'participants:', ...tokens.map((t, k) => `  - { id: site-${k}, token: ${t} }`),
    ].join('\n'));

    const serverArgs = (port: string) => ['--config', join(dir, 'session.yaml'), '--port', port, '--journal', join(dir, 'journal.db'), '--out', join(dir, 'history.json')];
    const first = await startServer(serverArgs('0'));
    processes.push(first);
    const { url } = first;
    const clients = sites.map((k) => {
      const client = startCli(['client', '--server', url, '--session', 'faults-e2e', '--data', join(dir, `site${k}.csv`),
        '--reference', join(dir, 'reference-idx3-ubyte'), '--model', 'mlp', '--seed', String(k + 1), '--out', join(dir, `client${k}.json`)], { CODISTILL_TOKEN: tokens[k]! });
      processes.push(client);
      return client;
    });

    // Round 2 opens as round 1 completes: site-2 dies in it.
    await waitForOutput(first, /round 1\/5: 3 contributors/, 'round 1');
    clients[2]!.process.kill('SIGKILL');
    // Round 3 opens as round 2 completes: the coordinator dies in it.
    await waitForOutput(first, /round 2\/5: /, 'round 2');
    first.process.kill('SIGKILL');
    expect(await first.exited).toBeNull();
    // A SIGKILLed peer's socket ends with a FIN ("transport close") or, with bytes still in flight, a
    // reset ("transport error"); either way the coordinator saw the link die.
    expect(first.output()).toMatch(/site-2 left faults-e2e: transport (close|error)/);

    const second = await startServer(serverArgs(new URL(url).port));
    processes.push(second);
    expect(await second.exited).toBe(0);
    expect(second.output()).toMatch(/session faults-e2e resumed from the journal after round 2 of 5/);
    expect(second.output()).toMatch(/session ended: completed 5 rounds/);
    for (const k of [0, 1]) {
      expect(await clients[k]!.exited).toBe(0);
      const out = clients[k]!.output();
      expect(out).toMatch(/disconnected \(transport (close|error)\); reconnecting/);
      expect(out).toMatch(/session ended: completed 5 rounds/);
      const log = JSON.parse(readFileSync(join(dir, `client${k}.json`), 'utf8')) as { rounds: Array<{ round: number; receivedTarget: boolean; accuracy: number }> };
      expect(log.rounds.map((r) => r.round)).toEqual([1, 2, 3, 4, 5]);
      expect(log.rounds.every((r) => r.receivedTarget)).toBe(true);
      // Real learning went on across the faults: better than chance, and better at the end than after round 1.
      expect(log.rounds[4]!.accuracy).toBeGreaterThan(Math.max(0.3, log.rounds[0]!.accuracy));
    }

    const rounds = expectJournalConsistent(join(dir, 'journal.db'), 'faults-e2e', [], { scripted: false });
    expect(rounds.map((r) => r.round)).toEqual([1, 2, 3, 4, 5]);
    expect([...rounds[0]!.contributors].sort()).toEqual(['site-0', 'site-1', 'site-2']);
    expect(rounds[1]!.contributors).toEqual(expect.arrayContaining(['site-0', 'site-1']));
    for (const r of rounds.slice(2)) {
      expect([...r.contributors].sort()).toEqual(['site-0', 'site-1']);
      expect(Object.keys(r.reports).sort()).toEqual(['site-0', 'site-1']);
    }
  });
});
