/**
 * `codistill simulate --plan`: the plan written without training, then run as separate processes
 * — `codistill server` on the plan's session file and one `codistill client --partition PLAN#i`
 * per member — completes, and computes what the in-process simulation of the same config and seed
 * computes, bit for bit: every learner's held-out accuracy each round, and the ensemble (its digest)
 * every target comes from. Both run the same seeds, shards (float32 IDX, read back exactly),
 * reference rows and aggregation order (contributions sorted by participant id), so nothing may
 * differ; a mixed-model group and a teacher are among the members.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { readPartition, shardDigest } from '../../client/cli.js';
import { readSessionConfig } from '../../server/cli.js';
import type { SimulationResult } from '../../simulations/simulate.js';
import { startCli, startServer } from '../server/fault-kit.js';

const run = promisify(execFile);
const CLI = join(import.meta.dirname, '../../dist/simulations/cli.js');

const CONFIG = `algorithm: dml
participants:
  - { count: 2, model: "mlp:100" }
  - { count: 1, model: "mlp:32" }
  - { count: 1, role: teacher, model: "mlp:100" }
rounds: 2
partition: { kind: dirichlet, alpha: 0.3 }
seed: 3
testSize: 300
referenceSize: 100
privateSize: 600
baseline: false
`;

describe('simulate --plan and client --partition', () => {
  it('a planned run across processes equals the in-process simulation, bit for bit', { timeout: 400_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'codistill-plan-'));
    writeFileSync(join(dir, 'config.yaml'), CONFIG);
    const plan = join(dir, 'plan');
    const written = await run('node', [CLI, 'simulate', '--config', join(dir, 'config.yaml'), '--plan', plan, '--plan-server', 'http://127.0.0.1:8443'], { timeout: 120_000 });
    expect(written.stdout).toContain(`plan written to ${plan}/: session sim-dml-3 (dml, 2 rounds), 4 members (p0 mlp:100, p1 mlp:100, p2 mlp:32, p3 mlp:100 teacher)`);

    // What the plan holds: the session file the server reads, one launch line per member, the README's three ways.
    const session = readSessionConfig(join(plan, 'session.json'));
    expect(session.participants.map((p) => [p.id, p.role])).toEqual([['p0', undefined], ['p1', undefined], ['p2', undefined], ['p3', 'teacher']]);
    expect(session.minParticipants).toBe(4);
    expect(readFileSync(join(plan, 'launch.txt'), 'utf8').trim().split('\n')).toEqual([0, 1, 2, 3].map((i) => `codistill client --partition ${plan}#${i} --server http://127.0.0.1:8443`));
    const readme = readFileSync(join(plan, 'README.txt'), 'utf8');
    for (const way of [`--partition ${plan}#$SLURM_ARRAY_TASK_ID`, `--partition ${plan}#$JOB_COMPLETION_INDEX`, 'ssh -n', `codistill server --config ${plan}/session.json`]) expect(readme).toContain(way);
    expect(statSync(join(plan, 'session.json')).mode & 0o077).toBe(0); // tokens: the owner's only
    const teacher = readPartition(`${plan}#3`);
    expect(teacher.member).toMatchObject({ id: 'p3', role: 'teacher', model: 'mlp:100', seed: 3003, pretrainEpochs: 2 });
    expect(shardDigest(teacher.train)).toBe(teacher.member.sha256);
    expect(teacher.test.y.length).toBe(300);

    const server = await startServer(['--config', join(plan, 'session.json'), '--port', '0', '--out', join(plan, 'history.json')]);
    // --server overrides the plan's URL: the coordinator listens on a port of its own choosing.
    const clients = [0, 1, 2, 3].map((i) => startCli(['client', '--partition', `${plan}#${i}`, '--server', server.url]));
    const codes = await Promise.all(clients.map((c) => c.exited));
    expect(codes, clients.map((c) => c.output()).join('\n----\n')).toEqual([0, 0, 0, 0]);
    expect(await server.exited).toBe(0);
    expect(clients[3]!.output()).toMatch(/teacher: trained 2 epochs on its shard before joining/);
    expect(server.output()).toMatch(/round 2\/2: 4 contributors, 3 reports/);

    const out = join(dir, 'in-process');
    await run('node', [CLI, 'simulate', '--config', join(dir, 'config.yaml'), '--no-save', '--out', out], { timeout: 300_000 });
    const [simulated] = (JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as SimulationResult).runs;
    const history = JSON.parse(readFileSync(join(plan, 'history.json'), 'utf8')) as { rounds: Array<{ ensembleDigest: string | null; contributors: string[] }> };
    expect(simulated!.rows.map((r) => r.ensembleDigest)).toEqual(history.rounds.map((r) => r.ensembleDigest));
    expect(history.rounds.every((r) => r.ensembleDigest !== null && r.contributors.length === 4)).toBe(true);
    for (const i of [0, 1, 2]) {
      const log = JSON.parse(readFileSync(join(plan, `p${i}`, 'rounds.json'), 'utf8')) as { rounds: Array<{ round: number; accuracy: number }> };
      expect(log.rounds.map((r) => r.accuracy)).toEqual(simulated!.rows.map((row) => row.accuracy[i]));
    }
    expect(statSync(join(plan, 'p0', 'student', 'model.json')).isFile()).toBe(true);
  });

  it('refuses what cannot be planned or read, with the reason', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'codistill-plan-'));
    const fail = (args: string[]) => run('node', [CLI, ...args], { timeout: 120_000 }).then(() => '', (e: { stderr: string }) => e.stderr);
    expect(await fail(['simulate', '--algorithm', 'centralized', '--plan', join(dir, 'c')])).toMatch(/--plan: centralized pools every shard into one process/);
    expect(await fail(['simulate', '--attack', 'random', '--plan', join(dir, 'a')])).toMatch(/--plan: attacks are simulated in process/);
    expect(await fail(['simulate', '--plan-server', 'http://h:1'])).toMatch(/--plan-server goes with --plan DIR/);
    writeFileSync(join(dir, 'config.yaml'), CONFIG);
    const plan = join(dir, 'plan');
    await run('node', [CLI, 'simulate', '--config', join(dir, 'config.yaml'), '--plan', plan], { timeout: 120_000 });
    expect(await fail(['simulate', '--config', join(dir, 'config.yaml'), '--plan', plan])).toMatch(/--plan .* is not empty/);
    expect(() => readPartition(plan)).toThrow(/--partition must be PLAN#i/);
    expect(() => readPartition(`${plan}#4`)).toThrow(/the plan has members 0 to 3; there is no member 4/);
    expect(() => readPartition(`${dir}#0`)).toThrow(/cannot read the plan .*plan\.json: no such file/);
    // A shard altered after the plan was written is refused, not trained on.
    const labels = join(plan, 'p1', 'train-labels-idx1-ubyte');
    const bytes = readFileSync(labels);
    bytes[8] = (bytes[8]! + 1) % 10;
    writeFileSync(labels, bytes);
    expect(() => readPartition(`${plan}#1`)).toThrow(/E_DATA: --partition .*#1: the shard in .* has sha256 .*; the plan wrote/);
  });
});
