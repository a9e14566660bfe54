/**
 * `codistill simulate` with LoRA students (lm.lora, lm.base): the frozen base is trained once on
 * the reference text and saved in <out>/base/; each site adds adapters; DML exchanges per-token
 * predictions through a real coordinator, FedAvg the adapters themselves. Embedded fortune slices,
 * so the test needs no Debian package.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { validateExperiment } from '../../simulations/config.js';
import { DEFAULT_OPTIONS } from '../../simulations/simulate.js';
import type { TextSimulationResult } from '../../simulations/text-sessions.js';

const run = promisify(execFile);
const CLI = join(import.meta.dirname, '../../dist/simulations/cli.js');

/** Cookies of fortunes-min (en) and fortunes-de, in the fortune file format. */
const EN = ['A day for firm decisions!!!!!  Or is it?', 'A few hours grace before the madness begins again.', 'A gift of a flower will soon be made to you.', 'A fool and his money are soon parted.', 'A journey of a thousand miles begins with a single step.'];
const DE = ['Ein Mathematikprofessor trägt sein Fahrrad über den Universitätsplatz.', 'Ein Bekannter spricht ihn an, ob denn sein Fahrrad kaputt sei.', 'Darauf schaut der Professor verdutzt auf das Rad in seinen Händen.', 'Ein Mathematikprofessor trifft auf dem Uniplatz einen Kollegen.', 'Aha, dann war ich also noch nicht essen gewesen.'];

function fortunesRoot(): string {
  const root = mkdtempSync(join(tmpdir(), 'codistill-fortunes-'));
  const file = (cookies: string[]) => cookies.map((c) => `${c}\n%\n`).join('');
  writeFileSync(join(root, 'fortunes'), file(EN));
  mkdirSync(join(root, 'de'));
  writeFileSync(join(root, 'de', 'mathematiker'), file(DE));
  return root;
}

async function simulate(algorithm: string, root: string, base = '{ steps: 4 }'): Promise<{ stdout: string; out: string; result: TextSimulationResult }> {
  const dir = mkdtempSync(join(tmpdir(), `codistill-lora-${algorithm}-`));
  const config = join(dir, 'lora.yaml');
  writeFileSync(config, [
    `data: { source: text, domains: [en, de], root: ${root} }`,
    `algorithm: ${algorithm}`, 'participants: 2', 'rounds: 2', 'seed: 1', 'batchSize: 4', 'learningRate: 0.01', 'referencePerRound: 4',
    'temperature: 2', 'alpha: 0.5', 'uploadDtype: float32', 'baseline: true',
    'lm: { model: "transformer:d=16,l=1,h=2,ctx=16", steps: 3, maxBytesPerDomain: 1000, heldOutFraction: 0.3, referenceBytesPerDomain: 60,',
    `      lora: { rank: 2, alpha: 4, targets: [q, v] }, base: ${base} }`,
    `out: ${join(dir, 'run')}`,
  ].join('\n'));
  const { stdout } = await run('node', [CLI, 'simulate', '--config', config], { timeout: 300_000 });
  const out = join(dir, 'run');
  return { stdout, out, result: JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as TextSimulationResult };
}

const sha256 = (path: string) => `sha256:${createHash('sha256').update(readFileSync(path)).digest('hex')}`;
const adapters = (out: string, site: string) => JSON.parse(readFileSync(join(out, 'students', site, 'adapters.json'), 'utf8')) as { base: { digest: string }; lora: object };

describe('codistill simulate with LoRA students', () => {
  it('FedAvg of adapters: only the adapters travel, every site ends with the same averaged adapters, the shipped base unchanged', async () => {
    const { stdout, out, result } = await simulate('fedavg', fortunesRoot());
    const lora = result.lora!;
    // q and v of one block at rank 2, d = 16: 2 × (16·2 + 2·16).
    expect(lora.adapterParameters).toBe(128);
    expect(result.parameters).toBe(128);
    expect(lora.base.digest).toBe(sha256(join(out, 'base', 'group1-shard1of1.bin')));
    expect(stdout).toContain(`saved to ${join(out, 'base')} (${lora.base.digest})`);
    expect(stdout).toMatch(/base {3}mean own \d\.\d{3} bpb, mixed \d\.\d{3} bpb \(frozen, 12049 parameters, 4 steps on the reference text/);
    expect(result.runs.map((r) => r.algorithm)).toEqual(['fedavg', 'local']);
    const [fedavg, local] = result.runs;
    for (const row of fedavg!.rows) {
      expect(row.receivedTarget).toBe(true);
      // 128 float32 up (and the average down), not the base's 12049: well under one base's 48 KB.
      expect(row.bytesUp).toBeGreaterThan(128 * 4);
      expect(row.bytesUp).toBeLessThan(12_049 * 4);
    }
    expect(local!.totalBytes).toEqual({ up: 0, down: 0 });
    // After the last round both sites hold the coordinator's average: the same adapter bytes.
    const p0 = readFileSync(join(out, 'students', 'p0', 'adapters.bin'));
    const p1 = readFileSync(join(out, 'students', 'p1', 'adapters.bin'));
    expect(p0.byteLength).toBe(128 * 4);
    expect(p0.equals(p1)).toBe(true);
    for (const site of ['p0', 'p1']) expect(adapters(out, site).base.digest).toBe(lora.base.digest);
    // The adapters change the model: the sites' own held-out bits per byte differ from the frozen base's.
    expect(fedavg!.final.perParticipant.some((p, i) => Math.abs(p.own - lora.base.final.perParticipant[i]!.own) > 1e-4)).toBe(true);
  });

  it('DML with LoRA students: per-token targets through the coordinator, only adapters train (the base keeps its digest), local-only LoRA beside it; a second session adapts the same saved base', async () => {
    const { out, result } = await simulate('dml', fortunesRoot());
    expect(result.runs.map((r) => r.algorithm)).toEqual(['dml', 'local']);
    const [dml] = result.runs;
    for (const row of dml!.rows) {
      expect(row.receivedTarget).toBe(true);
      // 4 windows × 16 positions × 257 float32 per site and round.
      expect(row.bytesUp).toBeGreaterThan(4 * 16 * 257 * 4);
    }
    // Saved after training: the base each site trained on still has the shipped digest.
    for (const site of ['p0', 'p1']) expect(adapters(out, site).base.digest).toBe(result.lora!.base.digest);
    expect(readFileSync(join(out, 'students', 'p0', 'adapters.bin')).equals(readFileSync(join(out, 'students', 'p1', 'adapters.bin')))).toBe(false);

    // A second session on the same base (base.from): loaded, not trained again; the same digest and bits per byte.
    const again = await simulate('fedavg', fortunesRoot(), `{ from: ${join(out, 'base')} }`);
    expect(again.stdout).toContain(`loaded from ${join(out, 'base')} (${result.lora!.base.digest})`);
    expect(again.result.lora!.base.final).toEqual(result.lora!.base.final);
    for (const site of ['p0', 'p1']) expect(adapters(again.out, site).base.digest).toBe(result.lora!.base.digest);
  });

  it('refuses LoRA settings that cannot run, naming the field', () => {
    const text = { ...DEFAULT_OPTIONS, out: 'x', data: { source: 'text', domains: ['en', 'de'] }, participants: 2 };
    const lm = { model: 'transformer:d=16,l=1,h=2,ctx=16', steps: 1 };
    const lora = { rank: 2, alpha: 4, targets: ['q', 'v'] };
    expect(validateExperiment({ ...text, algorithm: 'fedavg', lm: { ...lm, lora, base: { steps: 2 } } }, 't').lm?.lora).toEqual(lora);
    expect(validateExperiment({ ...text, lm: { ...lm, lora: { rank: 2, alpha: 4 }, base: { steps: 2 } } }, 't').lm?.lora?.targets).toEqual(['q', 'v']);
    expect(() => validateExperiment({ ...text, lm: { ...lm, lora } }, 't')).toThrow(/lm: lora and base go together/);
    expect(() => validateExperiment({ ...text, lm: { ...lm, lora, base: { steps: 2, from: 'dir' } } }, 't')).toThrow(/lm.base: takes steps .* or from .*, not both/);
    expect(() => validateExperiment({ ...text, lm: { ...lm, model: 'gru:d=16,l=1,ctx=16', lora, base: { steps: 2 } } }, 't')).toThrow(/lm.lora: LoRA adapts a Transformer's linear layers/);
    expect(() => validateExperiment({ ...text, lm: { ...lm, lora: { ...lora, targets: ['head'] }, base: { steps: 2 } } }, 't')).toThrow(/lm.lora.targets.0/);
    expect(() => validateExperiment({ ...text, lm: { ...lm, lora: { ...lora, rank: 0 }, base: { steps: 2 } } }, 't')).toThrow(/lm.lora.rank: must be ≥ 1/);
  });
});
