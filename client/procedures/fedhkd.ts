/**
 * FedHKD's hyper-knowledge (Chen et al. 2023), a participant's round: train on the private data
 * towards the previous round's global hyper-knowledge, then upload, per class held, the mean
 * representation followed by the mean soft prediction softmax(z/T), with the per-class counts.
 * The objective is
 *   α · CE(y, z) + (1 − α) · [ (1/|H|) Σ_{c∈H} KL(Q̄_c ‖ softmax(head(H̄_c)/T)) + (1/(N·D)) Σ_n ‖f(x_n) − H̄_{y_n}‖² ]
 * (client/losses/class-knowledge.ts: `hyper-knowledge` and `prototypes`), the paper's
 * CE + λ·KD + γ·MSE with λ = γ = (1 − α)/α (the authors' defaults have λ = γ); the first round
 * is CE alone, as in their code. The KD term is what reaches the classes this participant never
 * holds: its head learns to map every held class's global representation to that class's global
 * soft prediction. Weights never travel (server/strategies/fedhkd.ts says how that departs from the paper).
 */
import type { SyncProcedure } from './procedure.js';
import { classKnowledgeProcedure } from './fedproto.js';

export const fedhkd = (): SyncProcedure => classKnowledgeProcedure(true);
