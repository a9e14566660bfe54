/** `codistill generate`: text from a saved language model (client/lm/generate.ts). */
import { parseArgs } from 'node:util';
import { selectBackend } from '../client/backend.js';
import { checkSamplingOptions, generateText, type SamplingOptions } from '../client/lm/generate.js';
import { loadLanguageModel } from '../client/student-io/index.js';

const USAGE = `usage: codistill generate --model DIR --prompt TEXT [options]

Continues TEXT with a saved language model (a folder written by codistill distill-lm) and prints
the prompt and its continuation.

options:
  --model DIR          the model folder (model.json, weights, card.json)
  --prompt TEXT        the text to continue ("" starts from nothing)
  --max-tokens N       bytes to write [200]
  --temperature T      0: greedy, the likeliest byte each time; else sample from softmax(z/T) [0.8]
  --top-k K            sample among the K likeliest bytes; 0: all [40]
  --seed S             the sampling seed [1]
  --backend NAME       node-gpu | node | wasm | cpu [automatic]
`;

export async function runGenerateCommand(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(USAGE);
    return 0;
  }
  let model: string;
  let prompt: string;
  let options: SamplingOptions;
  let backend: string | undefined;
  try {
    const { values } = parseArgs({
      args: argv,
      options: { model: { type: 'string' }, prompt: { type: 'string' }, 'max-tokens': { type: 'string' }, temperature: { type: 'string' }, 'top-k': { type: 'string' }, seed: { type: 'string' }, backend: { type: 'string' } },
      strict: true,
    });
    if (values.model === undefined) throw new Error('--model DIR is required (a folder written by codistill distill-lm)');
    if (values.prompt === undefined) throw new Error('--prompt TEXT is required ("" starts from nothing)');
    model = values.model;
    prompt = values.prompt;
    backend = values.backend;
    const num = (flag: string, raw: string | undefined, fallback: number) => {
      if (raw === undefined) return fallback;
      const v = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(v)) throw new Error(`--${flag} must be a number; got "${raw}"`);
      return v;
    };
    options = { maxTokens: num('max-tokens', values['max-tokens'], 200), temperature: num('temperature', values.temperature, 0.8), topK: num('top-k', values['top-k'], 40), seed: num('seed', values.seed, 1) };
    checkSamplingOptions(options);
    if (!Number.isInteger(options.seed) || options.seed < 0 || options.seed > 0xffffffff) throw new Error(`--seed must be an integer in [0, 2^32); got ${options.seed}`);
  } catch (error) {
    process.stderr.write(`codistill generate: ${(error as Error).message}\n`);
    return 2;
  }
  await selectBackend(backend);
  let loaded;
  try {
    loaded = loadLanguageModel(model);
  } catch (error) {
    process.stderr.write(`codistill generate: ${(error as Error).message}\n`);
    return 2;
  }
  const { text } = generateText(loaded.model, prompt, options);
  loaded.model.dispose();
  process.stdout.write(`${text}\n`);
  return 0;
}
