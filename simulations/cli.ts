#!/usr/bin/env node
/** The `codistill` command. */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { MODEL_NAMES_HELP } from '../client/models.js';
import { WIRE_DTYPES } from '../protocol/index.js';
import { AGGREGATOR_NAMES } from '../server/aggregators/index.js';
import { STRATEGIES } from '../server/strategies/index.js';
import { readConfigFile, validateExperiment } from './config.js';
import { writeRunOutputs } from './outputs.js';
import { LM_NAMES_HELP } from '../client/lm/model.js';
import { CENTRALIZED, DEFAULT_OPTIONS, distillerRefusal, formatSummary, simulate, type SimulationOptions } from './simulate.js';
import { runSweepCommand } from './sweep.js';

const USAGE = `usage: codistill <command> [options]

commands:
  simulate [--config FILE] [options]
             run a coordinator and N participants (worker threads) on this machine, over
             loopback sockets, on the embedded MNIST data; then the local-only baseline
  server --config SESSION.yaml [--host H] [--port P]
             a coordinator for a deployment: one session, participants on other machines
  client --server URL --session ID --data PATH --model NAME [options]
             a participant on this site's own data (CSV or IDX); see codistill client --help
  client --server URL --session ID --text FILE --reference-text FILE --model transformer:… [options]
             a language-model site on its own text file (per-token sessions); see codistill client --help
  demo-sites --out DIR [--sites N] [--rows N] [--reference-size N] [--held-out N] [--seed S]
             files to try a deployment with: each site's CSV, the shared reference set (IDX)
             and a held-out CSV, from the embedded MNIST; prints the reference set's SHA-256
  distill --method kd|fitnets|at|nst|ban|one [options]
             offline distillation in one process: a teacher and a student on the embedded
             MNIST (see codistill distill --help and experiments/offline-kd/)
  distill-lm [options]
             a byte-level language model distilled into a smaller one (alone, word-level and
             sequence-level KD) on text by domain; bits per byte (see codistill distill-lm --help)
  serve-lm --model DIR [--port P --host H --top-k K --token-file F]
             a saved language model over HTTP, per position the top-k next tokens and their
             log-probabilities, as hosted APIs answer (distill-lm --teacher-api reads it)
  generate --model DIR --prompt TEXT [--max-tokens N --temperature T --top-k K --seed S]
             text from a saved language model (greedy at temperature 0)
  sweep FILE run a grid of experiments (JSON or YAML), in parallel, resumable; writes a
             table of the results beside it (see experiments/algorithms/sweep.yaml)
  report RESULTS… [--out DIR]
             a Markdown report with tables and plots (SVG, PNG) from result files
  predict --model DIR --data FILE|FOLDER [--out preds.csv]
             run a saved student on samples: class and probabilities per row; accuracy and
             confusion matrix when the data has labels
  evaluate --model DIR --data FILE|FOLDER [--out metrics.json]
             accuracy, ECE (15 bins) and per-class accuracy of a saved student
  export --model DIR --quantize float16|uint8 --out DIR [--data FILE|FOLDER]
             a quantised copy of a saved student (plain tf.loadLayersModel reads it)

simulate options — each overrides the field of the same name in --config (defaults in brackets):
  --config FILE             an experiment config, JSON or YAML (see experiments/configs/)
  --algorithm NAME          ${[...Object.keys(STRATEGIES), CENTRALIZED].join(' | ')} [${DEFAULT_OPTIONS.algorithm}]
  --participants N          [${DEFAULT_OPTIONS.participants}]; a config may list groups instead:
                            participants: [{ count: 5, model: cnn }, { count: 1, role: teacher }] (roles
                            participant | teacher; model: --model's when omitted)
  --rounds N                [${DEFAULT_OPTIONS.rounds}]
  --model NAME              ${MODEL_NAMES_HELP} (hidden sizes: mlp:100 is 784-100-10) [${DEFAULT_OPTIONS.model}]
  --partition KIND          iid | dirichlet | shards | quantity [dirichlet]
  --dirichlet-alpha A       label skew (dirichlet) or size skew (quantity); smaller is more skewed [0.3]
  --classes-per-participant K   for --partition shards [2]
  --seed N                  data split, partition and weight initialisation [${DEFAULT_OPTIONS.seed}]
  --test-size N             held-out test samples [${DEFAULT_OPTIONS.testSize}]
  --reference-size N        shared reference samples [${DEFAULT_OPTIONS.referenceSize}]
  --reference-per-round N   reference samples each round [all]
  --private-size N          use only N of the private samples, for quick runs [all]
  --epochs N                local epochs per round [${DEFAULT_OPTIONS.epochs}]
  --batch-size N            [${DEFAULT_OPTIONS.batchSize}]
  --lr X                    Adam learning rate [${DEFAULT_OPTIONS.learningRate}]
  --alpha X                 weight of the task loss; distillation gets 1 − alpha [the algorithm's]
  --temperature T           [the algorithm's]
  --aggregator NAME         ${AGGREGATOR_NAMES.join(' | ')} [the algorithm's]
  --trim-fraction B         trimmed mean: the share β cut on each side, ⌊β·n⌋ of n values [0.1]
  --privacy-noise Z         differential privacy on the uploads: Gaussian noise σ = Z·C (turns it on)
  --privacy-clip C          L2 clipping bound of each prediction row (FD: of each sample's logits) [1]
  --privacy-delta D         the δ at which the spent ε is reported [1e-5]
  --attack KIND             experiments only: hostile participants send random | flipped | scaled uploads
  --hostile N               how many participants are hostile (with --attack) [2]
  --attack-scale S          the logit factor of --attack scaled [100]
  --secure-aggregation      secure aggregation: the coordinator learns only sums, never one participant's
                            predictions (dml, fd, fedmd, kdcl; dsfl with --aggregator mean)
  --secure-threshold T      shares that recover a dropped participant's masks (turns it on) [⌊n/2⌋ + 1]
  --upload-dtype D          ${WIRE_DTYPES.join(' | ')} [${DEFAULT_OPTIONS.uploadDtype}]
  --target-dtype D          how targets travel down: ${WIRE_DTYPES.join(' | ')} [float32]
  --upload-top-k K          soft predictions go up as their K largest probabilities per row; the
                            rest of each row's mass is spread evenly over its other classes [dense]
  --target-top-k K          probability targets go down the same way [dense]
  --sparse-tail uniform|student
                            how a learner completes a top-k target's remaining mass: spread evenly,
                            or in proportion to its own distribution outside the k (per-token
                            sessions with --target-top-k) [student for per-token sessions
                            with --target-top-k, else uniform]
  --backend NAME            node-gpu | node | wasm | cpu [automatic]
  --workers N               worker threads to spread participants over [one per core]
  --distiller [MODEL]       add a distiller: one global student (${MODEL_NAMES_HELP}) that holds no private
                            data, uploads nothing and learns from the ensemble of every participant's
                            predictions on the reference set; its held-out accuracy is the distiller
                            column (${Object.keys(STRATEGIES).filter((a) => distillerRefusal(a) === undefined).join(', ')} only) [MODEL: --model's]
  --sample-fraction F       participant sampling: each round ⌊F·N⌋ participants (0 < F ≤ 1) upload, get targets
                            and train; the others sit the round out (synchronous algorithms; fedavg's sampled start
                            from the latest global model, sent with the round to those that lack it) [all take part]
  --sample-count N          participant sampling: N participants each round (instead of --sample-fraction)
  --sample-min N            the fewest sampled each round, also the quorum [the sample's size]
  --async-shards N          codistillation: reference shards a participant pushes and pulls [5]
  --exchange-every N        codistillation: local steps between exchanges [20]
  --burn-in-steps N         codistillation: local steps before distillation starts [20]
  --staleness-ms MS         codistillation: predictions older than this are left out of the ensemble [120000]
  --pretrain-on-reference N transfer learning before round 1 (FedMD's first step): N epochs on the labelled
                            reference set, then N on the private data; the local-only baseline starts
                            from it too [fedmd: 5, others: 0]
  --no-baseline             skip the local-only baseline run
  --out DIR                 where the run's files go [results/<algorithm>-seed<seed>-<time>/]
  --no-save                 keep no students (by default each participant's student of the algorithm
                            under study is saved in <out>/students/<participant>/, with its card)
  --plan DIR                train nothing: write the run's plan for other machines into DIR — the session
                            file (codistill server --config DIR/session.json), each member's shard, test and
                            reference sets, one launch line per member (codistill client --partition DIR#i)
                            and DIR/README.txt (Slurm array, Kubernetes Indexed Job, ssh); no baseline
  --plan-server URL         the coordinator's URL the launch lines name [http://127.0.0.1:8080]

language models across sites (config only; see experiments/configs/lm-dml.yaml):
  data: { source: text, domains: [en, de, it, es], root: DIR }   one participant per fortune language
                            (Debian's fortunes-* packages; root defaults to /usr/share/games/fortunes)
  lm: { model: ${LM_NAMES_HELP}, steps: N, maxBytesPerDomain: [100000], heldOutFraction: [0.1],
        referenceBytesPerDomain: [10000] }   steps per round; the positions are the model's ctx
                            algorithm dml, codistillation (with async: { shards, exchangeEvery, burnInSteps,
                            stalenessMs }; steps per checkpoint), local or fedavg; prints bits per byte on each
                            site's own held-out text and on the mixed held-out set every round; writes
                            result.json, rounds.jsonl
  lm.lora: { rank: R, alpha: A, targets: [q, v] (q k v o mlp-in mlp-out | all), initStd: [1/√(3·in)] }
  lm.base: { steps: N, learningRate: [learningRate] } | { from: DIR }   LoRA students (go together): a frozen
                            base trained once on the reference text, saved in <out>/base/ (or an earlier run's
                            base folder); only the adapters train, fedavg averages them (experiments/lm-lora/)
  --plan DIR with a text config writes the session file (tokenizer, positions, the reference windows'
                            digest), reference.txt, each site's text.jsonl and held-out.jsonl, and the launch
                            lines codistill client --partition DIR#i (a language-model site: see client --help)
`;

/** Flags that carry numbers, by the config field they set. */
const NUMERIC: Record<string, keyof SimulationOptions> = {
  participants: 'participants',
  rounds: 'rounds',
  seed: 'seed',
  'test-size': 'testSize',
  'reference-size': 'referenceSize',
  'reference-per-round': 'referencePerRound',
  'private-size': 'privateSize',
  epochs: 'epochs',
  'batch-size': 'batchSize',
  lr: 'learningRate',
  alpha: 'alpha',
  temperature: 'temperature',
  workers: 'workers',
  'trim-fraction': 'trimFraction',
  'pretrain-on-reference': 'pretrainOnReference',
  'upload-top-k': 'uploadTopK',
  'target-top-k': 'targetTopK',
};
/** Flags that set a field of a nested object: flag → [object field, its field, default when the object is new]. */
const NESTED: Record<string, [keyof SimulationOptions, string, number | undefined]> = {
  'privacy-noise': ['privacy', 'noiseMultiplier', undefined],
  'privacy-clip': ['privacy', 'clip', 1],
  'privacy-delta': ['privacy', 'delta', 1e-5],
  hostile: ['attack', 'participants', 2],
  'attack-scale': ['attack', 'scale', undefined],
  'sample-fraction': ['sampling', 'fraction', undefined],
  'sample-count': ['sampling', 'count', undefined],
  'sample-min': ['sampling', 'min', undefined],
  'async-shards': ['async', 'shards', undefined],
  'exchange-every': ['async', 'exchangeEvery', undefined],
  'burn-in-steps': ['async', 'burnInSteps', undefined],
  'staleness-ms': ['async', 'stalenessMs', undefined],
  'secure-threshold': ['secureAggregation', 'threshold', undefined],
};
const TEXT: Record<string, keyof SimulationOptions> = {
  algorithm: 'algorithm',
  model: 'model',
  aggregator: 'aggregator',
  'upload-dtype': 'uploadDtype',
  'target-dtype': 'targetDtype',
  'sparse-tail': 'sparseTail',
  backend: 'backend',
  out: 'out',
};

/**
 * Defaults ← config file ← flags, then one validation. A flag's number stays a string if it
 * does not parse, so the schema reports it with the field's rule.
 */
export function parseSimulateArgs(given: string[]): SimulationOptions {
  // --distiller takes an optional model name, which parseArgs cannot express: it is read here.
  const args: string[] = [];
  let distiller: string | true | undefined;
  for (let i = 0; i < given.length; i++) {
    const arg = given[i]!;
    if (arg === '--distiller') {
      const next = given[i + 1];
      if (next !== undefined && !next.startsWith('-')) {
        distiller = next;
        i++;
      } else distiller = true;
    } else if (arg.startsWith('--distiller=')) distiller = arg.slice('--distiller='.length);
    else args.push(arg);
  }
  const options: Record<string, { type: 'string' | 'boolean' }> = { config: { type: 'string' }, partition: { type: 'string' } };
  for (const flag of [...Object.keys(NUMERIC), ...Object.keys(TEXT), ...Object.keys(NESTED), 'attack', 'dirichlet-alpha', 'classes-per-participant']) options[flag] = { type: 'string' };
  options['no-baseline'] = { type: 'boolean' };
  options['secure-aggregation'] = { type: 'boolean' };
  const { values } = parseArgs({ args, strict: true, options });
  const text = values as Record<string, string | boolean | undefined>;

  const file = typeof text.config === 'string' ? readConfigFile(text.config) : {};
  const merged: Record<string, unknown> = { ...DEFAULT_OPTIONS, out: undefined, ...file };
  for (const [flag, field] of Object.entries(NUMERIC)) {
    const raw = text[flag];
    if (typeof raw === 'string') merged[field] = raw.trim() !== '' && Number.isFinite(Number(raw)) ? Number(raw) : raw;
  }
  for (const [flag, field] of Object.entries(TEXT)) if (typeof text[flag] === 'string') merged[field] = text[flag];
  if (text['no-baseline'] === true) merged.baseline = false;
  // A bare --distiller keeps a config's { model }; with a name it sets the model.
  if (distiller === true) merged.distiller = typeof merged.distiller === 'object' && merged.distiller !== null ? merged.distiller : true;
  else if (distiller !== undefined) merged.distiller = { model: distiller };
  // --privacy-* and --attack/--hostile build or amend the nested objects; the schema then names
  // whatever is missing or wrong (privacy.noiseMultiplier, attack.kind, …).
  const asNumber = (raw: string) => (raw.trim() !== '' && Number.isFinite(Number(raw)) ? Number(raw) : raw);
  if (typeof text.attack === 'string') merged.attack = { ...(merged.attack as object | undefined), kind: text.attack };
  // A sample's fraction on the command line replaces a config's count, and the other way round.
  const sampling = merged.sampling as Record<string, unknown> | undefined;
  if (sampling !== undefined && text['sample-fraction'] !== text['sample-count']) {
    const { fraction: _fraction, count: _count, ...rest } = sampling;
    merged.sampling = rest;
  }
  for (const [flag, [object, field]] of Object.entries(NESTED)) {
    const raw = text[flag];
    if (typeof raw === 'string') merged[object] = { ...(merged[object] as object | undefined), [field]: asNumber(raw) };
  }
  for (const [object, field, fallback] of Object.values(NESTED)) {
    const nested = merged[object] as Record<string, unknown> | undefined;
    if (nested !== undefined && fallback !== undefined && nested[field] === undefined) merged[object] = { ...nested, [field]: fallback };
  }
  if (text['secure-aggregation'] === true || merged.secureAggregation !== undefined) {
    const n = Number(merged.participants);
    merged.secureAggregation = { threshold: Number.isInteger(n) ? Math.max(2, Math.floor(n / 2) + 1) : undefined, ...(merged.secureAggregation as object | undefined) };
  }
  const partitionFlags = ['partition', 'dirichlet-alpha', 'classes-per-participant'].some((f) => text[f] !== undefined);
  if (partitionFlags) {
    const previous = merged.partition as Record<string, unknown>;
    const kind = (text.partition as string | undefined) ?? previous.kind;
    const number = (raw: unknown, fallback: unknown) => (typeof raw === 'string' && Number.isFinite(Number(raw)) ? Number(raw) : raw ?? fallback);
    merged.partition =
      kind === 'iid' ? { kind }
      : kind === 'shards' ? { kind, classesPerParticipant: number(text['classes-per-participant'], previous.classesPerParticipant ?? 2) }
      : { kind, alpha: number(text['dirichlet-alpha'], previous.alpha ?? 0.3) };
  }
  merged.referencePerRound ??= merged.referenceSize;
  merged.out ??= `results/${String(merged.algorithm)}-seed${String(merged.seed)}-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  return validateExperiment(merged, typeof text.config === 'string' ? `${text.config} with command-line overrides` : 'command line');
}

/** `--plan DIR [--plan-server URL]`, read apart from the experiment's flags; undefined without --plan. */
function planFlags(args: string[]): { dir: string; server: string } | undefined {
  const { values } = parseArgs({ args, strict: false, options: { plan: { type: 'string' }, 'plan-server': { type: 'string' } } });
  const server = typeof values['plan-server'] === 'string' ? values['plan-server'] : undefined;
  if (values.plan === undefined) {
    if (server !== undefined) throw new Error('--plan-server goes with --plan DIR');
    return undefined;
  }
  if (typeof values.plan !== 'string' || values.plan === '') throw new Error('--plan needs a folder: --plan DIR');
  const url = server ?? 'http://127.0.0.1:8080';
  if (!/^https?:\/\/[^/\s]+\/?$/.test(url)) throw new Error(`--plan-server must be http(s)://HOST:PORT; got "${url}"`);
  return { dir: values.plan, server: url.replace(/\/$/, '') };
}

function withoutPlanFlags(args: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--plan' || arg === '--plan-server') i++;
    else if (!arg.startsWith('--plan=') && !arg.startsWith('--plan-server=')) out.push(arg);
  }
  return out;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const say = { line: (text: string) => process.stdout.write(`${text}\n`) };
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(USAGE);
    return command === undefined ? 2 : 0;
  }
  if (['simulate', 'sweep'].includes(command) && (rest.includes('--help') || rest.includes('-h'))) {
    process.stdout.write(USAGE);
    return 0;
  }
  switch (command) {
    case 'simulate': {
      let options: SimulationOptions;
      const save = !rest.includes('--no-save');
      let students: string | undefined;
      let plan: { dir: string; server: string } | undefined;
      try {
        plan = planFlags(rest);
        if (plan !== undefined) {
          const { writePlan } = await import('./plan.js');
          writePlan(parseSimulateArgs(withoutPlanFlags(rest).filter((a) => a !== '--no-save')), plan.dir, { server: plan.server }, say);
          return 0;
        }
        options = parseSimulateArgs(rest.filter((a) => a !== '--no-save'));
        // A folder that cannot take the students is refused now, not after the run.
        if (save) {
          students = join(options.out, 'students');
          const { probeFolder } = await import('../client/student-io/index.js');
          probeFolder(students);
        }
      } catch (error) {
        process.stderr.write(`codistill simulate: ${(error as Error).message}\n`);
        return 2;
      }
      if (options.data?.source === 'text') {
        const { formatTextSummary, simulateText, writeTextOutputs } = await import('./text-sessions.js');
        const result = await simulateText(options, say, { students });
        say.line(formatTextSummary(result));
        say.line(`results written to ${writeTextOutputs(result, options.out).join(', ')}`);
        return 0;
      }
      const result = await simulate(options, say, { students });
      say.line(formatSummary(result));
      const written = writeRunOutputs(result, options.out);
      say.line(`results written to ${written.join(', ')}`);
      return 0;
    }
    case 'sweep': {
      if (rest[0] === undefined || rest[0].startsWith('-')) {
        process.stderr.write('codistill sweep: give the path of a sweep file, e.g. experiments/algorithms/sweep.yaml\n');
        return 2;
      }
      return runSweepCommand(rest[0], say);
    }
    case 'server': {
      const { runServerCommand } = await import('../server/cli.js');
      return runServerCommand(rest);
    }
    case 'client': {
      // A language-model site (--text, or a text plan's --partition) runs its own command: its data are a text file and the shared reference text.
      const partition = rest.findIndex((a) => a === '--partition' || a.startsWith('--partition='));
      const spec = partition < 0 ? undefined : rest[partition]!.includes('=') ? rest[partition]!.slice('--partition='.length) : rest[partition + 1];
      const { isTextPlan, runTextClientCommand, TEXT_CLIENT_USAGE } = await import('../client/lm/site-cli.js');
      const { runClientCommand } = await import('../client/cli.js');
      if (rest.includes('--help') || rest.includes('-h')) {
        await runClientCommand(['--help']);
        process.stdout.write(`\n${TEXT_CLIENT_USAGE}`);
        return 0;
      }
      if (rest.some((a) => /^--(reference-)?text(=|$)/.test(a)) || (spec !== undefined && isTextPlan(spec))) return runTextClientCommand(rest);
      return runClientCommand(rest);
    }
    case 'demo-sites': {
      const { runDemoSitesCommand } = await import('./demo-sites.js');
      return runDemoSitesCommand(rest);
    }
    case 'distill': {
      const { runDistillCommand } = await import('./distill.js');
      return runDistillCommand(rest);
    }
    case 'distill-lm': {
      const { runDistillLmCommand } = await import('./distill-lm.js');
      return runDistillLmCommand(rest);
    }
    case 'serve-lm': {
      const { runServeLmCommand } = await import('./serve-lm.js');
      return runServeLmCommand(rest);
    }
    case 'generate': {
      const { runGenerateCommand } = await import('./generate.js');
      return runGenerateCommand(rest);
    }
    case 'predict':
    case 'evaluate': {
      const { runPredictCommand } = await import('./predict.js');
      return runPredictCommand(rest, command);
    }
    case 'export': {
      const { runExportCommand } = await import('./export.js');
      return runExportCommand(rest);
    }
    case 'report': {
      // Loaded on demand: the plotting libraries are not needed by the other commands.
      const { runReportCommand } = await import('./report.js');
      return runReportCommand(rest);
    }
    default:
      process.stderr.write(`codistill: unknown command "${command}"\n\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`codistill: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);
