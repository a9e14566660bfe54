/** The strategy registry: one line per algorithm; every table of algorithms derives from it. */
import { codistillation } from './codistillation.js';
import { dml } from './dml.js';
import { dsfl } from './dsfl.js';
import { fd } from './fd.js';
import { fedavg } from './fedavg.js';
import { fedhkd } from './fedhkd.js';
import { fedmd } from './fedmd.js';
import { fedproto } from './fedproto.js';
import { kdcl } from './kdcl.js';
import { local } from './local.js';
import type { AlgorithmDefaults, Strategy, StrategyDescriptor, StrategySettings } from './strategy.js';

export type { Aggregate, AlgorithmDefaults, Knowledge, RoundPlan, Strategy, StrategyDescriptor, Target } from './strategy.js';

const DESCRIPTORS: readonly StrategyDescriptor[] = [dml, codistillation, fd, fedmd, dsfl, fedavg, local, kdcl, fedproto, fedhkd];

/** Every algorithm's descriptor, by name. */
export const STRATEGIES: Readonly<Record<string, StrategyDescriptor>> = Object.fromEntries(DESCRIPTORS.map((d) => [d.name, d]));

/** The algorithms' names, in the registry's order. */
export const ALGORITHM_NAMES: readonly string[] = DESCRIPTORS.map((d) => d.name);

/** Each algorithm's session defaults (from its descriptor). */
export const ALGORITHM_DEFAULTS: Readonly<Record<string, AlgorithmDefaults>> = Object.fromEntries(DESCRIPTORS.map((d) => [d.name, d.defaults]));

/** The descriptor of `algorithm`, or an error that lists the algorithms there are. */
export function strategyDescriptor(algorithm: string): StrategyDescriptor {
  // Object.hasOwn: "constructor" must not pass for an algorithm.
  const descriptor = Object.hasOwn(STRATEGIES, algorithm) ? STRATEGIES[algorithm] : undefined;
  if (descriptor === undefined) {
    throw new Error(`unknown algorithm "${algorithm}"; choose one of ${ALGORITHM_NAMES.join(', ')}`);
  }
  return descriptor;
}

export function createStrategy(algorithm: string, settings: StrategySettings): Strategy {
  const { name, knowledge, mode, create, perToken } = strategyDescriptor(algorithm);
  if (settings.positions !== undefined && perToken !== true) throw new Error(`${name} does not exchange per-token knowledge`);
  return { name, knowledge: settings.positions === undefined ? knowledge : 'reference-token-predictions', mode, ...create(settings) };
}
