/**
 * What every benchmark shares: the shape of a result, timing helpers and progress lines.
 *
 * The machine is small and shared, so a figure is never judged alone: each one that carries a
 * target is a ratio against a baseline measured in the same run, ideally interleaved with it
 * (A, B, A, B, …) so that a burst of load from elsewhere hits both sides alike.
 */

export type Cell = string | number;

export interface Table {
  caption: string;
  columns: string[];
  rows: Cell[][];
}

/** A target: `value` (or `ratio` when `on` is 'ratio') must be ≥ or < `goal`. */
export interface Target {
  on: 'value' | 'ratio';
  op: '>=' | '<';
  goal: number;
}

/** One headline figure, with what it is judged by. */
export interface Figure {
  id: string;
  label: string;
  value: number;
  unit: string;
  /** What the figure is divided by to give `ratio`, measured in the same run. */
  baseline?: { label: string; value: number; unit: string };
  ratio?: number;
  target?: Target;
  met?: boolean;
  note?: string;
}

export interface Section {
  id: string;
  title: string;
  /** What was measured and how, in a few lines. */
  method: string[];
  tables: Table[];
  figures: Figure[];
  /** Findings: why a figure is what it is. */
  notes: string[];
  seconds: number;
  /** 1-minute load average before and after the benchmark: above the core count, others were computing too. */
  load?: [number, number];
  error?: string;
}

export interface BenchContext {
  quick: boolean;
  backend?: string;
  /** Prints a progress line (benchmarks can take minutes). */
  log(line: string): void;
}

export interface Benchmark {
  id: string;
  title: string;
  run(context: BenchContext): Promise<Omit<Section, 'id' | 'title' | 'seconds'>>;
}

/** Fills in `ratio` and `met` from the value, the baseline and the target. */
export function figure(f: Omit<Figure, 'ratio' | 'met'>): Figure {
  const out: Figure = { ...f };
  if (f.baseline !== undefined && f.baseline.value !== 0) out.ratio = f.value / f.baseline.value;
  if (f.target !== undefined) {
    const x = f.target.on === 'ratio' ? out.ratio : f.value;
    out.met = x !== undefined && Number.isFinite(x) && (f.target.op === '>=' ? x >= f.target.goal : x < f.target.goal);
  }
  return out;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export const now = (): number => performance.now();

/** Wall-clock milliseconds comparable across processes on one machine. */
export const wallMs = (): number => performance.timeOrigin + performance.now();

/**
 * Times a synchronous function: `warmup` calls, then batches of calls of at least `batchMs`
 * each, `batches` times. Returns the milliseconds per call of each batch.
 */
export function timeSync(fn: () => unknown, options: { warmup?: number; batchMs?: number; batches?: number } = {}): number[] {
  const { warmup = 3, batchMs = 150, batches = 5 } = options;
  for (let i = 0; i < warmup; i++) fn();
  const perCall: number[] = [];
  for (let b = 0; b < batches; b++) perCall.push(timeBatch(fn, batchMs));
  return perCall;
}

/** Calls fn repeatedly for at least batchMs; milliseconds per call. */
function timeBatch(fn: () => unknown, batchMs: number): number {
  let calls = 0;
  const started = now();
  let elapsed = 0;
  do {
    fn();
    calls++;
    elapsed = now() - started;
  } while (elapsed < batchMs);
  return elapsed / calls;
}

/** Times an async function once per repetition, after `warmup` untimed calls. Milliseconds per call. */
export async function timeAsync(fn: () => Promise<unknown>, options: { warmup?: number; reps?: number } = {}): Promise<number[]> {
  const { warmup = 1, reps = 5 } = options;
  for (let i = 0; i < warmup; i++) await fn();
  const times: number[] = [];
  for (let r = 0; r < reps; r++) {
    const started = now();
    await fn();
    times.push(now() - started);
  }
  return times;
}

/**
 * Times several async variants interleaved, A B C A B C …, so that load from other processes
 * falls on all of them alike. Returns milliseconds per call for each variant, by name.
 */
export async function interleaved(
  variants: Record<string, () => Promise<unknown>>,
  options: { warmup?: number; reps?: number; onRep?: (rep: number) => void } = {},
): Promise<Record<string, number[]>> {
  const { warmup = 1, reps = 5 } = options;
  const names = Object.keys(variants);
  for (let w = 0; w < warmup; w++) for (const name of names) await variants[name]!();
  const times: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, [] as number[]]));
  for (let r = 0; r < reps; r++) {
    for (const name of names) {
      const started = now();
      await variants[name]!();
      times[name]!.push(now() - started);
    }
    options.onRep?.(r + 1);
  }
  return times;
}

/**
 * Times synchronous variants interleaved, A B A B …: `rounds` rounds of batches of at least
 * `batchMs` each. Returns the median milliseconds per call of each, by name.
 */
export function interleavedSync(variants: Record<string, () => unknown>, options: { rounds?: number; batchMs?: number } = {}): Record<string, number> {
  const { rounds = 7, batchMs = 60 } = options;
  const names = Object.keys(variants);
  for (const name of names) for (let i = 0; i < 3; i++) variants[name]!();
  const perCall: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, [] as number[]]));
  for (let r = 0; r < rounds; r++) {
    for (const name of names) perCall[name]!.push(timeBatch(variants[name]!, batchMs));
  }
  return Object.fromEntries(names.map((n) => [n, median(perCall[n]!)]));
}

// ---- formatting ---------------------------------------------------------------------------

/** A number with about three significant digits, grouped by thousands when large. */
export function fmt(x: number, digits = 3): string {
  if (!Number.isFinite(x)) return String(x);
  const abs = Math.abs(x);
  if (abs >= 1000) return Math.round(x).toLocaleString('en-US');
  if (abs === 0) return '0';
  const decimals = Math.max(0, digits - 1 - Math.floor(Math.log10(abs)));
  return x.toFixed(Math.min(decimals, 6));
}

export const ratioText = (r: number | undefined): string => (r === undefined || !Number.isFinite(r) ? '—' : `${fmt(r)}×`);

export function bytesText(n: number): string {
  const units: Array<[number, string]> = [[2 ** 30, 'GiB'], [2 ** 20, 'MiB'], [2 ** 10, 'KiB']];
  for (const [size, unit] of units) if (Math.abs(n) >= size) return `${fmt(n / size)} ${unit}`;
  return `${Math.round(n)} B`;
}

/** GB/s (10^9 bytes per second) from bytes and milliseconds. */
export const gbPerSecond = (bytes: number, ms: number): number => bytes / ms / 1e6;

/** Deterministic pseudo-random numbers in [0, 1) (mulberry32), for payloads that repeat run to run. */
export function seededUniform(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Rows of softmax(z / T) for random logits z ~ U(−4, 4): what participants upload. Each row
 * sums to 1 within float32 rounding.
 */
export function softPredictions(rows: number, classes: number, seed: number, temperature = 3): Float32Array {
  const rand = seededUniform(seed);
  const out = new Float32Array(rows * classes);
  const z = new Float64Array(classes);
  for (let r = 0; r < rows; r++) {
    let max = -Infinity;
    for (let c = 0; c < classes; c++) {
      z[c] = (rand() * 8 - 4) / temperature;
      if (z[c]! > max) max = z[c]!;
    }
    let sum = 0;
    for (let c = 0; c < classes; c++) sum += z[c] = Math.exp(z[c]! - max);
    for (let c = 0; c < classes; c++) out[r * classes + c] = z[c]! / sum;
  }
  return out;
}

/**
 * Samples process memory while `work` runs; returns its result, the peak RSS seen, and the cores
 * this process actually got: CPU seconds of all its threads (worker threads included) over wall
 * seconds. On a machine others are loading too, that is how much parallelism there was to have.
 */
export async function withPeakRss<T>(work: () => Promise<T>, everyMs = 100): Promise<{ result: T; peakRss: number; coresUsed: number }> {
  let peakRss = process.memoryUsage.rss();
  const timer = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage.rss());
  }, everyMs);
  const cpu = process.cpuUsage();
  const started = now();
  try {
    const result = await work();
    peakRss = Math.max(peakRss, process.memoryUsage.rss());
    const used = process.cpuUsage(cpu);
    return { result, peakRss, coresUsed: (used.user + used.system) / 1000 / (now() - started) };
  } finally {
    clearInterval(timer);
  }
}
