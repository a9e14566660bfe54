/** A simulation on a CSV with string labels: its test file is numbered with the training file's class names. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadSource } from '../../simulations/simulate.js';

describe('a CSV source with string labels', () => {
  it('numbers the test file by the training file\'s names, even when the test file lacks a class', () => {
    const dir = mkdtempSync(join(tmpdir(), 'codistill-csv-source-'));
    writeFileSync(join(dir, 'train.csv'), 'species,a,b\nsetosa,1,2\nversicolor,3,4\nvirginica,5,6\n');
    writeFileSync(join(dir, 'test.csv'), 'species,a,b\nvirginica,5,6\nsetosa,1,2\n');
    const { all, test, u8Divisor } = loadSource({ source: 'csv', train: join(dir, 'train.csv'), test: join(dir, 'test.csv'), label: 'species' });
    expect(all.classNames).toEqual(['setosa', 'versicolor', 'virginica']);
    expect([...test!.y]).toEqual([2, 0]); // not [1, 0], the numbering of the test file alone
    expect(u8Divisor).toBe(1);
  });
});
