/**
 * `codistill server --config session.yaml`: a coordinator for a deployment. Participants on
 * other machines run `codistill client` against its URL with the tokens the config lists; the
 * coordinator runs the session and writes its round history to a file when it ends.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { extname } from 'node:path';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { DEFAULT_MAX_BYTES, ROLES, SPARSE_TAILS, WIRE_DTYPES } from '../protocol/index.js';
import { AGGREGATOR_NAMES } from './aggregators/index.js';
import { Coordinator } from './coordinator.js';
import type { OperatorAccount } from './operator.js';
import { contributorEntries, type SessionConfig } from './session-config.js';
import { withTokenHashes } from './tokens.js';
import { ALGORITHM_DEFAULTS, STRATEGIES } from './strategies/index.js';

const count = (min: number) => z.number({ error: 'must be a number' }).int('must be an integer').min(min, `must be ≥ ${min}`);
const oneOf = <T extends string>(values: readonly T[]) => z.enum(values as [T, ...T[]], { error: `must be one of ${values.join(', ')}` });

/** A session as an operator writes it: the algorithm's defaults fill what is left out. */
const sessionFile = z
  .object({
    id: z.string().regex(/^[A-Za-z0-9._:-]+$/, 'letters, digits and . _ : - only'),
    algorithm: oneOf(Object.keys(STRATEGIES)),
    rounds: count(1),
    participants: z
      .array(
        z.object({
          id: z.string().regex(/^[A-Za-z0-9._:-]+$/),
          token: z.string().min(16, 'tokens must have at least 16 characters'),
          /** The one role this token may join as; either when omitted. */
          role: oneOf(ROLES).optional(),
        }).strict(),
      )
      .min(1),
    minParticipants: count(1).optional(),
    minToStart: count(1).optional(),
    numClasses: count(2),
    referenceSize: count(0).default(0),
    /** SHA-256 of the reference set's float32 features (each client prints its own at the join); the first to join fixes it when omitted. */
    referenceDigest: z.string().regex(/^[0-9a-f]{64}$/, 'a SHA-256 in 64 lowercase hex digits').optional(),
    referencePerRound: count(1).optional(),
    temperature: z.number().positive().optional(),
    alpha: z.number().min(0).max(1).optional(),
    aggregator: oneOf(AGGREGATOR_NAMES).optional(),
    sharpenTemperature: z.number().positive().optional(),
    trimFraction: z.number().min(0).max(0.5).optional(),
    uploadDtype: oneOf(WIRE_DTYPES).default('float32'),
    targetDtype: oneOf(WIRE_DTYPES).optional(),
    uploadTopK: count(1).optional(),
    targetTopK: count(1).optional(),
    sparseTail: oneOf(SPARSE_TAILS).optional(),
    roundTimeoutMs: count(1).default(10 * 60_000),
    trainTimeoutMs: count(1).default(30 * 60_000),
    onRoundFailure: oneOf(['continue', 'stop'] as const).default('continue'),
    seed: count(0).default(1),
    maxMessageBytes: count(1024).default(DEFAULT_MAX_BYTES),
    /** Secure aggregation (server/secure-rounds.ts): the coordinator sees only sums; any `threshold` survivors unmask a round. */
    secureAggregation: z.object({ threshold: count(2) }).strict().optional(),
    async: z.object({ shards: count(1), exchangeEvery: count(1), burnInSteps: count(0), stalenessMs: z.number().positive() }).strict().optional(),
    /** Participant sampling per round: { fraction | count, min? } (checkSessionConfig checks them against the quorum). */
    sampling: z.object({ fraction: z.number().gt(0).max(1).optional(), count: count(1).optional(), min: count(1).optional() }).strict().optional(),
    /** Per-token knowledge between language models: the tokenizer every site joins with (numClasses = its vocabSize) and the bytes per reference window. */
    tokenizer: z.object({ kind: z.string().min(1).max(64), encoding: z.string().min(1).max(64), vocabSize: count(2), bos: count(0) }).strict().optional(),
    positions: count(1).optional(),
  })
  .strict();

/**
 * Reads a YAML or JSON file and checks it against its schema; the errors name the file, and each
 * bad field with its rule. `unwrap` picks the checked part out of what was read.
 */
function readChecked<S extends z.ZodType>(path: string, what: string, schema: S, unwrap: (raw: unknown) => unknown = (raw) => raw): z.infer<S> {
  let raw: unknown;
  try {
    const text = readFileSync(path, 'utf8');
    raw = ['.yaml', '.yml'].includes(extname(path).toLowerCase()) ? parseYaml(text) : JSON.parse(text);
  } catch (error) {
    throw new Error(`cannot read ${what} ${path}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message}`);
  }
  const parsed = schema.safeParse(unwrap(raw), { reportInput: true });
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) =>
      i.code === 'unrecognized_keys' ? `unknown field ${i.keys.map((k) => `"${k}"`).join(', ')}` : `${i.path.join('.') || `(${what})`}: ${i.message}`,
    );
    throw new Error(`invalid ${what} ${path}:\n  ${problems.join('\n  ')}`);
  }
  return parsed.data;
}

export function readSessionConfig(path: string): SessionConfig {
  const c = readChecked(path, 'session config', sessionFile);
  const defaults = ALGORITHM_DEFAULTS[c.algorithm]!;
  return {
    ...c,
    // Every contributor by default; with sampling, the sample's minimum (or count), which the quorum may not exceed.
    minParticipants: c.minParticipants ?? (c.sampling === undefined ? contributorEntries(c).length : c.sampling.min ?? c.sampling.count ?? 1),
    referencePerRound: c.referencePerRound ?? c.referenceSize,
    temperature: c.temperature ?? defaults.temperature,
    alpha: c.alpha ?? defaults.alpha,
    aggregator: c.aggregator ?? defaults.aggregator,
    sharpenTemperature: c.sharpenTemperature ?? defaults.sharpenTemperature,
  };
}

/** Observers and admins as an operator writes them: a list, or { operators: [...] }. */
const operatorsFile = z.array(z.object({
  id: z.string().regex(/^[A-Za-z0-9._:-]+$/, 'letters, digits and . _ : - only'),
  token: z.string().min(16, 'tokens must have at least 16 characters'),
  role: oneOf(['observer', 'admin'] as const),
}).strict()).min(1, 'list at least one operator');

export function readOperators(path: string): OperatorAccount[] {
  const unwrap = (raw: unknown) => (raw !== null && typeof raw === 'object' && !Array.isArray(raw) && 'operators' in raw ? (raw as { operators: unknown }).operators : raw);
  return readChecked(path, 'operators file', operatorsFile, unwrap);
}

const USAGE = `usage: codistill server --config SESSION.(yaml|json) [--host 127.0.0.1] [--port 8080] [--out history.json]
                        [--tls-cert cert.pem --tls-key key.pem] [--journal session.db]
                        [--operators OPERATORS.(yaml|json)] [--web [--reference FILE]]
  Runs a coordinator for one session; participants connect with codistill client.
  --journal records every round in an SQLite file; started again on the same journal (after a
  crash, a kill or a reboot) the coordinator resumes the session from its last completed round,
  and participants rejoin by themselves.
  --linger S keeps listening S seconds after the session ends [5] when participants were away at
  the end, so that those reconnecting are told it ended rather than finding no coordinator.
  --host 0.0.0.0 listens on every interface: give it --tls-cert and --tls-key so that
  tokens and predictions travel encrypted (wss://).
  --operators FILE   observers and admins: [{ id, token, role: observer | admin }], for the dashboard
  --web              serve the browser participant page (/participant/) and the dashboard
                     (/dashboard/), built by npm run build
  --reference FILE   the session's reference set (IDX or CSV), served to its browser participants
  A session of language models (per-token knowledge, codistill client --text) adds
    tokenizer: { kind: bytes, encoding: utf-8, vocabSize: 257, bos: 256 }   (numClasses: 257)
    positions: 32          bytes per reference window (the sites' --positions, their model's ctx)
  referenceSize is then the reference text's windows and referenceDigest their SHA-256, both printed
  by codistill client --reference-text FILE --positions N --print-reference-digest; a site whose
  tokenizer differs is refused at its join (E_TOKENIZER). Algorithms: dml (roles participant,
  teacher, distiller) and codistillation (async: { shards, exchangeEvery, burnInSteps, stalenessMs }).
  The session file may sample participants per round: sampling: { fraction: 0.5, min: 2 } (or
  count: N instead of fraction); only the sampled upload, get targets and train, the others sit
  the round out; min (the quorum when omitted) must be at least minParticipants, which then
  defaults to min (or count, or 1). With fedavg a sampled participant that lacks the latest
  global model (it sat out the round that made it) is sent it with the round announcement.
`;

/** Fields in which a journalled session's config differs from the file's (tokens compared by hash). */
function configChanges(journalled: SessionConfig, file: SessionConfig): string[] {
  const a: Record<string, unknown> = { ...withTokenHashes(journalled) };
  const b: Record<string, unknown> = { ...withTokenHashes(file) };
  return [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k]));
}

export async function runServerCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      config: { type: 'string' },
      host: { type: 'string' },
      port: { type: 'string' },
      out: { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      journal: { type: 'string' },
      linger: { type: 'string' },
      operators: { type: 'string' },
      web: { type: 'boolean' },
      reference: { type: 'string' },
      help: { type: 'boolean' },
    },
  });
  if (values.help === true || values.config === undefined) {
    (values.help === true ? process.stdout : process.stderr).write(USAGE);
    return values.help === true ? 0 : 2;
  }
  const linger = Number(values.linger ?? 5);
  if (!(linger >= 0)) throw new Error(`--linger must be a number of seconds ≥ 0; got "${values.linger}"`);
  const port = Number(values.port ?? 8080);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port must be an integer in [0, 65535]; got "${values.port}"`);
  const config = readSessionConfig(values.config);
  if ((values['tls-cert'] === undefined) !== (values['tls-key'] === undefined)) throw new Error('--tls-cert and --tls-key go together');
  const read = (flag: string, path: string) => {
    try {
      return readFileSync(path);
    } catch {
      throw new Error(`--${flag} ${path}: cannot read the file`);
    }
  };
  const tls = values['tls-cert'] === undefined ? undefined : { cert: read('tls-cert', values['tls-cert']), key: read('tls-key', values['tls-key']!) };
  if (values.reference !== undefined && values.web !== true) throw new Error('--reference is served to browser participants: it goes with --web');
  const operators = values.operators === undefined ? [] : readOperators(values.operators);
  const web = values.web === true ? { references: values.reference === undefined ? {} : { [config.id]: values.reference } } : undefined;
  const coordinator = await Coordinator.start({
    tls,
    host: values.host ?? '127.0.0.1',
    port,
    maxMessageBytes: config.maxMessageBytes,
    journal: values.journal,
    log: (line) => process.stdout.write(`${new Date().toISOString()} ${line}\n`),
    operators,
    web,
  });
  // Whatever ends the command from here on — a journal that refuses the session, a file that
  // cannot be written, the session's end — closes the coordinator: a process that has printed a
  // fatal error must not go on holding its port.
  try {
    return await serveSession(coordinator, config, { ...values, linger }, operators.length, web !== undefined);
  } finally {
    await coordinator.close();
  }
}

/** How long a coordinator whose session ended waits for its participants to hang up before it closes. */
const HANG_UP_MS = 5000;

async function serveSession(
  coordinator: Coordinator,
  config: SessionConfig,
  values: { journal?: string; out?: string; linger: number },
  operatorCount: number,
  withWeb: boolean,
): Promise<number> {
  const { linger } = values;
  const resumed = coordinator.session(config.id);
  if (resumed !== undefined) {
    const changed = configChanges(resumed.config, config);
    if (changed.length > 0) {
      throw new Error(`the journal ${values.journal} holds session ${config.id} with another config (${changed.join(', ')}): restore the original file, or start a new session id`);
    }
  }
  const session = resumed ?? coordinator.createSession(config);
  const from = resumed === undefined ? '' : ` resumed after round ${resumed.history.length},`;
  if (config.referenceSize > 0 && config.referenceDigest === undefined) {
    // Trust on first use: one participant with the wrong file (or a hostile one) joining first would lock every other out.
    process.stdout.write(`note: the session file pins no referenceDigest, so the first participant to join fixes it for everyone; pin the SHA-256 every site prints at its join (demo-sites prints it for its files; a text reference's: codistill client --reference-text FILE --positions N --print-reference-digest)\n`);
  }
  process.stdout.write(`coordinator at ${coordinator.url}: session ${config.id} (${config.algorithm}, ${config.rounds} rounds),${from} waiting for ${config.minToStart ?? config.participants.length} of ${config.participants.length} participants\n`);
  if (withWeb) process.stdout.write(`browser participants: ${coordinator.url}/participant/  dashboard: ${coordinator.url}/dashboard/ (${operatorCount} operators)\n`);
  session.on('round', (r) => {
    const accuracies = Object.values(r.reports).map((m) => m.accuracy).filter((a): a is number => a !== undefined);
    const mean = accuracies.length > 0 ? ` mean reported accuracy ${(100 * accuracies.reduce((a, b) => a + b, 0) / accuracies.length).toFixed(1)}%,` : '';
    const failure = r.failure === undefined ? '' : ` FAILED ${r.failure.code}: ${r.failure.message}`;
    process.stdout.write(`round ${r.round}/${config.rounds}: ${r.contributors.length} contributors, ${Object.keys(r.reports).length} reports,${mean} ${(r.bytesUp / 1024).toFixed(1)} KiB up, ${(r.bytesDown / 1024).toFixed(1)} KiB down${failure}\n`);
  });
  const ended = await new Promise<{ reason: string; away: number }>((resolve) =>
    session.once('end', ({ reason }) => resolve({ reason, away: config.participants.length - session.connected.length })),
  );
  const out = values.out ?? `${config.id}-history.json`;
  writeFileSync(out, `${JSON.stringify({ session: { ...config, participants: config.participants.map((p) => ({ id: p.id })) }, endReason: ended.reason, rounds: session.history }, null, 2)}\n`);
  process.stdout.write(`session ended: ${ended.reason}; history written to ${out}\n`);
  // Participants told of the end hang up by themselves: the coordinator closes after they have
  // (or after HANG_UP_MS). Closing at once destroyed connections whose last bytes — the end
  // message, the last report's answer — had not left yet, which over TLS they often had not:
  // every client then retried for minutes and exited 1.
  const deadline = Date.now() + HANG_UP_MS;
  while (session.connected.length > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  if (ended.away > 0 && linger > 0) {
    process.stdout.write(`${ended.away} participant(s) away at the end: listening ${linger} s more to tell them\n`);
    await new Promise((resolve) => setTimeout(resolve, linger * 1000));
  }
  return 0;
}
