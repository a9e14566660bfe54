/** The procedure registry: one line per algorithm, matching server/strategies. */
import { dml } from './dml.js';
import { local } from './local.js';
import type { Procedure } from './procedure.js';

export type { ParticipantData, Procedure, RoundContext } from './procedure.js';

export const PROCEDURES: Record<string, Procedure> = {
  dml,
  local,
};

export function procedureFor(algorithm: string): Procedure {
  const procedure = PROCEDURES[algorithm];
  if (procedure === undefined) {
    throw new Error(`this participant has no procedure for algorithm "${algorithm}"; it knows ${Object.keys(PROCEDURES).join(', ')}`);
  }
  return procedure;
}
