/**
 * quantisation-bounds.test.ts's rule, for the top-k sparse form: whatever a sender puts in a
 * top-k upload — k, indices, values, uint8 parameters, random or adversarial — an accepted one
 * decodes to values a float32 upload of the dense rows could have carried (every probability in
 * [0, 1] up to the float32 slack, every row summing to 1 within the dtype's tolerance at the
 * session's class count, nothing non-finite); and every honest upload (packTopK of a softmax, any
 * k, any dtype) is accepted.
 */
import { describe, expect, it } from 'vitest';
import { SeededRandom } from '../../client/data/random.js';
import { packTensor, packTopK, ProtocolError, readContribution, WIRE_DTYPES, type TopKWireTensor, type WireDtype } from '../../protocol/index.js';

const ROWS = 6;
const C = 10;
const VALUE_SLACK = 1e-3;
const SUM_TOLERANCE: Record<WireDtype, number> = { float32: 1e-3, float16: 1e-3 + C * 2 ** -11, uint8: 1e-3 + C / 510 };

function accept(values: TopKWireTensor): Float32Array | ProtocolError {
  try {
    return readContribution('p', { kind: 'reference-predictions', values }, { kind: 'reference-predictions', round: 3, numClasses: C, rows: ROWS }).values;
  } catch (error) {
    if (!(error instanceof ProtocolError)) throw error;
    return error;
  }
}

function notFloat32Like(dtype: WireDtype, values: Float32Array): string | undefined {
  if (values.length !== ROWS * C) return `${values.length} values`;
  for (let r = 0; r < ROWS; r++) {
    let sum = 0;
    for (let k = 0; k < C; k++) {
      const p = values[r * C + k]!;
      if (!(p >= -VALUE_SLACK && p <= 1 + VALUE_SLACK)) return `row ${r}, class ${k} is ${p}`;
      sum += p;
    }
    if (Math.abs(sum - 1) > SUM_TOLERANCE[dtype]) return `row ${r} sums to ${sum}`;
  }
  return undefined;
}

function softmaxRows(random: SeededRandom): Float32Array {
  const v = new Float32Array(ROWS * C);
  for (let r = 0; r < ROWS; r++) {
    let sum = 0;
    const sharp = random.next() < 0.3 ? 30 : 3;
    for (let k = 0; k < C; k++) sum += v[r * C + k] = Math.exp(sharp * random.next());
    for (let k = 0; k < C; k++) v[r * C + k]! /= sum;
  }
  return v;
}

describe('top-k uploads accept only what a float32 upload could carry', () => {
  it('under random and adversarial k, indices, values and uint8 parameters, for every dtype', () => {
    const random = new SeededRandom(16);
    const adversarialMin = [-5, -1e-3, -1e-4, 0, 1e-4, 0.5, 0.999, 1, 1.001, 3e38];
    const adversarialScale = [0, 1e-9, 1 / 255, 1.0001 / 255, 1.01 / 255, 0.01, 1, 1e37];
    let accepted = 0;
    let refused = 0;
    for (const dtype of WIRE_DTYPES) {
      for (let trial = 0; trial < 600; trial++) {
        const k = trial % 7 === 0 ? [0, 11, 2.5][random.int(3)]! : 1 + random.int(C);
        const kk = Number.isInteger(k) && k >= 1 && k <= C ? k : 1;
        // Mostly distinct in-range indices; now and then a repeat or one past the axis.
        const indices = new Uint8Array(ROWS * kk);
        for (let r = 0; r < ROWS; r++) {
          const order = Array.from({ length: C }, (_, i) => i).sort(() => random.next() - 0.5);
          for (let i = 0; i < kk; i++) indices[r * kk + i] = order[i]!;
        }
        if (trial % 23 === 0) indices[random.int(indices.length)] = random.next() < 0.5 ? C + random.int(5) : indices[0]!;
        let tensor: TopKWireTensor;
        if (dtype === 'uint8') {
          const min = trial % 3 === 0 ? adversarialMin[random.int(adversarialMin.length)]! : random.next() * 0.3 - 0.05;
          const scale = trial % 3 === 1 ? adversarialScale[random.int(adversarialScale.length)]! : random.next() * 10 ** -(1 + random.int(3));
          const data = new Uint8Array(ROWS * kk);
          for (let r = 0; r < ROWS; r++) {
            // Levels aiming at a row sum near 1 (or past it) for the chosen parameters.
            let remaining = scale > 0 ? Math.round(((0.9 + random.next() * 0.2) - kk * min) / scale) : 0;
            for (let i = 0; i < kk; i++) {
              const level = i === kk - 1 ? remaining : Math.min(remaining, random.int(256));
              data[r * kk + i] = Math.max(0, Math.min(255, level));
              remaining -= data[r * kk + i]!;
            }
          }
          tensor = { dtype, shape: [ROWS, C], k, indices, data, min, scale };
        } else {
          // float16 and float32: a sender picks the values, near a row of probabilities or not at all.
          // Per trial: rows summing to at most 1, rows straddling 1 by up to 1 %, or wild values.
          const mode = random.int(3);
          const values = new Float32Array(ROWS * kk);
          for (let r = 0; r < ROWS; r++) {
            const target = mode === 0 ? 0.3 + random.next() * 0.7 : 0.99 + random.next() * 0.02;
            for (let i = 0; i < kk; i++) values[r * kk + i] = mode === 2 && random.next() < 0.3 ? (random.next() - 0.3) * 3 : target / kk;
          }
          const packed = packTensor(values, [ROWS, kk], dtype);
          tensor = { dtype, shape: [ROWS, C], k, indices, data: packed.data };
        }
        const result = accept(tensor);
        if (result instanceof ProtocolError) {
          refused++;
          expect(result.code, result.message).not.toBe('E_INTERNAL');
          continue;
        }
        accepted++;
        const problem = notFloat32Like(dtype, result);
        expect(problem, `${dtype} k=${k} min=${tensor.min} scale=${tensor.scale}: accepted, yet ${problem}`).toBeUndefined();
      }
    }
    expect(accepted).toBeGreaterThan(300);
    expect(refused).toBeGreaterThan(300);
  });

  it('accepts every honest top-k upload, whatever its k and dtype', () => {
    const random = new SeededRandom(1616);
    for (let trial = 0; trial < 200; trial++) {
      for (const dtype of WIRE_DTYPES) {
        const p = softmaxRows(random);
        if (trial === 0) p.fill(1 / C);
        if (trial === 1) for (let r = 0; r < ROWS; r++) p.fill(0, r * C, r * C + C).set([1], r * C + (r % C));
        for (const k of [1, 2, 3, 5, C]) {
          const result = accept(packTopK(p, [ROWS, C], k, dtype));
          expect(result instanceof ProtocolError ? result.message : 'ok', `${dtype} k=${k} #${trial}`).toBe('ok');
        }
      }
    }
  });
});
