/**
 * What an experiment config says about a text simulation (simulations/text-sessions.ts): its data
 * source and its language-model settings. Types only, shared by the options (simulate.ts) and
 * the runner, so that neither imports the other for them.
 */

export interface TextSource {
  source: 'text';
  domains: string[];
  root?: string;
}

/** The language-model settings of a text simulation. */
export interface LmSettings {
  /** client/lm/model.ts names, e.g. transformer:d=32,l=2,h=4,ctx=32. */
  model: string;
  /** Adam steps per round, each on a batch of batchSize private sequences (and, in DML, as many reference windows). */
  steps: number;
  /** Each domain's text after a seeded shuffle is capped at this many bytes (before the split). */
  maxBytesPerDomain: number;
  /** Fraction of each domain's documents held out. */
  heldOutFraction: number;
  /** Bytes of each domain's (non-held-out) documents given to the shared reference text instead of its site. */
  referenceBytesPerDomain: number;
  /**
   * LoRA students (client/lm/lora.ts): every site adapts the same frozen base with low-rank
   * adapters of this rank and α on these layers (q, k, v, o, mlp-in, mlp-out or all); only the
   * adapters train, and FedAvg exchanges only them.
   */
  lora?: { rank: number; alpha: number; targets: string[]; initStd?: number };
  /**
   * With lora: the frozen base, trained once with token-CE on the shared reference text for
   * `steps` Adam steps (at learningRate, the run's by default) and saved in <out>/base/; or `from`,
   * the base folder of an earlier run on the same seed, so that several sessions adapt one base.
   */
  base?: { steps?: number; learningRate?: number; from?: string };
}
