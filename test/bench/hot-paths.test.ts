/**
 * The performance fixes the benchmarks called for must not change behaviour: the same sums to
 * the bit, the same bytes on the wire, the same round semantics, the same predictions. Timing is
 * the benchmark's business (npm run bench), never a unit test's.
 */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { selectBackend } from '../../client/backend.js';
import { createModel } from '../../client/models.js';
import { Student } from '../../client/student.js';
import { clientMessages, decodeMessage, encodeMessage, packTensor, PROTOCOL_VERSION, readContribution, type WireTensor } from '../../protocol/index.js';
import { leaveOneOutMeans, meanOf, sumOf } from '../../server/aggregators/sums.js';
import { Session, type PeerLink, type SessionConfig } from '../../server/session.js';

function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32;
}

/** Awkward float32 values: signed zeros, subnormals, huge and tiny magnitudes, ordinary ones. */
function awkwardVectors(n: number, length: number, seed: number): Float32Array[] {
  const rand = seeded(seed);
  const specials = [0, -0, 1e-45, -1e-45, 3.4e38, -3.4e38, 1e-30, 1, 1 / 3];
  return Array.from({ length: n }, () => Float32Array.from({ length }, () => (rand() < 0.3 ? specials[Math.floor(rand() * specials.length)]! : (rand() - 0.5) * 10 ** Math.floor(rand() * 8 - 4))));
}

/** The one-vector-per-pass float64 sum that sumOf replaced. */
function referenceSum(vectors: Float32Array[]): Float64Array {
  const sum = new Float64Array(vectors[0]!.length);
  for (const v of vectors) for (let i = 0; i < v.length; i++) sum[i]! += v[i]!;
  return sum;
}

const bits = (a: Float32Array | Float64Array) => Array.from(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));

describe('aggregation, four vectors per pass', () => {
  it('sums bit for bit like one vector per pass, signed zeros included, for any count of vectors', () => {
    for (const n of [1, 2, 3, 4, 5, 7, 8, 9, 13]) {
      const vectors = awkwardVectors(n, 257, n);
      expect(bits(sumOf(vectors)), `n=${n}`).toEqual(bits(referenceSum(vectors)));
      const mean = Float32Array.from(referenceSum(vectors), (s) => s / n);
      expect(bits(meanOf(vectors)), `n=${n}`).toEqual(bits(mean));
      if (n >= 2) {
        const sum = referenceSum(vectors);
        leaveOneOutMeans(vectors).forEach((target, k) => {
          expect(bits(target), `n=${n}, k=${k}`).toEqual(bits(Float32Array.from(sum, (s, i) => (s - vectors[k]![i]!) / (n - 1))));
        });
      }
    }
  });

  it('still refuses vectors of different lengths, naming both', () => {
    expect(() => sumOf([new Float32Array(4), new Float32Array(4), new Float32Array(4), new Float32Array(4), new Float32Array(3)])).toThrow(/lengths 4 and 3/);
  });
});

describe('packTensor without a copy', () => {
  it('writes the same bytes as with one, as a view of the values', () => {
    const values = Float32Array.from({ length: 60 }, (_, i) => i / 7);
    const copied = packTensor(values, [6, 10], 'float32');
    const viewed = packTensor(values, [6, 10], 'float32', { copy: false });
    expect(Array.from(viewed.data)).toEqual(Array.from(copied.data));
    expect(viewed.shape).toEqual([6, 10]);
    values[0] = 42;
    expect(new Float32Array(viewed.data.buffer, viewed.data.byteOffset, 1)[0]).toBe(42);
    expect(new Float32Array(copied.data.slice(0, 4).buffer)[0]).toBe(0);
  });

  it('checks the values all the same', () => {
    expect(() => packTensor(new Float32Array([1, Number.NaN]), [2], 'float32', { copy: false })).toThrow(/E_VALUE: tensor value at index 1 is NaN/);
    expect(() => packTensor(new Float32Array(3), [2], 'float32', { copy: false })).toThrow(/E_SHAPE/);
  });
});

describe('a round waits for every connected participant, with the constant-time check', () => {
  const ids = ['p0', 'p1', 'p2'];
  const config: SessionConfig = {
    id: 's', algorithm: 'dml', rounds: 2, participants: ids.map((id) => ({ id, token: `t-${id}` })), minParticipants: 2,
    numClasses: 2, referenceSize: 2, referencePerRound: 2, temperature: 1, alpha: 0.5, uploadDtype: 'float32',
    roundTimeoutMs: 60_000, trainTimeoutMs: 60_000, onRoundFailure: 'continue', seed: 1, maxMessageBytes: 1 << 20,
  };
  const upload = (session: Session, participant: string, values: number[]) => {
    const predictions: WireTensor = packTensor(Float32Array.from(values), [2, 2], 'float32');
    const bytes = encodeMessage(clientMessages.upload, { v: PROTOCOL_VERSION, session: 's', round: 1, participant, kind: 'reference-predictions', values: predictions });
    const message = decodeMessage(clientMessages.upload, bytes);
    const expectation = session.expectUpload(participant, message.round);
    if (expectation !== null) session.upload(participant, message.round, readContribution(participant, message, expectation), bytes.byteLength);
  };

  it('counts a participant that left and came back as owing its upload, and one that left for good as not', async () => {
    const session = new Session(config);
    const targets: string[] = [];
    const link = (id: string): PeerLink => ({ send: (event) => (event === 'target' && targets.push(id), 0) });
    for (const id of ids) session.join(id, link(id));
    await new Promise((resolve) => setImmediate(resolve));
    expect(session.currentRound).toBe(1);

    upload(session, 'p0', [0.5, 0.5, 0.2, 0.8]);
    session.leave('p1');
    session.join('p1', link('p1')); // back before the round is aggregated: it owes an upload again
    upload(session, 'p2', [0.6, 0.4, 0.3, 0.7]);
    expect(targets).toEqual([]); // p1 is connected and has not uploaded
    upload(session, 'p1', [0.1, 0.9, 0.5, 0.5]);
    expect(targets.sort()).toEqual(['p0', 'p1', 'p2']);
    session.end('test over');
  });

  it('aggregates as soon as the last participant still connected uploads', async () => {
    const session = new Session(config);
    const targets: string[] = [];
    for (const id of ids) session.join(id, { send: (event) => (event === 'target' && targets.push(id), 0) });
    await new Promise((resolve) => setImmediate(resolve));
    upload(session, 'p0', [0.5, 0.5, 0.2, 0.8]);
    upload(session, 'p2', [0.6, 0.4, 0.3, 0.7]);
    expect(targets).toEqual([]);
    session.leave('p1'); // gone for good: nobody waits for it
    expect(targets.sort()).toEqual(['p0', 'p2']);
    session.end('test over');
  });
});

describe('Student.predict in one batch per 512 rows', () => {
  it('gives model.predict\'s softmax(z/T), for a CNN over more rows than predict\'s default batch of 32', async () => {
    await selectBackend('wasm');
    const model = createModel({ name: 'cnn', inputShape: [28, 28, 1], numClasses: 10, seed: 3 });
    const student = new Student(model, { sampleShape: [28, 28, 1], numClasses: 10, learningRate: 1e-3, seed: 3 });
    const rand = seeded(5);
    const x = Float32Array.from({ length: 600 * 784 }, () => rand());
    const expected = tf.tidy(() => tf.softmax(tf.div(model.predict(tf.tensor4d(x, [600, 28, 28, 1])) as tf.Tensor2D, 2.5)).dataSync() as Float32Array);
    const tensors = tf.memory().numTensors;
    const actual = await student.predict(x, 2.5);
    expect(tf.memory().numTensors).toBe(tensors);
    expect(actual).toHaveLength(expected.length);
    let worst = 0;
    for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(actual[i]! - expected[i]!));
    expect(worst).toBeLessThan(1e-6);
    student.dispose();
  });
});
