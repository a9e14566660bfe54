/** RESULTS.md and RESULTS.json: every figure of one run, the machine, and what each is judged by. */
import { existsSync, readFileSync } from 'node:fs';
import { bytesText, fmt, ratioText, type Figure, type Section, type Table } from './harness.js';
import type { MachineInfo } from './machine.js';

export interface RunReport {
  machine: MachineInfo;
  options: { quick: boolean; only?: string[]; backend?: string };
  seconds: number;
  sections: Section[];
}

const escape = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');

function table(t: Table): string {
  const lines = [`*${t.caption}*`, '', `| ${t.columns.map(escape).join(' | ')} |`, `|${t.columns.map(() => ' --- ').join('|')}|`];
  for (const row of t.rows) lines.push(`| ${row.map((c) => escape(String(c))).join(' | ')} |`);
  return lines.join('\n');
}

function targetText(f: Figure): string {
  if (f.target === undefined) return '—';
  const op = f.target.op === '>=' ? '≥' : '<';
  return f.target.on === 'ratio' ? `ratio ${op} ${fmt(f.target.goal)}` : `${op} ${fmt(f.target.goal)} ${f.unit}`;
}

const metText = (f: Figure) => (f.met === undefined ? '—' : f.met ? '**yes**' : '**no**');
const valueText = (f: Figure) => `${fmt(f.value)} ${f.unit}`;
const baselineText = (f: Figure) => (f.baseline === undefined ? '—' : `${escape(f.baseline.label)}: ${fmt(f.baseline.value)} ${f.baseline.unit}`);

function figureRows(figures: Figure[]): string[] {
  const lines = ['| figure | measured | judged against (same run) | ratio | target | met |', '| --- | --- | --- | --- | --- | --- |'];
  for (const f of figures) {
    lines.push(`| ${escape(f.label)}${f.note ? ` (${escape(f.note)})` : ''} | ${valueText(f)} | ${baselineText(f)} | ${ratioText(f.ratio)} | ${targetText(f)} | ${metText(f)} |`);
  }
  return lines;
}

/**
 * Figures whose measurement changed after bench/baseline.json was taken, so that before and after
 * would not measure the same thing: simulation memory was the bench process's own RSS growth
 * (which memory freed by earlier benchmarks hid), and is now a fresh process's.
 */
const METHOD_CHANGED = new Set(['simulation.memory-per-participant', 'simulation.memory-per-participant-1']);

/** An earlier run's JSON (bench/baseline.json), kept to show figures before the fixes. */
function beforeSection(report: RunReport, baselinePath: string): string[] {
  if (!existsSync(baselinePath)) return [];
  let before: RunReport;
  try {
    before = JSON.parse(readFileSync(baselinePath, 'utf8')) as RunReport;
  } catch {
    return [];
  }
  const old = new Map(before.sections.flatMap((s) => s.figures).map((f) => [f.id, f]));
  const rows: string[] = [];
  for (const f of report.sections.flatMap((s) => s.figures)) {
    const b = old.get(f.id);
    // The training kernels are compared within this run (section 1): before and after side by side.
    if (b === undefined || f.id.startsWith('training.') || METHOD_CHANGED.has(f.id)) continue;
    rows.push(`| ${escape(f.label)} | ${valueText(b)} | ${ratioText(b.ratio)} | ${valueText(f)} | ${ratioText(f.ratio)} |`);
  }
  if (rows.length === 0) return [];
  return [
    '## Before and after the fixes',
    '',
    `"Before" is an earlier run of this same benchmark (${before.machine.date}, commit ${before.machine.commit ?? '?'}${before.machine.uncommitted ? ` + ${before.machine.uncommitted} uncommitted files` : ''}), kept in bench/baseline.json, made before the performance fixes; "after" is this run. The machine is shared: the 1-minute load average was ${before.machine.loadAverage[0]} at the start of that run and ${report.machine.loadAverage[0]} at the start of this one, on ${report.machine.cores} cores, so absolute figures from the two runs are not comparable and only the ratios, each measured within one run, are. The evidence for each fix is in its section instead, measured against the code it replaced in this same run (bench/legacy.ts, bench/legacy-kernels.ts); the training step is left out of this table for that reason.`,
    '',
    '| figure | before | before ratio | after | after ratio |',
    '| --- | --- | --- | --- | --- |',
    ...rows,
    '',
  ];
}

export function renderMarkdown(report: RunReport, baselinePath: string): string {
  const m = report.machine;
  const all = report.sections.flatMap((s) => s.figures);
  const judged = all.filter((f) => f.target !== undefined);
  const lines: string[] = [
    '# codistill benchmark results',
    '',
    `Written by \`npm run bench\`${report.options.quick ? ' --quick' : ''}${report.options.only ? ` --only ${report.options.only.join(',')}` : ''} on ${m.date}, in ${fmt(report.seconds / 60)} minutes. Every figure comes from this one run, and every ratio divides two figures measured in it (the machine is shared and noisy: absolute numbers move from run to run more than ratios do). Nothing here is typed in by hand: rerun the command to reproduce.`,
    '',
    '## Machine',
    '',
    '| | |',
    '| --- | --- |',
    `| CPU | ${m.cpuModel}, ${m.cores} cores |`,
    `| Memory | ${bytesText(m.memoryBytes)} |`,
    `| OS | ${m.platform} |`,
    `| Node | ${m.node} |`,
    `| tfjs | @tensorflow/tfjs ${m.tfjs}, @tensorflow/tfjs-backend-wasm ${m.tfjsBackendWasm} |`,
    `| Backend | ${m.backend}${m.wasmSimd !== undefined ? ` (SIMD ${m.wasmSimd ? 'yes' : 'no'}, threads ${m.wasmThreads ? 'yes' : 'no'})` : ''} |`,
    `| Load average at start | ${m.loadAverage.join(', ')} (1, 5, 15 min) |`,
    `| Source | commit ${m.commit ?? 'unknown'}${m.uncommitted ? `, ${m.uncommitted} files changed since` : ''} |`,
    '',
    '## Targets',
    '',
    ...figureRows(judged),
    '',
    `${judged.filter((f) => f.met).length} of ${judged.length} targets met.`,
    '',
    ...beforeSection(report, baselinePath),
  ];
  for (const s of report.sections) {
    lines.push(`## ${s.title}`, '');
    if (s.error !== undefined) lines.push(`**This benchmark failed:** ${escape(s.error)}`, '');
    for (const line of s.method) lines.push(`- ${line}`);
    if (s.method.length > 0) lines.push('');
    if (s.figures.length > 0) lines.push(...figureRows(s.figures), '');
    for (const t of s.tables) lines.push(table(t), '');
    for (const note of s.notes) lines.push(`> ${note}`, '');
    lines.push(`(${fmt(s.seconds)} s${s.load ? `; 1-minute load average ${s.load[0]} before, ${s.load[1]} after, on ${m.cores} cores` : ''})`, '');
  }
  return `${lines.join('\n').replace(/\n{3,}/g, '\n\n')}\n`;
}

/** Plain-text lines for the terminal: the targets and whether each was met. */
export function renderSummary(report: RunReport): string {
  const lines = ['', 'targets:'];
  for (const f of report.sections.flatMap((s) => s.figures).filter((x) => x.target !== undefined)) {
    lines.push(`  ${f.met ? 'MET ' : 'MISS'}  ${f.label}: ${valueText(f)}${f.ratio !== undefined ? `, ratio ${ratioText(f.ratio)}` : ''} (target ${targetText(f)})`);
  }
  for (const s of report.sections.filter((x) => x.error !== undefined)) lines.push(`  FAILED ${s.title}: ${s.error}`);
  return lines.join('\n');
}
