/**
 * `codistill client` keeps its student: each site's trained model is saved (default folder per
 * session and participant, or --save, quantised, with checkpoints), loads with plain tfjs, and
 * starts another session warm (--model DIR or a custom model.json). A site whose data lacks the
 * highest class still joins, and two clients in one folder keep separate round logs.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../client/backend.js';
import { loadMnist, splitDataset } from '../../client/data/mnist.js';
import { modelArtifacts, writeStudent, type ModelCard } from '../../client/student-io/index.js';
import { startServer } from '../server/fault-kit.js';
import { writeCsv, writeIdxImages } from '../../simulations/demo-sites.js';

const CLI = join(import.meta.dirname, '../../dist/simulations/cli.js');
const run = promisify(execFile);

async function loadWithPlainTfjs(dir: string): Promise<tf.LayersModel> {
  const json = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')) as tf.io.ModelJSON;
  const buffers = json.weightsManifest.flatMap((g) => g.paths.map((p) => readFileSync(join(dir, p))));
  return tf.loadLayersModel(tf.io.fromMemory({ modelTopology: json.modelTopology, weightSpecs: json.weightsManifest.flatMap((g) => g.weights), weightData: new Uint8Array(Buffer.concat(buffers)).buffer }));
}

describe('codistill client keeps its student', () => {
  const dir = mkdtempSync(join(tmpdir(), 'codistill-client-student-'));
  const split = splitDataset(loadMnist(), { test: 0, reference: 200 }, 21);
  /** 400 rows from the pool; site 0 has no digit 9 (label skew). */
  const site = (k: number) => {
    const rows: number[] = [];
    for (let r = k * 1000; rows.length < 400; r++) if (k !== 0 || split.pool.y[r] !== 9) rows.push(r);
    return { x: Float32Array.from(rows.flatMap((r) => Array.from(split.pool.x.subarray(r * 784, (r + 1) * 784)))), y: Int32Array.from(rows, (r) => split.pool.y[r]!) };
  };
  const session = (id: string, algorithm: string, rounds: number, tokens: string[]) => {
    const path = join(dir, `${id}.yaml`);
    writeFileSync(path, [`id: ${id}`, `algorithm: ${algorithm}`, `rounds: ${rounds}`, 'numClasses: 10', 'referenceSize: 200',
      'participants:', ...tokens.map((t, k) => `  - { id: site-${k}, token: ${t} }`)].join('\n'));
    return path;
  };
  const client = (url: string, id: string, token: string, args: string[]) =>
    run('node', [CLI, 'client', '--server', url, '--session', id, '--reference', join(dir, 'reference-idx3-ubyte'), ...args],
      { cwd: dir, env: { ...process.env, CODISTILL_TOKEN: token }, timeout: 300_000 });
  let outputs: Array<{ stdout: string; stderr: string }>;
  const tokens = ['token-site-0-0123456789abcdef', 'token-site-1-0123456789abcdef'];

  beforeAll(async () => {
    await selectBackend('wasm');
    for (const k of [0, 1]) writeCsv(join(dir, `site${k}.csv`), site(k).x, site(k).y);
    writeIdxImages(join(dir, 'reference-idx3-ubyte'), split.reference.x);
    const server = await startServer(['--config', session('skew', 'dml', 2, tokens), '--port', '0', '--out', join(dir, 'history.json')]);
    outputs = await Promise.all([
      client(server.url, 'skew', tokens[0]!, ['--data', 'site0.csv', '--model', 'mlp', '--backend', 'wasm']),
      client(server.url, 'skew', tokens[1]!, ['--data', 'site1.csv', '--model', 'mlp', '--backend', 'wasm', '--save', 'mine/site1', '--quantize', 'float16', '--checkpoint-every', '1']),
    ]);
    await server.exited;
  }, 400_000);

  it('a site without the highest class joins with the session\'s 10 classes', () => {
    const [site0] = outputs;
    // Built once the session named its classes: one join, all 10 outputs, though the data stops at 8.
    expect(site0!.stdout).toMatch(/model mlp \(\d+ parameters, 10 classes\)/);
    expect(site0!.stdout.match(/joined skew as/g)).toHaveLength(1);
    expect(site0!.stdout).toMatch(/session ended: completed 2 rounds/);
  });

  it('two clients in one folder write their own round logs', () => {
    for (const k of [0, 1]) {
      const log = JSON.parse(readFileSync(join(dir, `codistill-client-skew-site-${k}.json`), 'utf8')) as { participant: string; rounds: unknown[] };
      expect(log.participant).toBe(`site-${k}`);
      expect(log.rounds).toHaveLength(2);
    }
  });

  it('saves each student where told, as a layers model plain tfjs loads, with its card', async () => {
    const [site0, site1] = outputs;
    const default0 = join(dir, 'students', 'skew', 'site-0');
    expect(site0!.stdout).toContain(`student saved to ${join('students', 'skew', 'site-0')} (float32 weights, 940,584 bytes`);
    expect(site1!.stdout).toContain('checkpoint after round 1: student saved to mine/site1');
    expect(site1!.stdout).toContain('student saved to mine/site1 (float16 weights, 470,292 bytes');
    const card = JSON.parse(readFileSync(join(default0, 'card.json'), 'utf8')) as ModelCard;
    expect(card.classes.count).toBe(10);
    expect(card.training).toMatchObject({ session: 'skew', participant: 'site-0', algorithm: 'dml', rounds: 2, trainSamples: 360, seed: 1 });
    expect(card.input.preprocessing.u8Divisor).toBe(1);
    const log = JSON.parse(readFileSync(join(dir, 'codistill-client-skew-site-0.json'), 'utf8')) as { rounds: Array<{ accuracy: number }> };
    expect(card.metrics.validation).toEqual({ accuracy: log.rounds[1]!.accuracy, samples: 40 });
    expect(card.training).not.toHaveProperty('status');
    for (const folder of [default0, join(dir, 'mine', 'site1')]) {
      const model = await loadWithPlainTfjs(folder);
      expect(model.outputs[0]!.shape).toEqual([null, 10]);
      model.dispose();
    }
    expect((JSON.parse(readFileSync(join(dir, 'mine', 'site1', 'card.json'), 'utf8')) as ModelCard).weights.dtype).toBe('float16');
  });

  it('starts another session warm from a saved student folder, and from a custom model.json', async () => {
    // A custom model someone built elsewhere: no card, a different architecture.
    const custom = tf.sequential({ layers: [tf.layers.flatten({ inputShape: [28, 28, 1] }), tf.layers.dense({ units: 32, activation: 'relu' }), tf.layers.dense({ units: 10 })] });
    mkdirSync(join(dir, 'custom'));
    writeStudent(join(dir, 'custom', 'net'), modelArtifacts(custom), undefined);
    custom.dispose();
    expect(existsSync(join(dir, 'custom', 'net', 'card.json'))).toBe(false);

    const server = await startServer(['--config', session('warm', 'local', 1, tokens), '--port', '0', '--out', join(dir, 'history-warm.json')]);
    // A learning rate of 1e-9 leaves the weights as they were: the accuracy is the saved student's.
    const [warm, own] = await Promise.all([
      client(server.url, 'warm', tokens[0]!, ['--data', 'site1.csv', '--model', join('students', 'skew', 'site-0'), '--lr', '1e-9', '--backend', 'wasm', '--no-save']),
      client(server.url, 'warm', tokens[1]!, ['--data', 'site1.csv', '--model', join('custom', 'net', 'model.json'), '--backend', 'wasm', '--save', 'custom-trained']),
    ]);
    await server.exited;
    expect(warm.stdout).toMatch(/model students\/skew\/site-0 \(235146 parameters, 10 classes, warm start\)/);
    const accuracy = Number(/round 1: .*validation accuracy (\d+\.\d)%/.exec(warm.stdout)![1]);
    expect(accuracy).toBeGreaterThan(50);
    expect(existsSync(join(dir, 'students', 'warm'))).toBe(false);
    expect(own.stdout).toMatch(/model custom\/net\/model\.json \(25450 parameters, 10 classes, warm start\)/);
    const card = JSON.parse(readFileSync(join(dir, 'custom-trained', 'card.json'), 'utf8')) as ModelCard;
    expect(card.model).toMatchObject({ architecture: 'custom model.json (warm-started from custom/net/model.json)', parameters: 25450 });
  });

  it('refuses a save folder it cannot write, and a model whose classes do not fit, before training', async () => {
    writeFileSync(join(dir, 'a-file'), 'x');
    const fail = (args: string[]) => client('http://127.0.0.1:9', 'x', 't', args).then(() => '', (e: { stderr: string }) => e.stderr);
    expect(await fail(['--data', 'site1.csv', '--model', 'mlp', '--save', 'a-file'])).toMatch(/E_SAVE: a-file is a file/);
    expect(await fail(['--data', 'site1.csv', '--model', 'mlp', '--classes', '9'])).toMatch(/E_CSV_LABEL: site1\.csv line \d+, column 1 \("label"\): label 9 is outside \[0, 9\)/);
    expect(await fail(['--data', 'site1.csv', '--model', join('custom', 'net'), '--classes', '9'])).toMatch(/--classes 9, but the model at --model custom\/net outputs 10 classes/);
    expect(await fail(['--data', 'site1.csv', '--model', 'nowhere'])).toMatch(/E_MODEL: nowhere\/model\.json: no such file/);
  });
});
