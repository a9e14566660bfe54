/** Every example config in the repository is a valid experiment. */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readConfigFile, validateExperiment } from '../../simulations/config.js';
import { DEFAULT_OPTIONS } from '../../simulations/simulate.js';
import { STRATEGIES } from '../../server/strategies/index.js';

const DIR = join(import.meta.dirname, '../../experiments/configs');

describe('example configs', () => {
  const files = readdirSync(DIR).filter((f) => f.endsWith('.yaml'));

  it('there is one per algorithm and baseline', () => {
    expect(files.map((f) => f.replace('.yaml', '')).sort()).toEqual([...Object.keys(STRATEGIES), 'centralized'].sort());
  });

  for (const file of files) {
    it(`${file} validates`, () => {
      const options = validateExperiment({ ...DEFAULT_OPTIONS, out: 'x', ...readConfigFile(join(DIR, file)) }, file);
      expect(options.algorithm).toBe(file.replace('.yaml', ''));
    });
  }
});
