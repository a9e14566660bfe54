/**
 * What a participant accepts as a target covers every target an honest coordinator makes: for
 * every upload dtype and target dtype, the leave-one-out means of uploads the coordinator accepted
 * (readContribution), sent down in the target dtype, pass readTarget with the session's upload dtype.
 * A mean of uint8 rows sums to 1 only within uint8's step, so holding a float32 target to float32's
 * tolerance refused honest rounds (a 3-participant uint8 simulation failed with "row 9 sums to
 * 1.001911"); the last case shows this test would have caught it.
 */
import { describe, expect, it } from 'vitest';
import { SeededRandom } from '../../client/data/random.js';
import { leaveOneOutMeans } from '../../server/aggregators/sums.js';
import { packTensor, readContribution, readTarget, WIRE_DTYPES, type KnowledgeExpectation, type WireDtype } from '../../protocol/index.js';

const ROWS = 200;
const C = 10;
const PARTICIPANTS = 3;

function softmaxRows(random: SeededRandom): Float32Array {
  const v = new Float32Array(ROWS * C);
  for (let r = 0; r < ROWS; r++) {
    const sharp = random.next() < 0.3 ? 8 : 2;
    let sum = 0;
    for (let c = 0; c < C; c++) sum += v[r * C + c] = Math.exp(sharp * random.next());
    for (let c = 0; c < C; c++) v[r * C + c]! /= sum;
  }
  return v;
}

/** The leave-one-out targets of PARTICIPANTS honest uploads in `dtype`, as the coordinator decodes them. */
function targets(uploadDtype: WireDtype, seed: number): Float32Array[] {
  const random = new SeededRandom(seed);
  const expectation: KnowledgeExpectation = { kind: 'reference-predictions', round: 1, numClasses: C, rows: ROWS };
  const accepted = Array.from({ length: PARTICIPANTS }, (_, p) =>
    readContribution(`p${p}`, { kind: 'reference-predictions', values: packTensor(softmaxRows(random), [ROWS, C], uploadDtype), sampleCount: 1, labelCounts: new Array<number>(C).fill(1) }, expectation).values);
  return leaveOneOutMeans(accepted);
}

describe('targets an honest coordinator sends', () => {
  for (const uploadDtype of WIRE_DTYPES) {
    for (const targetDtype of WIRE_DTYPES) {
      it(`are accepted: uploads ${uploadDtype}, targets ${targetDtype}`, () => {
        for (let seed = 1; seed <= 5; seed++) {
          for (const target of targets(uploadDtype, seed)) {
            expect(() => readTarget('reference-predictions', packTensor(target, [ROWS, C], targetDtype), [ROWS, C], undefined, C, uploadDtype)).not.toThrow();
          }
        }
      });
    }
  }

  it('would be refused if held to the target dtype alone (the defect this test guards)', () => {
    const refused = [1, 2, 3, 4, 5].flatMap((seed) => targets('uint8', seed)).some((target) => {
      try {
        readTarget('reference-predictions', packTensor(target, [ROWS, C], 'float32'), [ROWS, C], undefined, C);
        return false;
      } catch {
        return true;
      }
    });
    expect(refused).toBe(true);
  });
});
