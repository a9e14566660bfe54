/**
 * Heterogeneous participants (simulations/groups.ts): `participants` as groups { count, model,
 * role } — validated with a sentence per problem — and a short real mixed run that records every
 * member's model, role and group in result.json, participants.csv and the summary.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { validateExperiment } from '../../simulations/config.js';
import { learnerCount, participantCount, roster } from '../../simulations/groups.js';
import { DEFAULT_OPTIONS, distillerModel, runMembers, type SimulationResult } from '../../simulations/simulate.js';

const run = promisify(execFile);
const CLI = join(import.meta.dirname, '../../dist/simulations/cli.js');

const config = (fields: Record<string, unknown>) => ({ ...DEFAULT_OPTIONS, out: 'x', ...fields });
const got = (value: unknown) => ` (got ${JSON.stringify(value)})`;
const problems = (fields: Record<string, unknown>) => {
  try {
    validateExperiment(config(fields), 'test');
  } catch (error) {
    return (error as Error).message.split('\n').slice(1).map((line) => line.trim());
  }
  return [];
};

describe('participants as groups', () => {
  it('accepts a count or groups, and lays the groups out learners first, then teachers', () => {
    expect(validateExperiment(config({ participants: 3 }), 'test').participants).toBe(3);
    const options = validateExperiment(config({
      algorithm: 'dml', model: 'mlp',
      participants: [{ count: 1, role: 'teacher', model: 'cnn' }, { count: 2, model: 'cnn' }, { count: 2, model: 'mlp:100' }, { count: 1 }],
    }), 'test');
    expect(roster(options).map((m) => [m.id, m.model, m.role, m.group])).toEqual([
      ['p0', 'cnn', 'participant', 1], ['p1', 'cnn', 'participant', 1], ['p2', 'mlp:100', 'participant', 2], ['p3', 'mlp:100', 'participant', 2],
      ['p4', 'mlp', 'participant', 3], ['p5', 'cnn', 'teacher', 0],
    ]);
    expect([participantCount(options), learnerCount(options)]).toEqual([6, 5]);
    // The local-only baseline exchanges nothing: it runs the learners alone.
    expect(runMembers({ ...options, algorithm: 'local' }).map((m) => m.id)).toEqual(['p0', 'p1', 'p2', 'p3', 'p4']);
    // A distiller of mixed groups takes the experiment's model; of one model, that model.
    expect(distillerModel({ ...options, distiller: true })).toBe('mlp');
    expect(distillerModel({ ...options, participants: [{ count: 2, model: 'cnn' }], distiller: true })).toBe('cnn');
    // FedAvg runs groups that share one model.
    expect(problems({ algorithm: 'fedavg', participants: [{ count: 2, model: 'mlp:100' }, { count: 3, model: 'mlp:100' }] })).toEqual([]);
  });

  it('refuses each bad group with a sentence naming the field', () => {
    expect(problems({ participants: [{ count: 0 }, { count: 2 }] })).toEqual(['participants.0.count: must be ≥ 1 (got 0)']);
    expect(problems({ participants: [{ count: 2 }, { count: 2, model: 'resnet' }] })).toEqual(['participants.1.model: must be one of mlp | mlp:H1[,H2…] | cnn (got "resnet")']);
    expect(problems({ participants: [{ count: 2, role: 'distiller' }] })).toEqual([
      'participants.0.role: must be one of participant, teacher (a distiller is the experiment\'s own field, distiller) (got "distiller")',
    ]);
    expect(problems({ participants: [{ count: 2, models: 'cnn' }] })).toEqual(['participants.0: unknown field "models"']);
    expect(problems({ participants: [] })).toEqual(['participants: must list at least one group (got [])']);
    expect(problems({ participants: 'many' })).toEqual(['participants: must be a count (≥ 2) or a list of groups { count, model, role } (got "many")']);
    const few = [{ count: 1 }, { count: 3, role: 'teacher' }];
    expect(problems({ participants: few })).toEqual([`participants: needs at least 2 learners (role participant); the groups hold 1${got(few)}`]);
    const mixed = [{ count: 5, model: 'cnn' }, { count: 5, model: 'mlp:100' }];
    expect(problems({ algorithm: 'fedavg', participants: mixed })).toEqual([
      `participants: FedAvg averages weights: every participant needs the same model (the groups have cnn, mlp:100)${got(mixed)}`,
    ]);
    const taught = [{ count: 2 }, { count: 1, role: 'teacher' }];
    expect(problems({ algorithm: 'local', participants: taught })).toEqual([`participants: local exchanges nothing: a teacher has nothing to contribute${got(taught)}`]);
    expect(problems({ algorithm: 'fedavg', participants: taught })).toEqual([
      `participants: fedavg averages the weights of participants that learn: a teacher's never change, so it would only hold the average back${got(taught)}`,
    ]);
    expect(problems({ algorithm: 'codistillation', participants: taught })).toEqual([
      `participants: codistillation runs asynchronously, where every member trains at its own pace: it takes no teachers${got(taught)}`,
    ]);
    const pooled = [{ count: 2, model: 'cnn' }, { count: 2 }, { count: 1, role: 'teacher' }];
    expect(problems({ algorithm: 'centralized', participants: pooled })).toEqual([
      `participants: centralized trains one model on the pooled shards: every group needs the same model${got(pooled)}`,
      `participants: centralized pools every shard into one learner: it has no teachers${got(pooled)}`,
    ]);
    // Hostile participants are counted among the learners: a teacher does not keep one honest.
    expect(problems({ attack: { kind: 'random', participants: 2 }, participants: taught })).toEqual([
      'attack.participants: must be fewer than participants (2): at least one participant has to stay honest (got 2)',
    ]);
  });

  it('a mixed run with a teacher completes and records each member\'s model, role and group', { timeout: 300_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'codistill-groups-'));
    writeFileSync(join(dir, 'mixed.yaml'), [
      'algorithm: dml', 'rounds: 2', 'seed: 4', 'testSize: 300', 'referenceSize: 100', 'privateSize: 600', 'partition: { kind: iid }',
      'participants:', '  - { count: 1, role: teacher, model: "mlp:100" }', '  - { count: 2, model: cnn }', '  - { count: 2, model: "mlp:32" }',
    ].join('\n'));
    const out = join(dir, 'run');
    const { stdout } = await run('node', [CLI, 'simulate', '--config', join(dir, 'mixed.yaml'), '--no-save', '--out', out], { timeout: 280_000 });
    expect(stdout).toContain('[dml] 4 participants, 1 teacher (2 cnn, 2 mlp:32, 1 mlp:100) in');
    expect(stdout).toMatch(/teacher p4 \(mlp:100\) trained 2 epochs on its shard before round 1: held-out accuracy \d+\.\d%/);
    expect(stdout).toContain('(local exchanges nothing: its run leaves the teachers out)');
    expect(stdout).toMatch(/dml: group 1 \(2 × cnn\) mean \d+\.\d%, group 2 \(2 × mlp:32\) mean \d+\.\d%, teacher p4 \(mlp:100\) \d+\.\d%/);

    const result = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as SimulationResult;
    const [dml, local] = result.runs;
    expect(dml!.members.map((m) => [m.id, m.model, m.role, m.group])).toEqual([
      ['p0', 'cnn', 'participant', 1], ['p1', 'cnn', 'participant', 1], ['p2', 'mlp:32', 'participant', 2], ['p3', 'mlp:32', 'participant', 2], ['p4', 'mlp:100', 'teacher', 0],
    ]);
    expect(dml!.participants).toBe(4);
    expect(dml!.rows.every((r) => r.accuracy.length === 4 && r.contributors === 5)).toBe(true); // the teacher contributes, reports nothing
    expect(dml!.teachers).toHaveLength(1);
    expect(dml!.teachers![0]!.accuracy).toBeGreaterThan(0.3); // an iid shard of 120, trained 2 epochs: well above chance (0.1)
    expect(local!.members.map((m) => m.id)).toEqual(['p0', 'p1', 'p2', 'p3']);
    expect(local!.rows.every((r) => r.contributors === 0 || r.contributors === 4)).toBe(true);

    const csv = readFileSync(join(out, 'participants.csv'), 'utf8').trim().split('\n').map((l) => l.split(','));
    expect(csv[0]).toEqual(['algorithm', 'seed', 'participant', 'group', 'model', 'role', 'held_out_accuracy', 'personalized_accuracy', 'hostile']);
    expect(csv.slice(1).map((r) => r.slice(0, 6).join(' '))).toEqual([
      'dml 4 p0 1 cnn participant', 'dml 4 p1 1 cnn participant', 'dml 4 p2 2 mlp:32 participant', 'dml 4 p3 2 mlp:32 participant', 'dml 4 p4 0 mlp:100 teacher',
      'local 4 p0 1 cnn participant', 'local 4 p1 1 cnn participant', 'local 4 p2 2 mlp:32 participant', 'local 4 p3 2 mlp:32 participant',
    ]);
    expect(Number(csv[1]![6])).toBe(dml!.rows.at(-1)!.accuracy[0]);
    expect(Number(csv[5]![6])).toBe(dml!.teachers![0]!.accuracy);
  });
});
