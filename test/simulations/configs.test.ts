/** Every example config in the repository is a valid experiment. */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readConfigFile, validateExperiment } from '../../simulations/config.js';
import { DEFAULT_OPTIONS } from '../../simulations/simulate.js';
import { ALGORITHM_NAMES } from '../../server/strategies/index.js';

const DIR = join(import.meta.dirname, '../../experiments/configs');

describe('example configs', () => {
  const files = readdirSync(DIR).filter((f) => f.endsWith('.yaml'));

  // An example per algorithm is documentation, not registration: a new algorithm runs without
  // one (`simulate --algorithm NAME`); every example there is must name a registered algorithm.
  // Files named after no algorithm are experiments of their own (mixed-models.yaml).
  const EXPERIMENTS = ['mixed-models.yaml', 'lm-dml.yaml', 'lm-codistillation.yaml'];
  it('each runs a registered algorithm or the centralized baseline', () => {
    expect(files.length).toBeGreaterThan(0);
    for (const file of files.filter((f) => !EXPERIMENTS.includes(f))) expect([...ALGORITHM_NAMES, 'centralized']).toContain(file.replace('.yaml', ''));
  });

  for (const file of files) {
    it(`${file} validates`, () => {
      const options = validateExperiment({ ...DEFAULT_OPTIONS, out: 'x', ...readConfigFile(join(DIR, file)) }, file);
      expect([...ALGORITHM_NAMES, 'centralized']).toContain(options.algorithm);
      if (!EXPERIMENTS.includes(file)) expect(options.algorithm).toBe(file.replace('.yaml', ''));
    });
  }
});
