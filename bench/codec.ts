/**
 * 3. Codec: encode + decode throughput of prediction uploads (5,000×10 and 5,000×100; float32,
 *    float16, uint8) against JSON of the same numbers, measured in the same run.
 *
 * Throughput is counted in the predictions' float32 size (rows × classes × 4 bytes), whatever
 * the wire dtype, so that dtypes compare on the work done for the same knowledge.
 */
import {
  clientMessages,
  decodeEnvelope,
  decodeMessage,
  encodeEnvelope,
  encodeMessage,
  packTensor,
  PROTOCOL_VERSION,
  readContribution,
  unpackTensor,
  WIRE_DTYPES,
  type ClientMessage,
  type WireDtype,
  type WireTensor,
} from '../protocol/index.js';
import { bytesText, figure, fmt, gbPerSecond, interleavedSync, median, softPredictions, timeSync, type Benchmark, type Figure, type Table } from './harness.js';
import { legacyPackFloat32, legacyUnpackFloat32 } from './legacy.js';
import { legacyReadPredictions } from './legacy-codec.js';

const SHAPES: Array<[number, number]> = [[5000, 10], [5000, 100]];
const MAX_BYTES = 64 * 1024 * 1024;

const HEADER = { v: PROTOCOL_VERSION as typeof PROTOCOL_VERSION, session: 'bench', round: 1, participant: 'p0', kind: 'reference-predictions' as const };

function uploadMessage(values: WireTensor): ClientMessage<'upload'> {
  return { ...HEADER, values };
}

export const codecBenchmark: Benchmark = {
  id: 'codec',
  title: '3. Codec',
  async run({ quick, log }) {
    const limits = { maxBytes: MAX_BYTES };
    const batchMs = quick ? 80 : 150;
    const time = (fn: () => unknown) => median(timeSync(fn, { warmup: 3, batchMs, batches: 5 }));
    const stages: Table['rows'] = [];
    const floors: Table['rows'] = [];
    const comparisons: Table['rows'] = [];
    const pathFixes: Table['rows'] = [];
    const notes: string[] = [];
    const summary: Table['rows'] = [];
    const figures: Figure[] = [];
    for (const [rows, classes] of SHAPES) {
      const values = softPredictions(rows, classes, rows + classes);
      const logical = values.byteLength;
      const shape = [rows, classes];
      const expectation = { kind: 'reference-predictions' as const, round: 1, numClasses: classes, rows };

      // JSON of the same numbers: what the codec is judged against.
      const asJson = () => JSON.stringify({ ...HEADER, values: { dtype: 'float32', shape, data: Array.from(values) } });
      const jsonText = asJson();
      const fromJson = () => Float32Array.from((JSON.parse(jsonText) as { values: { data: number[] } }).values.data);

      // The whole path an upload takes, per dtype: the participant packs (float32 without a copy,
      // as client/participant.ts does: the envelope encoder copies) and encodes; the coordinator
      // decodes, checks the schema, unpacks and checks the probabilities. Timed interleaved with
      // JSON and with the floor (A, B, C, …, A, …), so that load from elsewhere on the shared
      // machine falls on the codec and on what it is judged against alike.
      const dtypes = WIRE_DTYPES as readonly WireDtype[];
      // Decoded from a copy in a buffer of its own, as the coordinator receives it: the sender's
      // envelope is a slice of the encoder's larger block.
      const envelopes = new Map(dtypes.map((dtype) => [dtype, new Uint8Array(encodeMessage(clientMessages.upload, uploadMessage(packTensor(values, shape, dtype)), limits))]));
      const encodeOf = (dtype: WireDtype) => () => encodeMessage(clientMessages.upload, uploadMessage(packTensor(values, shape, dtype, { copy: false })), limits);
      const decodeOf = (dtype: WireDtype) => {
        const envelope = envelopes.get(dtype)!;
        return () => readContribution('p0', decodeMessage(clientMessages.upload, envelope, limits), expectation);
      };
      // The least any codec that hands out fresh buffers must do: one new buffer holding the
      // envelope's bytes, one new Float32Array holding the decoded values, each filled by memcpy.
      const floorOf = (dtype: WireDtype) => {
        const envelope = envelopes.get(dtype)!;
        return () => {
          new Uint8Array(envelope.byteLength).set(envelope);
          new Float32Array(values.length).set(values);
        };
      };
      // encodeMessage aligns a large tensor's bytes in its envelope, and the envelope above starts
      // a buffer of its own, as a received one does when it arrived in more than one read (the
      // WebSocket layer then copies it into one): readContribution reads float32 in place. The
      // same envelope at an odd address, as a message that came in one read may sit, is copied:
      // timed too, and the floor of a path that copies only the envelope.
      const float32Envelope = envelopes.get('float32')!;
      const oddHost = new Uint8Array(float32Envelope.byteLength + 1);
      oddHost.set(float32Envelope, 1);
      const oddEnvelope = oddHost.subarray(1);
      const full = interleavedSync({
        'json encode': asJson,
        'json decode': fromJson,
        ...Object.fromEntries(dtypes.flatMap((dtype) => [[`${dtype} encode`, encodeOf(dtype)], [`${dtype} decode`, decodeOf(dtype)], [`${dtype} floor`, floorOf(dtype)]])),
        'float32 decode, unaligned': () => readContribution('p0', decodeMessage(clientMessages.upload, oddEnvelope, limits), expectation),
        'float32 envelope floor': () => new Uint8Array(float32Envelope.byteLength).set(float32Envelope),
      }, { rounds: quick ? 3 : 7, batchMs });
      const jsonEncodeMs = full['json encode']!;
      const jsonDecodeMs = full['json decode']!;
      const jsonMs = jsonEncodeMs + jsonDecodeMs;
      log(`  ${rows}×${classes} JSON: ${fmt(gbPerSecond(logical, jsonMs))} GB/s`);
      summary.push([`${rows}×${classes}`, 'JSON', bytesText(Buffer.byteLength(jsonText)), fmt(jsonEncodeMs), fmt(jsonDecodeMs), fmt(gbPerSecond(logical, jsonMs)), '1×']);

      for (const dtype of dtypes) {
        const packed = packTensor(values, shape, dtype);
        const envelope = envelopes.get(dtype)!;
        const encode = encodeOf(dtype);
        const encodeMs = full[`${dtype} encode`]!;
        const decodeMs = full[`${dtype} decode`]!;
        const total = encodeMs + decodeMs;
        const rate = gbPerSecond(logical, total);
        const jsonRate = gbPerSecond(logical, jsonMs);
        summary.push([`${rows}×${classes}`, dtype, bytesText(envelope.byteLength), fmt(encodeMs), fmt(decodeMs), fmt(rate), `${fmt(rate / jsonRate)}×`]);
        log(`  ${rows}×${classes} ${dtype}: ${fmt(rate)} GB/s, ${fmt(rate / jsonRate)}× JSON`);

        // Stage by stage, each timed on its own, to show where the time goes.
        const plainEnvelope = uploadMessage(packed);
        const packMs = time(() => packTensor(values, shape, dtype, { copy: false }));
        const zodEncodeMs = time(() => clientMessages.upload.parse(plainEnvelope));
        const envelopeEncodeMs = time(() => encodeEnvelope(plainEnvelope, limits));
        const envelopeDecodeMs = time(() => decodeEnvelope(envelope, limits));
        const decoded = decodeEnvelope(envelope, limits) as { values: WireTensor };
        const zodDecodeMs = time(() => clientMessages.upload.parse(decoded));
        const parsed = clientMessages.upload.parse(decoded);
        const unpackMs = time(() => unpackTensor(decoded.values, shape));
        const readMs = time(() => readContribution('p0', parsed, expectation));
        const codecMs = packMs + envelopeEncodeMs + envelopeDecodeMs + unpackMs;
        const floorMs = full[`${dtype} floor`]!;
        floors.push([`${rows}×${classes}`, dtype, 'envelope + decoded values', fmt(floorMs), fmt(total), `${fmt(total / floorMs)}×`, fmt(gbPerSecond(logical, floorMs))]);
        if (dtype === 'float32') {
          const envelopeFloorMs = full['float32 envelope floor']!;
          floors.push([`${rows}×${classes}`, dtype, 'the envelope alone (decoding reads in place)', fmt(envelopeFloorMs), fmt(total), `${fmt(total / envelopeFloorMs)}×`, fmt(gbPerSecond(logical, envelopeFloorMs))]);
          const unalignedMs = encodeMs + full['float32 decode, unaligned']!;
          summary.push([`${rows}×${classes}`, 'float32, envelope at an odd address (decoded values copied)', bytesText(envelope.byteLength), fmt(encodeMs), fmt(full['float32 decode, unaligned']!), fmt(gbPerSecond(logical, unalignedMs)), `${fmt(gbPerSecond(logical, unalignedMs) / gbPerSecond(logical, jsonMs))}×`]);
        }
        if (dtype === 'float32') {
          notes.push(
            `${rows}×${classes} float32, each stage timed alone: of the ${fmt(total)} ms an upload costs end to end, packTensor takes ${fmt(packMs)} ms (the finiteness scan; no copy), msgpack ${fmt(envelopeEncodeMs)} ms to encode (it copies the bytes into the envelope) and ${fmt(envelopeDecodeMs)} ms to decode (the bytes stay where they are), the zod schema ${fmt(zodEncodeMs)} + ${fmt(zodDecodeMs)} ms, and readContribution ${fmt(readMs)} ms (the one-pass finiteness and simplex check, on the values in place); allocating and filling the envelope alone takes ${fmt(full['float32 envelope floor']!)} ms here, and the envelope plus a copy of the values ${fmt(floorMs)} ms.`,
          );
        }
        stages.push([
          `${rows}×${classes}`, dtype, fmt(packMs), fmt(zodEncodeMs), fmt(envelopeEncodeMs), fmt(envelopeDecodeMs), fmt(zodDecodeMs),
          fmt(unpackMs), fmt(readMs), fmt(gbPerSecond(logical, codecMs)),
        ]);

        // The whole path against the one it replaced, interleaved: before, participants packed a
        // copy, msgpackr laid out the envelope, and the coordinator copied the values out, scanned
        // them for NaN/±Inf, then checked the simplex in a second pass (bench/legacy-codec.ts).
        const path = interleavedSync({
          // Before: encodeMessage was zod + encodeEnvelope (msgpackr's layout, bytes wherever they fell).
          // Both sides decode a copy of the envelope in a buffer of its own, as a receiver gets it
          // from the WebSocket layer (that copy is the network's, and costs both sides alike).
          before: () => legacyReadPredictions(decodeMessage(clientMessages.upload, new Uint8Array(encodeEnvelope(clientMessages.upload.parse(uploadMessage(packTensor(values, shape, dtype))), limits)), limits), expectation),
          after: () => readContribution('p0', decodeMessage(clientMessages.upload, new Uint8Array(encode()), limits), expectation),
        }, { batchMs: quick ? 40 : 80 });
        pathFixes.push([`${rows}×${classes}`, dtype, fmt(path.before!), fmt(path.after!), fmt(gbPerSecond(logical, path.before!)), fmt(gbPerSecond(logical, path.after!)), `${fmt(path.before! / path.after!)}×`]);
        figures.push(figure({
          id: `codec.${rows}x${classes}.${dtype}.path-fix`,
          label: `${rows.toLocaleString('en-US')}×${classes} ${dtype} upload, full message path now vs before the fused checks, the uncopied pack and the aligned envelope`,
          value: gbPerSecond(logical, path.after!), unit: 'GB/s',
          baseline: { label: 'the same path before (bench/legacy-codec.ts), interleaved', value: gbPerSecond(logical, path.before!), unit: 'GB/s' },
        }));
        figures.push(figure({
          id: `codec.${rows}x${classes}.${dtype}`,
          label: `${rows.toLocaleString('en-US')}×${classes} ${dtype} upload, encode + decode (full message path)`,
          value: rate, unit: 'GB/s',
          baseline: { label: 'JSON of the same numbers', value: jsonRate, unit: 'GB/s' },
          target: dtype === 'float32' ? { on: 'ratio', op: '>=', goal: 50 } : undefined,
        }));
        if (dtype === 'float32') {
          // The tensor fixes against the code they replaced, interleaved: pack + envelope + unpack.
          const size = rows * classes;
          const fixes = interleavedSync({
            after: () => unpackTensor((decodeEnvelope(encodeEnvelope(uploadMessage(packTensor(values, shape, dtype)), limits), limits) as { values: WireTensor }).values, shape),
            before: () => legacyUnpackFloat32((decodeEnvelope(encodeEnvelope(uploadMessage(legacyPackFloat32(values, shape)), limits), limits) as { values: WireTensor }).values.data, size),
          }, { batchMs: quick ? 40 : 80 });
          comparisons.push([`${rows}×${classes}`, fmt(fixes.before!), fmt(fixes.after!), fmt(gbPerSecond(logical, fixes.before!)), fmt(gbPerSecond(logical, fixes.after!))]);
          figures.push(figure({
            id: `codec.${rows}x${classes}.float32.fix`,
            label: `${rows.toLocaleString('en-US')}×${classes} float32 codec path (packTensor + msgpack + unpackTensor), now vs before the tensor fixes`,
            value: gbPerSecond(logical, fixes.after!), unit: 'GB/s',
            baseline: { label: 'the same path before (bench/legacy.ts)', value: gbPerSecond(logical, fixes.before!), unit: 'GB/s' },
          }));
          figures.push(figure({
            id: `codec.${rows}x${classes}.float32.absolute`,
            label: `${rows.toLocaleString('en-US')}×${classes} float32 upload, encode + decode throughput`,
            value: rate, unit: 'GB/s',
            target: { on: 'value', op: '>=', goal: 1 },
          }));
        }
      }
    }
    return {
      method: [
        'Payload: softmax(z/3) rows of random logits (valid probabilities), as participants upload them.',
        'Encode = packTensor (float32 without a copy, as participants pack) + encodeMessage (zod schema check + msgpack); decode = decodeMessage (msgpack + zod) + readContribution (unpack, finiteness and simplex check) — everything the coordinator does to an upload before aggregating it.',
        'JSON = JSON.stringify of the same message with the values as a number array; JSON.parse + Float32Array.from.',
        'The envelope decoded is encodeMessage\'s output, which starts a buffer of its own, as a received envelope does when it arrived in more than one read; readContribution then reads aligned float32 in place. The same envelope at an odd address (copied on decode) is timed too.',
        'GB/s = rows × classes × 4 bytes / (encode + decode time). The full path of every dtype, JSON and the floor are timed interleaved, 7 rounds of batches of at least 150 ms each, median per variant; the stages one after the other, median of 5 batches each.',
      ],
      tables: [
        {
          caption: 'Encode + decode, full message path (ms per message)',
          columns: ['payload', 'encoding', 'envelope size', 'encode ms', 'decode ms', 'GB/s', 'vs JSON'],
          rows: summary,
        },
        {
          caption: 'Where the time goes (ms per message), each stage timed on its own: tensor packing, zod schema, msgpack envelope, unpacking, and readContribution (unpacking with the one-pass finiteness and simplex check)',
          columns: ['payload', 'dtype', 'packTensor', 'zod (encode)', 'msgpack encode', 'msgpack decode', 'zod (decode)', 'unpackTensor', 'readContribution', 'codec-only GB/s'],
          rows: stages,
        },
        {
          caption: 'Full message path before and after the fused finiteness + simplex check, the uncopied float32 pack and the aligned envelope read in place, interleaved in this run (ms per message; before = bench/legacy-codec.ts with msgpackr\'s envelope layout; both sides decode a fresh copy of the envelope, as a receiver gets it, so both include that copy)',
          columns: ['payload', 'dtype', 'before ms', 'after ms', 'before GB/s', 'after GB/s', 'speed-up'],
          rows: pathFixes,
        },
        {
          caption: 'float32 codec path (packTensor + msgpack encode + decode + unpackTensor), before and after the finiteness-scan fix, interleaved in this run (ms per message)',
          columns: ['payload', 'before ms', 'after ms', 'before GB/s', 'after GB/s'],
          rows: comparisons,
        },
        {
          caption: 'The floor: allocating and filling (memcpy) the buffers an encode + decode must produce — the envelope, and the decoded Float32Array unless it is read in place — on this machine, in this run, interleaved with the full path',
          columns: ['payload', 'dtype', 'buffers', 'floor ms', 'full path ms', 'full path / floor', 'floor as GB/s'],
          rows: floors,
        },
      ],
      figures,
      notes,
    };
  },
};
