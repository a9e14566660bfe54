/**
 * What every run leaves behind, in one directory: the full result, one JSON line per round, a
 * CSV summary, one CSV row per participant (its model, role and group), the resolved config (rerun it with `codistill simulate --config DIR/config.json`)
 * and the reproducibility manifest.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import type { SimulationResult } from './simulate.js';

export interface Manifest {
  codistill: string;
  /** The commit the code came from, and whether the work tree differed from it. */
  code: { commit: string | null; dirty: boolean | null };
  node: string;
  packages: Record<string, string | null>;
  backends: string[];
  machine: { platform: string; arch: string; cpu: string; cores: number; memoryGiB: number };
  config: SimulationResult['options'];
  seed: number;
  partitionHash: string;
  startedAt: string;
}

const require = createRequire(import.meta.url);
const PACKAGES = ['@tensorflow/tfjs', '@tensorflow/tfjs-backend-wasm', '@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu', 'socket.io', 'socket.io-client', 'msgpackr', 'zod'];

/**
 * The installed version of a package, or null when it is not installed (the optional native
 * backends). Read from its package.json found on disk along Node's lookup path, not through
 * `require('NAME/package.json')`: a package whose `exports` map leaves package.json out (msgpackr)
 * refuses that, and its version came out null.
 */
export function packageVersion(name: string): string | null {
  for (const dir of require.resolve.paths(name) ?? []) {
    const file = join(dir, name, 'package.json');
    if (!existsSync(file)) continue;
    try {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === name && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // An unreadable package.json: look further along the path.
    }
  }
  return null;
}


function git(args: string[]): string | null {
  try {
    return execFileSync('git', args, { cwd: new URL('../..', import.meta.url), encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null; // not a git checkout (an installed package)
  }
}

/** Read when the process starts, before a long run: the code that runs is the code at hand now. */
const CODE_AT_START = (() => {
  const status = git(['status', '--porcelain', '--untracked-files=no']);
  return { commit: git(['rev-parse', 'HEAD']), dirty: status === null ? null : status.length > 0 };
})();

export function manifestFor(result: SimulationResult): Manifest {
  const own = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return {
    codistill: own.version,
    code: CODE_AT_START,
    node: process.version,
    packages: Object.fromEntries(PACKAGES.map((name) => [name, packageVersion(name)])),
    backends: [...new Set(result.runs.map((r) => r.backend))],
    machine: {
      platform: process.platform,
      arch: process.arch,
      cpu: cpus()[0]?.model ?? 'unknown',
      cores: cpus().length,
      memoryGiB: Math.round(totalmem() / 2 ** 30),
    },
    config: result.options,
    seed: result.options.seed,
    partitionHash: result.data.partitionHash,
    startedAt: result.startedAt,
  };
}

/**
 * The accuracies are over the honest participants (all of them in a clean run); `hostile` lists
 * the ones left out, space-separated. `epsilon_max` is the largest (ε at the configured δ) any
 * participant spent, empty without private uploads. `distiller_accuracy` is the distiller's
 * held-out accuracy, empty in a run without one.
 */
const CSV_COLUMNS = ['algorithm', 'seed', 'participants', 'rounds', 'held_out_accuracy', 'personalized_accuracy', 'ensemble_accuracy', 'bytes_up', 'bytes_down', 'seconds', 'backend', 'hostile', 'epsilon_max', 'distiller_accuracy'];

function maxEpsilon(run: SimulationResult['runs'][number]): number | undefined {
  const spent = run.privacy?.epsilon.filter((e): e is number => e !== null) ?? [];
  return spent.length === 0 ? undefined : Math.max(...spent);
}

/**
 * One row per member of each run: learners with their final held-out and personalised accuracy,
 * teachers with their held-out accuracy after training before round 1 (personalised empty).
 */
const PARTICIPANT_COLUMNS = ['algorithm', 'seed', 'participant', 'group', 'model', 'role', 'held_out_accuracy', 'personalized_accuracy', 'hostile'];

function participantRows(result: SimulationResult): string[] {
  return result.runs.flatMap((run) => {
    const last = run.rows.at(-1);
    return run.members.map((m) => {
      const teacher = run.teachers?.find((t) => t.id === m.id);
      const accuracy = m.role === 'teacher' ? teacher?.accuracy : last?.accuracy[m.index];
      const personalized = m.role === 'teacher' ? undefined : last?.personalized[m.index];
      return [run.algorithm, result.options.seed, m.id, m.group, m.model.includes(',') ? `"${m.model}"` : m.model, m.role, accuracy ?? '', personalized ?? '', run.hostile.includes(m.index)].join(',');
    });
  });
}

/** Writes the run's files into `dir`; returns their paths. */
export function writeRunOutputs(result: SimulationResult, dir: string): string[] {
  mkdirSync(dir, { recursive: true });
  const files = {
    result: join(dir, 'result.json'),
    rounds: join(dir, 'rounds.jsonl'),
    summary: join(dir, 'summary.csv'),
    participants: join(dir, 'participants.csv'),
    config: join(dir, 'config.json'),
    manifest: join(dir, 'manifest.json'),
  };
  writeFileSync(files.result, `${JSON.stringify(result, null, 2)}\n`);
  writeFileSync(files.rounds, result.runs.flatMap((run) => run.rows.map((row) => JSON.stringify({ algorithm: run.algorithm, seed: result.options.seed, ...row }))).join('\n') + '\n');
  const lines = result.runs.map((run) =>
    [run.algorithm, result.options.seed, run.participants, run.rows.length, run.final.meanAccuracy, run.final.meanPersonalized, run.final.ensembleAccuracy,
      run.totalBytes.up, run.totalBytes.down, run.seconds.toFixed(1), run.backend, run.hostile.map((i) => `p${i}`).join(' '), maxEpsilon(run) ?? '', run.final.distillerAccuracy ?? ''].join(','),
  );
  writeFileSync(files.summary, `${CSV_COLUMNS.join(',')}\n${lines.join('\n')}\n`);
  writeFileSync(files.participants, `${PARTICIPANT_COLUMNS.join(',')}\n${participantRows(result).join('\n')}\n`);
  writeFileSync(files.config, `${JSON.stringify(result.options, null, 2)}\n`);
  writeFileSync(files.manifest, `${JSON.stringify(manifestFor(result), null, 2)}\n`);
  return Object.values(files);
}
