/**
 * FedHKD (Chen, Vikalo et al. 2023, "The Best of Both Worlds: Accurate Global and Personalized
 * Models through Federated Learning with Data-Free Hyper-Knowledge Distillation", ICLR, §3): each
 * participant uploads its hyper-knowledge — per class it holds, the mean penultimate-layer
 * representation and the mean soft prediction softmax(z/T) — as one row per class,
 * [classes, width + classes], with its per-class counts; the coordinator sends every participant
 * the global hyper-knowledge, the count-weighted mean per class of both parts
 * (server/aggregators/class-means.ts). A class nobody holds stays absent (count 0).
 *
 * What this is not: FedHKD as published also averages the model weights each round (the authors'
 * code, CityChan/Federated-Hyper-Knowledge-Distillation, Server/ServerFedHKD.py, runs
 * average_weights with upload_model = True by default), so it costs FedAvg's bytes and more. Here
 * only the hyper-knowledge travels — the data-free, weight-free part the method adds — so that it
 * is compared with FD and FedProto on bytes. The authors' code also keeps, per class, the last
 * client's knowledge rather than a weighted mean (its dict.update overwrites), and adds Gaussian
 * noise (std 2) to each local representation for privacy; this follows the paper's weighted mean
 * and leaves noise to client/privacy.ts.
 */
import { classMeansForAll } from './fedproto.js';
import type { StrategyDescriptor } from './strategy.js';

export const fedhkd: StrategyDescriptor = {
  name: 'fedhkd',
  mode: 'sync',
  knowledge: 'class-hyper-knowledge',
  // The code's T = 0.5 (sharpened soft predictions) and λ = γ; α = 0.5 gives λ = γ = 1 (client/procedures/fedhkd.ts).
  defaults: { temperature: 0.5, alpha: 0.5 },
  summary: 'FedHKD without weights: per-class mean representations and soft predictions, no shared data (Chen et al. 2023)',
  create: classMeansForAll,
};
