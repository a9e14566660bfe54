/** The README's algorithm table lists exactly the registered algorithms (and the centralized upper bound). */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ALGORITHM_NAMES } from '../../server/strategies/index.js';

describe("the README's algorithm table", () => {
  it('names every registered algorithm once, and nothing else', () => {
    const readme = readFileSync(join(import.meta.dirname, '../../README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('\n## Algorithms'), readme.indexOf('\n## ', readme.indexOf('\n## Algorithms') + 1));
    const rows = [...section.matchAll(/^\| `([a-z0-9-]+)` \|/gm)].map((m) => m[1]);
    expect(rows.sort()).toEqual([...ALGORITHM_NAMES, 'centralized'].sort());
  });
});
