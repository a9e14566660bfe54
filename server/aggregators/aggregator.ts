/**
 * The aggregator contract: many participants' soft predictions for one round in, one
 * aggregate out. All math runs on typed arrays (the server never imports tfjs), accumulates in
 * float64 and returns float32, the precision the aggregate travels in.
 *
 * A contribution's values come from the wire, where the session has already checked shape and
 * finiteness; the aggregators check again because they are also a library, and a refusal here
 * carries the same error codes the wire uses (E_SHAPE, E_VALUE, E_SCHEMA). What is the server's
 * own doing — its configuration (rows, classes, temperature, trim fraction), an empty round, a
 * participant counted twice — is refused with a plain error: the operator's to fix, not a
 * participant's.
 */
import { ErrorCode, ProtocolError } from '../../protocol/errors.js';
import type { Contribution } from '../../protocol/knowledge.js';
import { firstNonFiniteSum, sumOf } from './sums.js';

/** One participant's contribution: its decoded values plus optional metadata (protocol's one Contribution type). */
export type { Contribution };

export interface AggregatorOptions {
  rows: number;
  classes: number;
  /** ERA's sharpening temperature T, 0 < T < 1; default 0.1 (DS-FL's setting). */
  temperature?: number;
  /** Trimmed mean: fraction β of values dropped on each side per coordinate, 0 ≤ β < 0.5; default 0.1. */
  trimFraction?: number;
}

/** Aggregates contributions into one row-major [rows, classes] array. */
export type Aggregator = (contributions: readonly Contribution[], options: AggregatorOptions) => Float32Array;

/**
 * An aggregator after checkContributions: `arrays` are the contributions' values, already
 * checked. What an aggregator checks of its own (counts, temperature, trim fraction) it still
 * checks here. Leave-one-out aggregates check the whole set once and then call the core n times
 * on subsets of it, which pass every check the whole set passed.
 */
export type AggregatorCore = (contributions: readonly Contribution[], arrays: readonly Float32Array[], options: AggregatorOptions) => Float32Array;

/**
 * Every contributor's leave-one-out aggregate at once, in contribution order, from values already
 * checked: faster than the core run n times (one sort per coordinate for the median and the
 * trimmed mean).
 */
export type LeaveOneOut = (arrays: readonly Float32Array[], options: AggregatorOptions) => Float32Array[];

/** What the settings of a session that uses an aggregator must satisfy, beyond each value's own range. */
export interface AggregatorSettings {
  trimFraction?: number;
  participants: number;
}

/**
 * One aggregator, as the registry (index.ts) knows it: a file exports one of these, and the
 * registry lists it on one line. Strategies, leave-one-out targets, config checks and secure
 * aggregation read these fields instead of special-casing names.
 */
export interface AggregatorDescriptor {
  readonly name: string;
  /** The aggregate of all contributions, checked. */
  readonly aggregate: Aggregator;
  /** The aggregate of values already checked (leave-one-out calls it on subsets of a checked set). */
  readonly core: AggregatorCore;
  /**
   * The aggregate is the plain mean of the values: every leave-one-out target is (S − own)/(n − 1)
   * from one float64 sum (Zhang et al. 2018's trick), with the checks fused into that sum.
   */
  readonly plainMean: boolean;
  /** A faster leave-one-out than n runs of the core, where the aggregator has one. */
  readonly leaveOneOut?: LeaveOneOut;
  /** Reads each contribution's values, not only their (weighted) sums: impossible where the coordinator sees only sums. */
  readonly needsIndividualValues: boolean;
  /** Problems with a session's settings for this aggregator (a trim fraction that trims nothing, …). */
  readonly configProblems?: (settings: AggregatorSettings) => string[];
}

/**
 * Checks what every aggregator needs: at least one contribution, distinct participants, a
 * sensible shape, every values array exactly rows × classes long and free of NaN and ±Infinity.
 * Returns the values arrays, in contribution order.
 */
export function checkContributions(
  aggregator: string,
  contributions: readonly Contribution[],
  options: AggregatorOptions,
): Float32Array[] {
  const { rows, classes } = options;
  if (!Number.isInteger(rows) || rows < 1 || !Number.isInteger(classes) || classes < 1) {
    throw new Error(`${aggregator}: rows and classes must be positive integers; got rows=${rows}, classes=${classes}`);
  }
  if (contributions.length === 0) {
    throw new Error(`${aggregator}: no contributions to aggregate`);
  }
  const length = rows * classes;
  const seen = new Set<string>();
  const arrays: Float32Array[] = [];
  for (const { participant, values } of contributions) {
    if (seen.has(participant)) {
      throw new Error(`${aggregator}: participant ${participant} contributes twice to one aggregate`);
    }
    seen.add(participant);
    if (values.length !== length) {
      throw new ProtocolError(
        ErrorCode.Shape,
        `${aggregator}: ${participant} sent ${values.length} values; expected rows × classes = ${rows} × ${classes} = ${length}`,
      );
    }
    for (let i = 0; i < length; i++) {
      const x = values[i]!;
      // x − x is 0 for every finite x and NaN for NaN and ±Infinity: one branch, no call.
      if (x - x !== 0) {
        const row = Math.floor(i / classes);
        throw new ProtocolError(
          ErrorCode.Value,
          `${aggregator}: ${participant} sent ${x} at row ${row}, class ${i - row * classes}; values must be finite numbers`,
        );
      }
    }
    arrays.push(values);
  }
  return arrays;
}

/** An aggregator from its core: checkContributions, then the core on the checked values. */
export function withChecks(aggregator: string, core: AggregatorCore): Aggregator {
  return (contributions, options) => core(contributions, checkContributions(aggregator, contributions, options), options);
}

/**
 * checkContributions and sumOf in one pass over the values instead of two: the same checks, the
 * same errors, the same sum. The per-value finiteness test becomes one scan of the float64 sum,
 * which is finite exactly when every value is (firstNonFiniteSum). When anything is wrong —
 * shape, a participant twice, a length, a NaN — checkContributions itself runs and throws the
 * error it always threw, for the first contribution at fault.
 */
export function checkedSum(
  aggregator: string,
  contributions: readonly Contribution[],
  options: AggregatorOptions,
): { arrays: Float32Array[]; sum: Float64Array } {
  const arrays = shapesHold(contributions, options);
  if (arrays !== undefined) {
    const sum = sumOf(arrays);
    if (firstNonFiniteSum(sum) < 0) return { arrays, sum };
  }
  checkContributions(aggregator, contributions, options);
  throw new Error(`${aggregator}: checkContributions accepted what its fused form refused (a bug)`);
}

/** The values arrays if checkContributions' checks other than finiteness all pass, else undefined: a test, no errors. */
function shapesHold(contributions: readonly Contribution[], options: AggregatorOptions): Float32Array[] | undefined {
  const { rows, classes } = options;
  if (!Number.isInteger(rows) || rows < 1 || !Number.isInteger(classes) || classes < 1 || contributions.length === 0) return undefined;
  const length = rows * classes;
  const seen = new Set<string>();
  const arrays: Float32Array[] = [];
  for (const { participant, values } of contributions) {
    if (seen.has(participant) || values.length !== length) return undefined;
    seen.add(participant);
    arrays.push(values);
  }
  return arrays;
}

/**
 * Writes row `row` of `sums` into `out`, scaled to sum to 1. A row that sums to zero (every
 * contribution put nothing on any class, which a median can produce) becomes uniform: the
 * aggregate says "no idea" rather than dividing by zero.
 */
export function writeNormalisedRow(out: Float32Array, row: number, sums: Float64Array, classes: number): void {
  let total = 0;
  for (let c = 0; c < classes; c++) total += sums[c]!;
  const base = row * classes;
  if (total > 0) {
    for (let c = 0; c < classes; c++) out[base + c] = sums[c]! / total;
  } else {
    out.fill(1 / classes, base, base + classes);
  }
}
