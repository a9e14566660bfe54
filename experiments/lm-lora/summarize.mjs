// The LoRA comparison over seeds: mean ± SD (sample, n − 1) of each method's final bits per byte
// (mean over the four sites: own held-out language, mixed held-out text) and total bytes.
// Usage: node experiments/lm-lora/summarize.mjs experiments/lm-lora
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.argv[2] ?? 'experiments/lm-lora';
const rows = { base: [], local: [], dml: [], 'dml-topk8': [], fedavg: [] };
const seeds = [];
for (const seed of [1, 2, 3]) {
  const dmlPath = join(dir, `seed${seed}-dml`, 'result.json');
  const fedPath = join(dir, `seed${seed}-fedavg`, 'result.json');
  if (!existsSync(dmlPath) || !existsSync(fedPath)) continue;
  const dml = JSON.parse(readFileSync(dmlPath, 'utf8'));
  const fed = JSON.parse(readFileSync(fedPath, 'utf8'));
  if (dml.lora.base.digest !== fed.lora.base.digest) throw new Error(`seed ${seed}: the FedAvg run adapted another base (${fed.lora.base.digest} vs ${dml.lora.base.digest})`);
  seeds.push({ seed, digest: dml.lora.base.digest, code: dml.code, fedCode: fed.code, seconds: dml.seconds + fed.seconds, adapters: dml.lora.adapterParameters, baseParameters: dml.lora.base.parameters });
  rows.base.push({ ...dml.lora.base.final, up: 0, down: 0 });
  for (const run of [...dml.runs, ...fed.runs]) rows[run.algorithm].push({ ...run.final, up: run.totalBytes.up, down: run.totalBytes.down });
  // run-topk8.sh's runs, when there: DML with top-8 sparse knowledge on the same base.
  const topkPath = join(dir, `seed${seed}-dml-topk8`, 'result.json');
  if (existsSync(topkPath)) {
    const topk = JSON.parse(readFileSync(topkPath, 'utf8'));
    if (topk.lora.base.digest !== dml.lora.base.digest) throw new Error(`seed ${seed}: the top-k run adapted another base`);
    for (const run of topk.runs) rows['dml-topk8'].push({ ...run.final, up: run.totalBytes.up, down: run.totalBytes.down });
  }
}
const stat = (xs) => {
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = xs.length < 2 ? 0 : Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1));
  return { m, sd };
};
const pm = (xs, digits = 3) => { const { m, sd } = stat(xs); return `${m.toFixed(digits)} ± ${sd.toFixed(digits)}`; };
const bytes = (xs) => { const { m, sd } = stat(xs); return m === 0 ? '0' : `${(m / 1e6).toFixed(3)} ± ${(sd / 1e6).toFixed(3)} MB`; };
const names = { base: 'frozen base (no adapters)', local: 'local-only LoRA', dml: 'DML, LoRA students (dense per-token)', 'dml-topk8': 'DML, LoRA students (top-8 per-token)', fedavg: 'FedAvg of the adapters' };
const out = [`Seeds: ${seeds.map((s) => s.seed).join(', ')} (${seeds.length}); ${seeds[0]?.baseParameters} base parameters, ${seeds[0]?.adapters} adapter parameters per site.`, ''];
out.push('| method | own held-out bpb | mixed held-out bpb | bytes up (all sites) | bytes down |', '| --- | --- | --- | --- | --- |');
for (const [key, rs] of Object.entries(rows)) {
  if (rs.length === 0) continue;
  out.push(`| ${names[key]} | ${pm(rs.map((r) => r.meanOwn))} | ${pm(rs.map((r) => r.meanMixed))} | ${bytes(rs.map((r) => r.up))} | ${bytes(rs.map((r) => r.down))} |`);
}
out.push('');
// Paired per seed against local-only LoRA: the same sites, base, adapters' initial values and batches.
for (const key of ['dml', 'dml-topk8', 'fedavg', 'base']) {
  if (rows[key].length !== rows.local.length) continue;
  const own = rows[key].map((r, i) => (100 * (r.meanOwn - rows.local[i].meanOwn)) / rows.local[i].meanOwn);
  const mixed = rows[key].map((r, i) => (100 * (rows.local[i].meanMixed - r.meanMixed)) / rows.local[i].meanMixed);
  out.push(`- ${names[key]} against local-only LoRA, paired by seed: mixed ${pm(mixed, 1)} % lower, own ${pm(own, 1)} % higher.`);
}
for (const key of ['dml', 'dml-topk8']) {
  if (rows[key].length !== rows.fedavg.length) continue;
  const ratio = rows[key].map((r, i) => (r.up + r.down) / (rows.fedavg[i].up + rows.fedavg[i].down));
  out.push(`- ${names[key]} moves ${pm(ratio, 0)}× the bytes of FedAvg of the adapters (up + down).`);
}
out.push('', 'Per seed (base digest, code):');
for (const s of seeds) out.push(`- seed ${s.seed}: base ${s.digest}; commit ${s.code?.commit} dirty ${s.code?.dirty} (FedAvg run: ${s.fedCode?.commit} dirty ${s.fedCode?.dirty}); ${s.seconds.toFixed(0)} s`);
console.log(out.join('\n'));
