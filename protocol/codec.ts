/**
 * The envelope codec: one msgpack map per socket.io event, size-checked both ways.
 * Uint8Array values travel as msgpack bin and decode as Uint8Array views into the input.
 */
import { Packr, type Options } from 'msgpackr';
import { ErrorCode, ProtocolError } from './errors.js';

export interface CodecLimits {
  maxBytes: number;
}

export const DEFAULT_MAX_BYTES = 16 * 1024 * 1024;

const packrOptions: Options & { skipValues: unknown[] } = {
  // Plain msgpack maps, no record extension, so any msgpack decoder can read our envelopes.
  useRecords: false,
  mapsAsObjects: true,
  // Refuse the id/pointer extensions on decode: they build shared or cyclic object graphs.
  structuredClone: false,
  // msgpackr writes undefined as its own ext type 0, which other decoders do not know: drop
  // undefined properties (as JSON does; missing, not null, keeps zod's optional() happy) and
  // write undefined array items as nil. skipValues is documented but missing from the typings.
  skipValues: [undefined],
  encodeUndefinedAsNil: true,
};
/** Shared: msgpackr keeps its decoder state in module globals anyway, so one instance is all there is. */
const packr = new Packr(packrOptions);

/** Encodes an envelope; refuses one larger than the limit before it can be sent. */
export function encodeEnvelope(message: object, limits: CodecLimits = { maxBytes: DEFAULT_MAX_BYTES }): Uint8Array {
  const maxBytes = checkLimits(limits);
  if (!isPlainObject(message)) {
    throw new ProtocolError(ErrorCode.Schema, `an envelope must be a plain object; got ${kindOf(message)}`);
  }
  let bytes: Uint8Array;
  try {
    bytes = packr.pack(message);
  } catch (error) {
    // e.g. a cycle (stack overflow) or a bigint beyond 64 bits.
    throw new ProtocolError(ErrorCode.Schema, `envelope cannot be encoded as msgpack: ${errorText(error)}`);
  }
  if (bytes.byteLength > maxBytes) throw tooLarge(bytes.byteLength, maxBytes);
  return bytes;
}

/** Decodes one envelope from Buffer/Uint8Array/ArrayBuffer bytes; anything else is E_MALFORMED. */
export function decodeEnvelope(bytes: unknown, limits: CodecLimits = { maxBytes: DEFAULT_MAX_BYTES }): Record<string, unknown> {
  const maxBytes = checkLimits(limits);
  let source: Uint8Array;
  // A fresh view: msgpackr caches a DataView as a property on its source, which should not land on
  // the caller's object. Buffer is a Uint8Array subclass.
  if (bytes instanceof Uint8Array) source = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  else if (bytes instanceof ArrayBuffer) source = new Uint8Array(bytes);
  else throw new ProtocolError(ErrorCode.Malformed, `an envelope must be binary (Buffer, Uint8Array or ArrayBuffer); got ${kindOf(bytes)}`);
  if (source.byteLength > maxBytes) throw tooLarge(source.byteLength, maxBytes);
  if (source.byteLength === 0) throw new ProtocolError(ErrorCode.Malformed, 'the envelope is empty');

  // unpackMultiple stopped after the first value instead of unpack(): on trailing bytes unpack()
  // JSON.stringifies the whole decoded value into its error message (seconds of CPU for a 16 MiB
  // envelope), and it gives us the first value's end so trailing bytes can be counted.
  let value: unknown;
  let end = -1;
  try {
    packr.unpackMultiple(source, (first: unknown, _start?: number, firstEnd?: number) => {
      value = first;
      end = firstEnd ?? -1;
      return false;
    });
  } catch (error) {
    // msgpackr marks reads past the end (a DataView RangeError or its own error) with `incomplete`.
    if (typeof error === 'object' && error !== null && (error as { incomplete?: unknown }).incomplete === true) {
      throw new ProtocolError(ErrorCode.Malformed, `the envelope is truncated: its ${source.byteLength} bytes end inside a msgpack value`);
    }
    throw new ProtocolError(ErrorCode.Malformed, `the envelope is not valid msgpack: ${errorText(error)}`);
  }
  if (end !== source.byteLength) {
    throw new ProtocolError(ErrorCode.Malformed, `the envelope has ${source.byteLength - end} trailing bytes after its msgpack value`);
  }
  if (!isPlainObject(value)) {
    throw new ProtocolError(ErrorCode.Malformed, `an envelope must be a msgpack map; got ${kindOf(value)}`);
  }
  return value;
}

/**
 * Prototype is null or some realm's Object.prototype: rejects arrays, Buffers, Dates, Maps and
 * msgpackr's C1 sentinel (what it decodes the reserved byte 0xc1 to) without relying on one realm.
 */
function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === null || Object.getPrototypeOf(proto) === null;
}

function checkLimits(limits: CodecLimits): number {
  const { maxBytes } = limits;
  if (!(maxBytes > 0)) throw new ProtocolError(ErrorCode.Internal, `codec limit maxBytes must be a positive number; got ${maxBytes}`);
  return maxBytes;
}

function tooLarge(size: number, limit: number): ProtocolError {
  let got = formatBytes(size);
  let max = formatBytes(limit);
  if (got === max) [got, max] = [`${size} bytes`, `${limit} bytes`]; // rounded alike: show exact sizes
  return new ProtocolError(ErrorCode.TooLarge, `envelope of ${got} exceeds the session limit of ${max}`);
}

function formatBytes(n: number): string {
  const units: [number, string][] = [[2 ** 30, 'GiB'], [2 ** 20, 'MiB'], [2 ** 10, 'KiB']];
  for (const [size, unit] of units) {
    if (n >= size) return `${Number((n / size).toFixed(1))} ${unit}`;
  }
  return `${n} bytes`;
}

function kindOf(value: unknown): string {
  if (value === null) return 'nil';
  if (Array.isArray(value)) return 'an array';
  if (typeof value !== 'object') return `a ${typeof value}`;
  const name: unknown = (value as { constructor?: { name?: unknown } }).constructor?.name;
  return typeof name === 'string' ? `a ${name}` : 'an object';
}

/** msgpackr's message, capped: it can quote input, which may be large or sensitive. */
function errorText(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}
