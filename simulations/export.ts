/**
 * `codistill export`: a quantised copy of a saved student (client/student-io/quantize.ts), which
 * plain `tf.loadLayersModel` dequantises at load; reports the sizes and, with labelled --data,
 * the accuracy before and after.
 */
import { parseArgs } from 'node:util';
import { selectBackend } from '../client/backend.js';
import { exportStudent, QUANTIZATIONS, StudentFileError, type Quantization } from '../client/student-io/index.js';
import { accuracyOn } from './predict.js';

const USAGE = `usage: codistill export --model DIR --quantize float16|uint8 --out DIR [--data FILE|FOLDER] [--label COLUMN] [--backend NAME]
  Writes a copy of the saved student at --model with its weights quantised as tfjs-converter
  does (float16: half the size; uint8: per-tensor affine, a quarter), with its card. Any tfjs
  program loads it with tf.loadLayersModel, which dequantises the weights. With labelled --data,
  prints the accuracy of both models on it.
`;

export async function runExportCommand(args: string[]): Promise<number> {
  let v: Record<string, string | boolean | undefined>;
  try {
    ({ values: v } = parseArgs({
      args,
      strict: true,
      options: { model: { type: 'string' }, quantize: { type: 'string' }, out: { type: 'string' }, data: { type: 'string' }, label: { type: 'string' }, backend: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    }));
  } catch (error) {
    process.stderr.write(`codistill export: ${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (v.help === true) {
    process.stdout.write(USAGE);
    return 0;
  }
  const missing = ['model', 'quantize', 'out'].filter((k) => v[k] === undefined);
  if (missing.length > 0) {
    process.stderr.write(`codistill export: missing --${missing.join(', --')}\n\n${USAGE}`);
    return 2;
  }
  const quantize = v.quantize as string;
  if (!(QUANTIZATIONS as readonly string[]).includes(quantize)) {
    process.stderr.write(`codistill export: --quantize must be one of ${QUANTIZATIONS.join(', ')}; got "${quantize}"\n`);
    return 2;
  }
  try {
    const { fromBytes, toBytes, saved } = exportStudent(v.model as string, v.out as string, quantize as Quantization);
    const say = (line: string) => process.stdout.write(`${line}\n`);
    say(`${quantize} student written to ${saved.dir}: weights ${toBytes.toLocaleString('en-US')} bytes, ${(100 * toBytes / fromBytes).toFixed(1)}% of the float32 ${fromBytes.toLocaleString('en-US')}`);
    if (v.data !== undefined) {
      const backend = await selectBackend(v.backend as string | undefined);
      const before = await accuracyOn(v.model as string, v.data as string, v.label as string | undefined);
      const after = await accuracyOn(saved.dir, v.data as string, v.label as string | undefined);
      if (before === undefined || after === undefined) say(`--data ${v.data as string} has no labels: no accuracy to compare`);
      else say(`accuracy on ${v.data as string} (${backend}): float32 ${(100 * before).toFixed(2)}%, ${quantize} ${(100 * after).toFixed(2)}% (${after >= before ? '+' : ''}${(100 * (after - before)).toFixed(2)} points)`);
    }
    return 0;
  } catch (error) {
    process.stderr.write(`codistill export: ${(error as Error).message}\n`);
    return error instanceof StudentFileError ? 2 : 1;
  }
}
