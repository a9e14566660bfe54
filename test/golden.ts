/**
 * Golden-value checks: values computed once by hand or by an independent script and stored in the
 * test, each compared within a relative tolerance (1e-5 unless told, as torchdistill's tests do).
 */
import { expect } from 'vitest';

/** `actual` within `tolerance` of `expected`, relatively: one number, or element by element. NaN never passes. */
export function expectRelative(actual: number | ArrayLike<number>, expected: number | ArrayLike<number>, tolerance = 1e-5): void {
  const got = typeof actual === 'number' ? [actual] : actual;
  const want = typeof expected === 'number' ? [expected] : expected;
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    const e = want[i]!;
    const error = Math.abs(got[i]! - e) / Math.max(Math.abs(e), 1e-12);
    if (!(error < tolerance)) {
      expect.fail(`${typeof expected === 'number' ? '' : `element ${i}: `}got ${got[i]}, expected ${e} (relative error ${error.toExponential(2)} ≥ ${tolerance})`);
    }
  }
}
