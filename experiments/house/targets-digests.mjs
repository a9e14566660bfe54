// The targets digests of the algorithm comparison's setting (MNIST, 10 participants, Dirichlet
// α = 0.1, seed 1, 3 rounds) for one build: each algorithm runs through `codistill simulate` with a
// journal on its coordinator, and every round's per-participant target digests and ensemble digest
// are read back from that journal. Two builds whose outputs are equal sent every participant the
// same targets, bit for bit.
//
//   node experiments/house/targets-digests.mjs DIST OUT.json ALGORITHM…
//   e.g. npm run build && node experiments/house/targets-digests.mjs "$PWD/dist" after.json dml fd fedmd dsfl fedavg
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';

const [dist, out, ...algorithms] = process.argv.slice(2);
if (dist === undefined || out === undefined || algorithms.length === 0) {
  process.stderr.write('usage: node experiments/house/targets-digests.mjs DIST OUT.json ALGORITHM…\n');
  process.exit(2);
}
const scratch = mkdtempSync(join(tmpdir(), 'codistill-digests-'));
// Every coordinator the simulation starts journals to the file named here (the CLI has no flag for it).
const { Coordinator } = await import(`${dist}/server/coordinator.js`);
const start = Coordinator.start.bind(Coordinator);
let journal;
Coordinator.start = (options) => start({ ...options, journal });

const result = {};
for (const algorithm of algorithms) {
  journal = join(scratch, `${algorithm}.sqlite`);
  process.argv = ['node', 'codistill', 'simulate', '--algorithm', algorithm, '--participants', '10', '--rounds', '3', '--partition', 'dirichlet',
    '--dirichlet-alpha', '0.1', '--seed', '1', '--no-baseline', '--no-save', '--out', join(scratch, `out-${algorithm}`)];
  process.exitCode = undefined;
  // The CLI runs on import (a fresh module instance per algorithm) and sets process.exitCode when done.
  await import(`${dist}/simulations/cli.js?${algorithm}`);
  while (process.exitCode === undefined) await new Promise((resolve) => setTimeout(resolve, 200));
  const code = process.exitCode;
  const db = new Database(journal, { readonly: true });
  const targets = db.prepare('SELECT round, participant, digest FROM targets ORDER BY round, participant').all();
  const rounds = db.prepare('SELECT round, record FROM rounds ORDER BY round').all().map((r) => ({ round: r.round, ensemble: JSON.parse(r.record).ensembleDigest }));
  db.close();
  result[algorithm] = { exit: code, rounds, targets };
  process.stderr.write(`${algorithm}: exit ${code}, ${rounds.length} rounds, ${targets.length} target digests\n`);
}
process.exitCode = 0;
writeFileSync(out, `${JSON.stringify(result, null, 1)}\n`);
process.stderr.write(`written to ${out}\n`);
