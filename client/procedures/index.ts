/** The procedure registry: one line per algorithm, matching server/strategies. */
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
import type { Procedure } from './procedure.js';

export type { AsyncChannel, AsyncProcedure, ParticipantData, Procedure, RoundContext, Share, SyncProcedure, Target, UploadContext, UploadHook } from './procedure.js';
export { combined, targetShape } from './procedure.js';

/**
 * Each participant gets its own procedure instance: some keep state between share and learn.
 * A procedure is a SyncProcedure (share, learn: every round) or an AsyncProcedure (run).
 */
export const PROCEDURES: Record<string, () => Procedure> = {
  dml,
  codistillation,
  fd,
  fedmd,
  dsfl,
  fedavg,
  local,
  kdcl,
  fedproto,
  fedhkd,
};

export function procedureFor(algorithm: string): Procedure {
  const make = Object.hasOwn(PROCEDURES, algorithm) ? PROCEDURES[algorithm] : undefined;
  if (make === undefined) {
    throw new Error(`this participant has no procedure for algorithm "${algorithm}"; it knows ${Object.keys(PROCEDURES).join(', ')}`);
  }
  return make();
}
