/** The strategy registry: one line per algorithm. */
import { dml } from './dml.js';
import { local } from './local.js';
import type { Strategy, StrategySettings } from './strategy.js';

export type { Aggregate, Knowledge, RoundPlan, Strategy, StrategySettings } from './strategy.js';

export const STRATEGIES: Record<string, (settings: StrategySettings) => Strategy> = {
  dml,
  local,
};

export function createStrategy(algorithm: string, settings: StrategySettings): Strategy {
  const make = STRATEGIES[algorithm];
  if (make === undefined) {
    throw new Error(`unknown algorithm "${algorithm}"; choose one of ${Object.keys(STRATEGIES).join(', ')}`);
  }
  return make(settings);
}
