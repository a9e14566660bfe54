/** The strategy registry: one line per algorithm. */
import { codistillation } from './codistillation.js';
import { dml } from './dml.js';
import { dsfl } from './dsfl.js';
import { fd } from './fd.js';
import { fedavg } from './fedavg.js';
import { fedmd } from './fedmd.js';
import { local } from './local.js';
import type { Strategy, StrategySettings } from './strategy.js';

export type { Aggregate, Knowledge, RoundPlan, Strategy, StrategySettings, Target } from './strategy.js';

export const STRATEGIES: Record<string, (settings: StrategySettings) => Strategy> = {
  dml,
  codistillation,
  fd,
  fedmd,
  dsfl,
  fedavg,
  local,
};

/** Each algorithm's session defaults: the settings its paper uses or that we measured to work. */
export interface AlgorithmDefaults {
  temperature: number;
  alpha: number;
  aggregator?: string;
  sharpenTemperature?: number;
}

export const ALGORITHM_DEFAULTS: Record<string, AlgorithmDefaults> = {
  // Hinton et al.'s soft targets at T = 3, equal weight on labels and peers.
  dml: { temperature: 3, alpha: 0.5, aggregator: 'mean' },
  // Jeong et al. distill towards the others' per-class logits; T = 1 keeps their logit scale.
  // Anil et al. distill towards the others' stale predictions after a burn-in.
  codistillation: { temperature: 3, alpha: 0.5, aggregator: 'mean' },
  fd: { temperature: 1, alpha: 0.5 },
  // FedMD digests raw logits (T unused) and revisits on labels alone (α unused).
  fedmd: { temperature: 1, alpha: 1, aggregator: 'mean-logits' },
  // DS-FL predicts at T = 1 and sharpens the mean with ERA at T = 0.1 (Itahara et al.).
  dsfl: { temperature: 1, alpha: 0, aggregator: 'era', sharpenTemperature: 0.1 },
  fedavg: { temperature: 1, alpha: 1 },
  local: { temperature: 1, alpha: 1 },
};

export function createStrategy(algorithm: string, settings: StrategySettings): Strategy {
  // Object.hasOwn: "constructor" must not pass for an algorithm.
  const make = Object.hasOwn(STRATEGIES, algorithm) ? STRATEGIES[algorithm] : undefined;
  if (make === undefined) {
    throw new Error(`unknown algorithm "${algorithm}"; choose one of ${Object.keys(STRATEGIES).join(', ')}`);
  }
  return make(settings);
}
