/**
 * Experiment configs: one file (JSON or YAML) is one experiment. A config is validated against
 * one schema whatever its origin — the file, command-line flags that override its fields, or
 * the defaults — and an error names the field, the allowed values and what was given.
 */
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { BACKENDS } from '../client/backend.js';
import { FORTUNE_DOMAINS } from '../client/data/text.js';
import { LORA_TARGET_NAMES } from '../client/lm/lora.js';
import { LM_NAMES_HELP, parseLmSpec } from '../client/lm/model.js';
import { isModelName, MODEL_NAMES_HELP, type ModelName } from '../client/models.js';
import { SPARSE_TAILS, WIRE_DTYPES } from '../protocol/index.js';
import { AGGREGATOR_NAMES } from '../server/aggregators/index.js';
import { STRATEGIES } from '../server/strategies/index.js';
import { ATTACK_KINDS } from './attacks.js';
import { GROUP_ROLES, groupRefusals, learnerCount, participantCount, type GroupRole } from './groups.js';
import { secureAggregationProblems } from '../server/secure-config.js';
import { CENTRALIZED, distillerRefusal, type SimulationOptions } from './simulate.js';

const oneOf = <T extends string>(values: readonly T[]) =>
  z.enum(values as [T, ...T[]], { error: `must be one of ${values.join(', ')}` });
/** A model createModel builds: mlp, cnn, or mlp with its hidden sizes (mlp:100). */
const modelName = z.string({ error: `must be one of ${MODEL_NAMES_HELP}` }).refine(isModelName, { error: `must be one of ${MODEL_NAMES_HELP}` }).transform((name) => name as ModelName);
const integer = (min: number) => z.number({ error: 'must be a number' }).int('must be an integer').min(min, `must be ≥ ${min}`);
const positive = z.number({ error: 'must be a number' }).positive('must be > 0');

const partition = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('iid') }).strict(),
  z.object({ kind: z.literal('dirichlet'), alpha: positive, minSize: integer(0).optional() }).strict(),
  z.object({ kind: z.literal('shards'), classesPerParticipant: integer(1) }).strict(),
  z.object({ kind: z.literal('quantity'), alpha: positive, minSize: integer(0).optional() }).strict(),
], { error: 'kind must be one of iid, dirichlet, shards, quantity' });

const data = z.discriminatedUnion('source', [
  z.object({ source: z.literal('mnist') }).strict(),
  z.object({ source: z.literal('idx'), folder: z.string().min(1) }).strict(),
  z.object({ source: z.literal('csv'), train: z.string().min(1), test: z.string().min(1).optional(), label: z.string().optional() }).strict(),
  // Language models across sites (simulations/text-sessions.ts): one participant per fortune language.
  z.object({
    source: z.literal('text'),
    domains: z.array(oneOf(Object.keys(FORTUNE_DOMAINS)), { error: `must list fortune languages (${Object.keys(FORTUNE_DOMAINS).join(', ')})` }).min(2, 'must list at least 2 domains'),
    root: z.string().min(1).optional(),
  }).strict(),
], { error: 'source must be one of mnist, idx, csv, text' });

/** A text simulation's language model and text split (simulations/text-sessions.ts LmSettings). */
const lm = z.object({
  model: z.string().refine((name) => { try { parseLmSpec(name); return true; } catch { return false; } }, { error: `must be a language model, ${LM_NAMES_HELP}` }),
  steps: integer(1),
  maxBytesPerDomain: integer(1000).default(100_000),
  heldOutFraction: z.number({ error: 'must be a number' }).gt(0, 'must be in (0, 1)').lt(1, 'must be in (0, 1)').default(0.1),
  referenceBytesPerDomain: integer(1).default(10_000),
  // LoRA students on a frozen base (client/lm/lora.ts); the base is trained once on the reference text.
  lora: z.object({
    rank: integer(1),
    alpha: z.number({ error: 'must be a number' }).positive('must be > 0'),
    targets: z.array(oneOf(LORA_TARGET_NAMES)).min(1, 'must list at least one layer').default(['q', 'v']),
    initStd: z.number({ error: 'must be a number' }).positive('must be > 0').optional(),
  }).strict().optional(),
  base: z.object({ steps: integer(1).optional(), learningRate: z.number({ error: 'must be a number' }).positive('must be > 0').optional(), from: z.string().min(1).optional() }).strict()
    .refine((b) => (b.steps === undefined) !== (b.from === undefined), { error: 'takes steps (train the base on the reference text) or from (a saved base folder), not both' }).optional(),
}).strict()
  .refine((s) => (s.lora === undefined) === (s.base === undefined), { error: 'lora and base go together: LoRA students adapt a frozen base trained on the reference text (base: { steps })' })
  .refine((s) => s.lora === undefined || s.model.startsWith('transformer:'), { path: ['lora'], error: 'LoRA adapts a Transformer\'s linear layers: the model must be a transformer' });

/**
 * A count of learners with the experiment's model, or a list of groups (simulations/groups.ts),
 * each { count, model?, role? }; groupRefusals then checks what the algorithm can run.
 */
const participants = z.union([
  integer(2),
  z.array(
    z.object({
      count: integer(1),
      model: modelName.optional(),
      // A refined string, not an enum: zod reports a union's failed enum on the whole list, not on the role.
      role: z.string({ error: 'must be a role name' }).refine((r) => (GROUP_ROLES as readonly string[]).includes(r), {
        error: `must be one of ${GROUP_ROLES.join(', ')} (a distiller is the experiment's own field, distiller)`,
      }).transform((r) => r as GroupRole).optional(),
    }).strict(),
    { error: 'must be a count or a list of groups { count, model, role }' },
  ).min(1, 'must list at least one group'),
], { error: 'must be a count (≥ 2) or a list of groups { count, model, role }' });

/** Every field of an experiment; `strict` so that a misspelt field is an error, not a silent default. */
export const experimentSchema = z
  .object({
    data: data.optional(),
    algorithm: oneOf([...Object.keys(STRATEGIES), CENTRALIZED]),
    participants,
    rounds: integer(1),
    model: modelName,
    partition,
    seed: integer(0).max(2 ** 20 - 1, 'must be < 2^20'),
    testSize: integer(1),
    referenceSize: integer(1),
    privateSize: integer(1).optional(),
    referencePerRound: integer(1),
    epochs: integer(1),
    batchSize: integer(1),
    learningRate: positive,
    alpha: z.number({ error: 'must be a number' }).min(0, 'must be in [0, 1]').max(1, 'must be in [0, 1]').optional(),
    temperature: positive.optional(),
    aggregator: oneOf(AGGREGATOR_NAMES).optional(),
    trimFraction: z.number({ error: 'must be a number' }).min(0, 'must be in [0, 0.5)').lt(0.5, 'must be in [0, 0.5)').optional(),
    attack: z.object({ kind: oneOf(ATTACK_KINDS), participants: integer(0), scale: positive.optional() }).strict().optional(),
    privacy: z.object({
      clip: positive,
      noiseMultiplier: positive,
      delta: z.number({ error: 'must be a number' }).gt(0, 'must be in (0, 1)').lt(1, 'must be in (0, 1)'),
    }).strict().optional(),
    /** Secure aggregation (server/secure-rounds.ts): the coordinator sees only sums; threshold = Shamir's t. */
    secureAggregation: z.object({ threshold: integer(2) }).strict().optional(),
    uploadDtype: oneOf(WIRE_DTYPES),
    targetDtype: oneOf(WIRE_DTYPES).optional(),
    uploadTopK: integer(1).optional(),
    targetTopK: integer(1).optional(),
    sparseTail: oneOf(SPARSE_TAILS).optional(),
    backend: oneOf(BACKENDS).optional(),
    workers: integer(1).optional(),
    /**
     * One distiller beside the participants: { model }, or true for the participants' model (read
     * as {}), false for none. Not a union, so that a wrong model is reported as distiller.model.
     */
    distiller: z.preprocess(
      (value) => (value === true ? {} : value === false ? undefined : value),
      z.object({ model: modelName.optional() }, { error: 'must be true, false or { model: NAME }' }).strict().optional(),
    ),
    /** Participant sampling per round: exactly one of fraction and count, and a minimum (the quorum). */
    sampling: z.object({
      fraction: z.number({ error: 'must be a number' }).gt(0, 'must be in (0, 1]').max(1, 'must be in (0, 1]').optional(),
      count: integer(1).optional(),
      min: integer(1).optional(),
    }).strict().optional(),
    /** Co-distillation's knobs; DEFAULT_ASYNC for the ones omitted. */
    async: z.object({ shards: integer(1).optional(), exchangeEvery: integer(1).optional(), burnInSteps: integer(0).optional(), stalenessMs: positive.optional() }).strict().optional(),
    /** FedMD's transfer learning: epochs on the labelled reference set, then on the private data, before round 1. */
    pretrainOnReference: integer(0).optional(),
    lm: lm.optional(),
    baseline: z.boolean({ error: 'must be true or false' }),
    out: z.string(),
  })
  .strict()
  .superRefine((config, context) => {
    // Cross-field rules, each reported on the field a person would change.
    const learners = learnerCount(config);
    if (config.attack !== undefined && config.attack.participants >= learners) {
      context.addIssue({
        code: 'custom', path: ['attack', 'participants'], input: config.attack.participants,
        message: `must be fewer than participants (${learners}): at least one participant has to stay honest`,
      });
    }
    for (const [field, message] of groupRefusals(config, CENTRALIZED)) context.addIssue({ code: 'custom', path: [field], input: config.participants, message });
    if (config.secureAggregation !== undefined) {
      const algorithm = config.algorithm === CENTRALIZED ? 'local' : config.algorithm;
      for (const message of secureAggregationProblems({ ...config, algorithm, minParticipants: participantCount(config), secureAggregation: config.secureAggregation }, participantCount(config))) {
        context.addIssue({ code: 'custom', path: ['secureAggregation'], message });
      }
    }
    const refusal = config.distiller === undefined ? undefined : distillerRefusal(config.algorithm);
    if (refusal !== undefined) context.addIssue({ code: 'custom', path: ['distiller'], message: refusal });
    const mode = Object.hasOwn(STRATEGIES, config.algorithm) ? STRATEGIES[config.algorithm]!.mode : 'sync';
    if (config.sampling !== undefined) {
      const why = config.algorithm === CENTRALIZED ? 'centralized pools every shard into one participant: there is nobody to sample'
        : mode === 'async' ? `${config.algorithm} exchanges asynchronously: there are no rounds to sample participants for`
        : undefined;
      if (why !== undefined) context.addIssue({ code: 'custom', path: ['sampling'], message: why });
      // The session's rules (server/participant-sampling.ts) with the quorum the simulation sets (the sample's minimum, or its size) hold when these do.
      else {
        const { fraction, count, min } = config.sampling;
        if ((fraction === undefined) === (count === undefined)) context.addIssue({ code: 'custom', path: ['sampling'], message: `takes exactly one of fraction and count (got ${fraction === undefined ? 'neither' : 'both'})` });
        for (const [field, value] of [['count', count], ['min', min]] as const) {
          if (value !== undefined && value > participantCount(config)) context.addIssue({ code: 'custom', path: ['sampling', field], input: value, message: `must be ≤ the participants that contribute (${participantCount(config)})` });
        }
        if (count !== undefined && min !== undefined && min > count) context.addIssue({ code: 'custom', path: ['sampling', 'min'], input: min, message: `must be ≤ count (${count}): a round samples count participants` });
      }
    }
    if (config.async !== undefined && mode !== 'async') {
      const asynchronous = Object.values(STRATEGIES).filter((d) => d.mode === 'async').map((d) => d.name).join(', ');
      context.addIssue({ code: 'custom', path: ['async'], message: `${config.algorithm} runs synchronous rounds: the asynchronous exchange's knobs are for ${asynchronous} only` });
    }
    // A text simulation's reference set is its windows, counted once the text is read (the session config checks the shards then).
    if (config.async?.shards !== undefined && config.data?.source !== 'text' && config.async.shards > config.referenceSize) {
      context.addIssue({ code: 'custom', path: ['async', 'shards'], input: config.async.shards, message: `must be ≤ referenceSize (${config.referenceSize}): each shard holds reference samples` });
    }
    if (config.data?.source === 'text') {
      // What the text simulation runs: one site per domain, a per-token algorithm or local-only, no classifier-only features.
      if (config.lm === undefined) context.addIssue({ code: 'custom', path: ['lm'], message: 'is required with data.source text: { model, steps, … }' });
      if (config.participants !== config.data.domains.length) context.addIssue({ code: 'custom', path: ['participants'], input: config.participants, message: `must be the number of text domains (${config.data.domains.length}): one site per domain` });
      const perToken = Object.values(STRATEGIES).filter((d) => d.perToken === true).map((d) => d.name);
      // fedavg averages each site's trainable weights (with lm.lora: the adapters).
      if (![...perToken, 'local', 'fedavg'].includes(config.algorithm)) context.addIssue({ code: 'custom', path: ['algorithm'], input: config.algorithm, message: `text sessions run ${[...perToken, 'local', 'fedavg'].join(', ')}` });
      for (const field of ['attack', 'privacy', 'secureAggregation', 'distiller', 'sampling', 'pretrainOnReference'] as const) {
        if (config[field] !== undefined) context.addIssue({ code: 'custom', path: [field], message: 'is not supported in text simulations' });
      }
    } else if (config.lm !== undefined) context.addIssue({ code: 'custom', path: ['lm'], message: 'is for text simulations (data.source text) only' });
    if (config.attack !== undefined && config.algorithm === CENTRALIZED && config.attack.participants > 0) {
      context.addIssue({ code: 'custom', path: ['attack'], message: 'centralized pools every shard into one participant: there is nobody to be hostile' });
    }
  }) satisfies z.ZodType<SimulationOptions>;

/** Validates a merged config; throws one error listing every problem as `field: rule (got value)`. */
export function validateExperiment(candidate: unknown, origin: string): SimulationOptions {
  const parsed = experimentSchema.safeParse(candidate, { reportInput: true });
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) => {
    const field = issue.path.join('.') || '(config)';
    if (issue.code === 'unrecognized_keys') return `${field === '(config)' ? '' : `${field}: `}unknown field ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
    const got = 'input' in issue && issue.input !== undefined ? ` (got ${JSON.stringify(issue.input)})` : '';
    return `${field}: ${issue.message}${got}`;
  });
  throw new Error(`invalid experiment config (${origin}):\n  ${problems.join('\n  ')}`);
}

/** Reads a JSON or YAML config file into a plain object (validation happens after merging overrides). */
export function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new Error(`cannot read config ${path}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message}`);
  }
  let value: unknown;
  try {
    value = ['.yaml', '.yml'].includes(extname(path).toLowerCase()) ? parseYaml(text) : JSON.parse(text);
  } catch (error) {
    throw new Error(`config ${path} is not valid ${extname(path).toLowerCase().startsWith('.y') ? 'YAML' : 'JSON'}: ${(error as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`config ${path} must hold an object of experiment fields`);
  return value as Record<string, unknown>;
}
