/**
 * Issue 15, defect 1: a uint8 upload's quantisation parameters are the sender's to choose, so
 * nothing the coordinator accepts may depend on them. Asserted: the upload of the report
 * (`min: -5, scale: 1`, rows decoding to [6, -5, 0, …], each summing to exactly 1) is refused; for
 * every dtype × knowledge kind, any accepted upload — random, adversarial or honest parameters —
 * decodes to values a float32 upload could have carried (probabilities in [0, 1] up to the float32
 * slack, rows summing to 1 within a tolerance fixed by the dtype and the class count; finite
 * float32 otherwise); and every honest upload (packTensor of a softmax, of logits, of weights) is
 * accepted whatever its dtype.
 */
import { describe, expect, it } from 'vitest';
import { SeededRandom } from '../../client/data/random.js';
import {
  KNOWLEDGE_KINDS,
  packTensor,
  ProtocolError,
  readContribution,
  WIRE_DTYPES,
  type KnowledgeExpectation,
  type KnowledgeKind,
  type RawUpload,
  type WireDtype,
  type WireTensor,
} from '../../protocol/index.js';

const ROWS = 6;
const C = 10;

/** What a float32 upload of probabilities may carry per value, and each dtype's row-sum bound: none depends on the sender. */
const VALUE_SLACK = 1e-3;
const SUM_TOLERANCE: Record<WireDtype, number> = { float32: 1e-3, float16: 1e-3 + C * 2 ** -11, uint8: 1e-3 + C / 510 };

function expectation(kind: KnowledgeKind): KnowledgeExpectation {
  if (kind === 'reference-token-predictions') return { kind, round: 3, numClasses: C, rows: ROWS / 2, positions: 2 };
  return { kind, round: 3, numClasses: C, rows: ROWS, ...(kind === 'weights' ? { parameters: ROWS * C } : {}) };
}

function shapeOf(kind: KnowledgeKind): number[] {
  // Per-token predictions: the same ROWS distributions as ROWS / 2 windows of 2 positions.
  return kind === 'weights' ? [ROWS * C] : kind === 'class-logits' ? [C, C] : kind === 'reference-token-predictions' ? [ROWS / 2, 2, C] : [ROWS, C];
}

function upload(kind: KnowledgeKind, values: WireTensor): RawUpload {
  return { kind, values, sampleCount: 10, labelCounts: new Array<number>(C).fill(5) };
}

function accept(kind: KnowledgeKind, values: WireTensor): Float32Array | ProtocolError {
  try {
    return readContribution('p', upload(kind, values), expectation(kind)).values;
  } catch (error) {
    if (!(error instanceof ProtocolError)) throw error;
    return error;
  }
}

function softmaxRows(random: SeededRandom, rows: number): Float32Array {
  const v = new Float32Array(rows * C);
  for (let r = 0; r < rows; r++) {
    let sum = 0;
    const sharp = random.next() < 0.3 ? 30 : 3;
    for (let k = 0; k < C; k++) sum += v[r * C + k] = Math.exp(sharp * random.next());
    for (let k = 0; k < C; k++) v[r * C + k]! /= sum;
  }
  return v;
}

/** A failure message if `values` could not have come in a float32 upload of `kind` (dtype fixes only the row-sum bound). */
function notFloat32Like(kind: KnowledgeKind, dtype: WireDtype, values: Float32Array): string | undefined {
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i]!)) return `value ${i} is ${values[i]}`;
  if (kind !== 'reference-predictions' && kind !== 'reference-token-predictions') return undefined;
  for (let r = 0; r < ROWS; r++) {
    let sum = 0;
    for (let k = 0; k < C; k++) {
      const p = values[r * C + k]!;
      if (p < -VALUE_SLACK || p > 1 + VALUE_SLACK) return `row ${r}, class ${k} is ${p}`;
      sum += p;
    }
    if (Math.abs(sum - 1) > SUM_TOLERANCE[dtype]) return `row ${r} sums to ${sum}`;
  }
  return undefined;
}

describe('uint8 quantisation parameters cannot widen what is accepted', () => {
  it('refuses the report\'s upload: min -5, scale 1, rows [6, -5, 0, …] summing to exactly 1', () => {
    const q = new Uint8Array(ROWS * C).fill(5); // 5 → 0
    for (let r = 0; r < ROWS; r++) {
      q[r * C] = 11; // → 6
      q[r * C + 1] = 0; // → -5
    }
    const tensor: WireTensor = { dtype: 'uint8', shape: [ROWS, C], data: q, min: -5, scale: 1 };
    const result = accept('reference-predictions', tensor);
    expect(result).toBeInstanceOf(ProtocolError);
    expect((result as ProtocolError).message).toMatch(/^E_VALUE: reference-predictions for round 3: uint8 quantisation min=-5, scale=1 /);
  });

  it('accepts only what a float32 upload could carry, for every dtype and kind, under random and adversarial parameters', () => {
    const random = new SeededRandom(15);
    const adversarialMin = [-5, -1, -1e-3, -1e-4, 0, 1e-4, 0.5, 1, 1.001, 3e38, -3e38, 1e30];
    const adversarialScale = [0, 1e-9, 1 / 255, 1.0001 / 255, 1.01 / 255, 0.01, 1, 255, 1e37, 5e-324];
    let accepted = 0;
    let refused = 0;
    for (const kind of KNOWLEDGE_KINDS) {
      for (const dtype of WIRE_DTYPES) {
        for (let trial = 0; trial < 400; trial++) {
          const shape = shapeOf(kind);
          const size = shape.reduce((a, b) => a * b, 1);
          let tensor: WireTensor;
          if (dtype === 'uint8') {
            const data = new Uint8Array(size);
            // Levels chosen to make the rows sum to 1 for the chosen parameters where possible.
            const min = trial % 3 === 0 ? adversarialMin[random.int(adversarialMin.length)]! : (random.next() - 0.5) * 10 ** random.int(4);
            const scale = trial % 3 === 1 ? adversarialScale[random.int(adversarialScale.length)]! : random.next() * 10 ** (random.int(6) - 4);
            for (let r = 0; r < size / C; r++) {
              let remaining = scale > 0 ? Math.round((1 - C * min) / scale) : 0;
              for (let k = 0; k < C; k++) {
                const level = k === C - 1 ? remaining : Math.min(remaining, random.int(256));
                data[r * C + k] = Math.max(0, Math.min(255, level));
                remaining -= data[r * C + k]!;
              }
            }
            tensor = { dtype, shape, data, min, scale };
          } else {
            // float16 and float32: a sender picks the values themselves.
            const values = Float32Array.from({ length: size }, () => (random.next() < 0.5 ? random.next() : (random.next() - 0.3) * 4));
            tensor = packTensor(values, shape, dtype);
          }
          const result = accept(kind, tensor);
          if (result instanceof ProtocolError) {
            refused++;
            expect(result.code, result.message).not.toBe('E_INTERNAL');
            continue;
          }
          accepted++;
          const problem = notFloat32Like(kind, dtype, result);
          expect(problem, `${kind} ${dtype} min=${tensor.min} scale=${tensor.scale}: accepted, yet ${problem}`).toBeUndefined();
        }
      }
    }
    expect(accepted).toBeGreaterThan(100);
    expect(refused).toBeGreaterThan(100);
  });

  it('accepts every honest upload, whatever its dtype', () => {
    const random = new SeededRandom(1515);
    for (let trial = 0; trial < 300; trial++) {
      for (const dtype of WIRE_DTYPES) {
        const p = softmaxRows(random, ROWS);
        if (trial === 0) p.fill(1 / C); // a constant tensor travels with scale 0
        if (trial === 1) for (let r = 0; r < ROWS; r++) p.fill(0, r * C, r * C + C).set([1], r * C + (r % C)); // one-hot rows
        const r1 = accept('reference-predictions', packTensor(p, [ROWS, C], dtype));
        expect(r1 instanceof ProtocolError ? r1.message : 'ok', `softmax ${dtype} #${trial}`).toBe('ok');
        const logits = Float32Array.from({ length: ROWS * C }, () => (random.next() - 0.5) * 40);
        const r2 = accept('reference-logits', packTensor(logits, [ROWS, C], dtype));
        expect(r2 instanceof ProtocolError ? r2.message : 'ok', `logits ${dtype} #${trial}`).toBe('ok');
        const weights = Float32Array.from({ length: ROWS * C }, () => (random.next() - 0.5) * 0.2);
        const r3 = accept('weights', packTensor(weights, [ROWS * C], dtype));
        expect(r3 instanceof ProtocolError ? r3.message : 'ok', `weights ${dtype} #${trial}`).toBe('ok');
      }
    }
  });

  it('names the parameters when the 256 levels leave what float32 can hold, for any kind', () => {
    const t: WireTensor = { dtype: 'uint8', shape: [ROWS * C], data: new Uint8Array(ROWS * C), min: 3e38, scale: 1e37 };
    const result = accept('weights', t);
    expect((result as ProtocolError).message).toMatch(/^E_VALUE: weights for round 3: uint8 quantisation min=3e\+38, scale=1e\+37 .*float32/);
  });
});
