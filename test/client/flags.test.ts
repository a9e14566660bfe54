/** The numeric flags of every command (client, text site, demo-sites): one reader, one message. */
import { describe, expect, it } from 'vitest';
import { numberFlag } from '../../client/flags.js';

const positive = (x: number) => Number.isInteger(x) && x >= 1;

describe('numberFlag', () => {
  it('gives the fallback when the flag is absent and the number when it keeps the rule', () => {
    expect(numberFlag({}, 'epochs', 3, positive, 'an integer ≥ 1')).toBe(3);
    expect(numberFlag({ epochs: '5' }, 'epochs', 3, positive, 'an integer ≥ 1')).toBe(5);
  });

  it('refuses a blank, non-finite or out-of-rule value, naming the flag, the rule and the value', () => {
    // A blank value is not 0 (Number(' ') is): the client command once read `--epochs " "` as 0.
    for (const raw of [' ', '', 'NaN', 'Infinity', '1e400', 'two', '0', '1.5']) {
      expect(() => numberFlag({ epochs: raw }, 'epochs', 3, positive, 'an integer ≥ 1')).toThrow(`--epochs must be an integer ≥ 1; got "${raw}"`);
    }
  });
});
