/**
 * Saved students (client/student-io): real tfjs on wasm, real files in a temp folder, and the
 * files read back with plain tfjs (model.json + weight files → tf.io.fromMemory →
 * tf.loadLayersModel), not with codistill's reader alone.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../client/backend.js';
import { subset, type LabeledDataset } from '../../client/data/dataset.js';
import { loadMnist, splitDataset } from '../../client/data/mnist.js';
import { createModel } from '../../client/models.js';
import { Student } from '../../client/student.js';
import {
  exportStudent, loadStudent, preprocessingOf, probeSaveDir, readStudent, saveStudent, toFloat16Bits, type CardFacts,
} from '../../client/student-io/index.js';

/** What any tfjs program without codistill does: read model.json and its weight files, hand them to tfjs. */
async function loadWithPlainTfjs(dir: string): Promise<tf.LayersModel> {
  const json = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')) as tf.io.ModelJSON;
  const buffers = json.weightsManifest.flatMap((g) => g.paths.map((p) => readFileSync(join(dir, p))));
  return tf.loadLayersModel(tf.io.fromMemory({
    modelTopology: json.modelTopology,
    weightSpecs: json.weightsManifest.flatMap((g) => g.weights),
    weightData: new Uint8Array(Buffer.concat(buffers)).buffer,
  }));
}

function predictions(model: tf.LayersModel, data: LabeledDataset): Float32Array {
  return tf.tidy(() => model.predict(tf.tensor(data.x, [data.y.length, ...data.sampleShape])) as tf.Tensor).dataSync() as Float32Array;
}

function accuracy(model: tf.LayersModel, data: LabeledDataset): number {
  const logits = predictions(model, data);
  let correct = 0;
  for (let i = 0; i < data.y.length; i++) {
    const row = Array.from(logits.subarray(i * 10, i * 10 + 10));
    if (row.indexOf(Math.max(...row)) === data.y[i]) correct++;
  }
  return correct / data.y.length;
}

const facts = (x: Float32Array): CardFacts => ({
  task: 'classification',
  classes: { count: 10 },
  input: { shape: [28, 28, 1], dtype: 'float32', preprocessing: preprocessingOf(x, 255, 'MNIST (embedded)') },
  architecture: 'mlp',
  training: { algorithm: 'local', data: { source: 'mnist test fixture', hash: 'test' }, seed: 3 },
  metrics: {},
  backend: 'wasm',
});

describe('saved students', () => {
  let root: string;
  let student: Student;
  let test: LabeledDataset;
  let train: LabeledDataset;
  let good: string;

  beforeAll(async () => {
    expect(await selectBackend('wasm')).toBe('wasm');
    root = mkdtempSync(join(tmpdir(), 'codistill-student-io-'));
    const split = splitDataset(loadMnist(), { test: 2000, reference: 0 }, 3);
    test = split.test;
    train = subset(split.pool, Array.from({ length: 2000 }, (_, i) => i));
    student = new Student(createModel({ name: 'mlp', inputShape: [28, 28, 1], numClasses: 10, seed: 3 }), { sampleShape: [28, 28, 1], numClasses: 10, learningRate: 1e-3, seed: 3 });
    await student.train({ labeled: train }, { epochs: 2, batchSize: 32, alpha: 1, temperature: 1 });
    good = join(root, 'students', 'p0');
    saveStudent(good, student.model, facts(train.x));
  });
  afterAll(() => student.dispose());

  it('saves model.json, weights, card.json and README.md that plain tfjs loads with the same predictions, bit for bit', async () => {
    expect(readdirSync(good).sort()).toEqual(['README.md', 'card.json', 'group1-shard1of1.bin', 'model.json']);
    const loaded = await loadWithPlainTfjs(good);
    expect(Buffer.from(predictions(loaded, test).buffer)).toEqual(Buffer.from(predictions(student.model, test).buffer));
    loaded.dispose();
    const card = JSON.parse(readFileSync(join(good, 'card.json'), 'utf8'));
    expect(card.classes.count).toBe(10);
    expect(card.input).toMatchObject({ shape: [28, 28, 1], preprocessing: { u8Divisor: 255, featureRange: [0, 1] } });
    expect(card.model.parameters).toBe(784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10);
    expect(card.weights.dtype).toBe('float32');
    expect(card.weights.bytes).toBe(4 * card.model.parameters);
    expect(card.provenance.tfjs).toBe('4.22.0');
    expect(card.provenance.codistill).toMatch(/^\d+\.\d+\.\d+/);
    expect(readFileSync(join(good, 'README.md'), 'utf8')).toMatch(/outputs \*\*logits\*\*/);
    // Nothing left beside it.
    expect(readdirSync(dirname(good))).toEqual(['p0']);
  });

  it('quantises as tfjs-converter does: float16 half the size, uint8 a quarter within 0.5 points, both loaded by plain tfjs', async () => {
    const base = accuracy(student.model, test);
    for (const [dtype, ratio, bound] of [['float16', 0.5, 0.001], ['uint8', 0.25, 0.005]] as const) {
      const out = join(root, `q-${dtype}`);
      const { fromBytes, toBytes } = exportStudent(good, out, dtype);
      expect(toBytes / fromBytes).toBe(ratio);
      expect(statSync(join(out, 'group1-shard1of1.bin')).size).toBe(toBytes);
      const json = JSON.parse(readFileSync(join(out, 'model.json'), 'utf8')) as tf.io.ModelJSON;
      expect(json.weightsManifest[0]!.weights[0]!.quantization?.dtype).toBe(dtype);
      const loaded = await loadWithPlainTfjs(out);
      expect(Math.abs(accuracy(loaded, test) - base)).toBeLessThanOrEqual(bound);
      loaded.dispose();
      expect(JSON.parse(readFileSync(join(out, 'card.json'), 'utf8')).weights.dtype).toBe(dtype);
    }
  });

  it('encodes float16 like IEEE binary16 (round to nearest even)', () => {
    expect([1, -2, 65504, 65520, 1e-8, 5.960464477539063e-8, 0.1, 1 + 2 ** -11, 1 + 3 * 2 ** -11].map(toFloat16Bits))
      .toEqual([0x3c00, 0xc000, 0x7bff, 0x7c00, 0, 1, 0x2e66, 0x3c00, 0x3c02]);
  });

  it('a save that fails mid-write (a write that throws, a process killed) leaves the previous student intact', async () => {
    const before = readFileSync(join(good, 'group1-shard1of1.bin'));
    const other = createModel({ name: 'mlp', inputShape: [28, 28, 1], numClasses: 10, seed: 99 });
    expect(() => saveStudent(good, other, facts(train.x), { afterFile: (name) => { if (name === 'model.json') throw new Error('disk full (injected)'); } }))
      .toThrow(/E_SAVE: could not save the student to .*p0 \(disk full \(injected\)\); the student saved there before is unchanged/);
    other.dispose();
    expect(readFileSync(join(good, 'group1-shard1of1.bin'))).toEqual(before);
    expect(readdirSync(dirname(good))).toEqual(['p0']);

    // A real crash: a child process saving over the same folder kills itself after the weights file.
    const script = join(root, 'crash.mjs');
    const io = join(import.meta.dirname, '../../dist/client/student-io/index.js');
    writeFileSync(script, `import { readStudent, writeStudent } from ${JSON.stringify(io)};
const a = readStudent(process.argv[2]);
new Uint8Array(a.weightData).fill(7);
writeStudent(process.argv[2], a, a.card, { afterFile: (name) => { if (name.endsWith('.bin')) process.kill(process.pid, 'SIGKILL'); } });
`);
    expect(() => execFileSync('node', [script, good], { stdio: 'pipe' })).toThrow();
    expect(readFileSync(join(good, 'group1-shard1of1.bin'))).toEqual(before);
    const loaded = await loadStudent(good);
    expect(Buffer.from(predictions(loaded.model, test).buffer)).toEqual(Buffer.from(predictions(student.model, test).buffer));
    loaded.model.dispose();
    // The crashed save's partial folder is beside it, hidden; the student is whole.
    expect(readdirSync(dirname(good)).filter((n) => n.includes('.partial-'))).toHaveLength(1);
  });

  it('refuses a save folder it cannot use before anything trains', () => {
    const file = join(root, 'a-file');
    writeFileSync(file, 'x');
    expect(() => probeSaveDir(file)).toThrow(/E_SAVE: .*a-file is a file/);
    expect(() => probeSaveDir(join(file, 'below'))).toThrow(/E_SAVE: cannot write the student to .*a-file\/below: EEXIST: file already exists, mkdir/);
    const documents = join(root, 'documents');
    mkdirSync(documents);
    writeFileSync(join(documents, 'thesis.txt'), 'precious');
    expect(() => probeSaveDir(documents)).toThrow(/E_SAVE: .*documents holds files that are not a saved student \(thesis\.txt\)/);
    expect(() => probeSaveDir(good)).not.toThrow();
    expect(() => probeSaveDir(join(root, 'new', 'deep', 'p1'))).not.toThrow();
  });

  describe('bad input: one message naming the file and what is wrong', () => {
    const copy = (name: string) => {
      const dir = join(root, 'bad', name);
      mkdirSync(dir, { recursive: true });
      for (const f of readdirSync(good)) writeFileSync(join(dir, f), readFileSync(join(good, f)));
      return dir;
    };
    const editJson = (path: string, edit: (j: Record<string, any>) => void) => {
      const j = JSON.parse(readFileSync(path, 'utf8'));
      edit(j);
      writeFileSync(path, JSON.stringify(j));
    };

    it('a truncated weight file', async () => {
      const dir = copy('truncated');
      const bin = join(dir, 'group1-shard1of1.bin');
      writeFileSync(bin, readFileSync(bin).subarray(0, 1000));
      await expect(loadStudent(dir)).rejects.toThrow(new RegExp(`E_WEIGHTS: ${bin}: 1000 bytes, but .*model\\.json's weightsManifest needs 940584 for its 6 weights \\(truncated`));
    });

    it('a corrupt weight file: caught by the card\'s hash, and by its values without a card', async () => {
      const dir = copy('corrupt');
      const bin = join(dir, 'group1-shard1of1.bin');
      const bytes = readFileSync(bin);
      bytes.fill(0xff, 4000, 4008); // two float32 NaNs
      writeFileSync(bin, bytes);
      await expect(loadStudent(dir)).rejects.toThrow(/E_WEIGHTS: .*corrupt\/group1-shard1of1\.bin: weight dense_Dense\d+\/kernel holds NaN at index 1000; the file is corrupt/);
      bytes.fill(0x11, 4000, 4008); // finite garbage: only the hash can tell
      writeFileSync(bin, bytes);
      await expect(loadStudent(dir)).rejects.toThrow(/E_WEIGHTS: .*corrupt\/group1-shard1of1\.bin: its sha256 differs from the one .*card\.json recorded/);
      writeFileSync(join(dir, 'group1-shard1of1.bin'), readFileSync(join(good, 'group1-shard1of1.bin')));
      writeFileSync(join(dir, 'group1-shard1of1.bin'), Buffer.alloc(0));
      await expect(loadStudent(dir)).rejects.toThrow(/E_WEIGHTS: .*0 bytes/);
    });

    it('a missing weight file', async () => {
      const dir = copy('missing');
      execFileSync('rm', [join(dir, 'group1-shard1of1.bin')]);
      await expect(loadStudent(dir)).rejects.toThrow(/E_WEIGHTS: .*missing\/group1-shard1of1\.bin: no such file \(listed in .*model\.json's weightsManifest\)/);
    });

    it('a model.json that is not a layers model, or not JSON', async () => {
      const dir = copy('graph');
      editJson(join(dir, 'model.json'), (j) => {
        j.format = 'graph-model';
        j.modelTopology = { node: [], library: {}, versions: {} };
      });
      await expect(loadStudent(dir)).rejects.toThrow(/E_MODEL: .*graph\/model\.json is a tfjs graph model .* not a layers model/);
      writeFileSync(join(dir, 'model.json'), '{"modelTopology": {"config": {}}, "weightsManifest": []}');
      await expect(loadStudent(dir)).rejects.toThrow(/E_MODEL: .*graph\/model\.json is not a tfjs layers model: its modelTopology has no class_name/);
      writeFileSync(join(dir, 'model.json'), 'PK\u0003\u0004 a zip file');
      await expect(loadStudent(dir)).rejects.toThrow(/E_MODEL: .*graph\/model\.json is not a tfjs model\.json: it is not JSON/);
      await expect(loadStudent(join(root, 'nowhere'))).rejects.toThrow(/E_MODEL: .*nowhere\/model\.json: no such file/);
    });

    it('a card whose classes or input disagree with the model', async () => {
      const dir = copy('card');
      editJson(join(dir, 'card.json'), (j) => (j.classes.count = 9));
      await expect(loadStudent(dir)).rejects.toThrow(/E_CARD: .*card\/card\.json says 9 classes; the model in .*card\/model\.json outputs 10; the card does not describe this model/);
      editJson(join(dir, 'card.json'), (j) => {
        j.classes.count = 10;
        j.input.shape = [784];
      });
      await expect(loadStudent(dir)).rejects.toThrow(/E_CARD: .*says input shape \[784\]; the model in .* takes \[28, 28, 1\]/);
      writeFileSync(join(dir, 'card.json'), '{"hello": 1}');
      await expect(loadStudent(dir)).rejects.toThrow(/E_CARD: .*card\/card\.json is not a codistill model card/);
    });

    it('a quantised file with a missing scale', async () => {
      const dir = join(root, 'bad', 'noscale');
      exportStudent(good, dir, 'uint8');
      editJson(join(dir, 'model.json'), (j) => delete j.weightsManifest[0].weights[2].quantization.scale);
      await expect(loadStudent(dir)).rejects.toThrow(/E_WEIGHTS: .*noscale\/model\.json: weight dense_Dense\d+\/kernel is quantised as uint8 but has no valid scale; it cannot be dequantised/);
    });

    it('a failed save or export overwrites nothing', () => {
      const target = join(root, 'documents');
      expect(() => exportStudent(good, target, 'uint8')).toThrow(/E_SAVE: .*documents holds files that are not a saved student/);
      expect(readFileSync(join(target, 'thesis.txt'), 'utf8')).toBe('precious');
      expect(existsSync(join(target, 'model.json'))).toBe(false);
    });
  });
});
