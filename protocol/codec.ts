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

/** Tensors with at least this many bytes get them 4-byte aligned in the envelope; for smaller ones a copy costs nothing. */
const ALIGN_FROM_BYTES = 1024;
/** The dtypes a receiver reads in place when aligned (float32 values; float16 bits before the table lookup). */
const ALIGNED_DTYPES: ReadonlySet<unknown> = new Set(['float32', 'float16']);

/**
 * encodeEnvelope for a message carrying one large float32 or float16 tensor (a field holding a
 * plain object whose `data` is a Uint8Array of at least 1 KiB): the same decoded value, with the tensor written
 * last and its bytes starting a multiple of 4 bytes from the start of the envelope. A receiver
 * whose envelope starts at an aligned address (a fresh buffer: the WebSocket layer copies any
 * message that arrived in more than one read into one) can then view float32 values in place
 * instead of copying them (unpackTensor's `inPlace`).
 *
 * Still plain msgpack that any decoder reads: a map's entries have no order a reader may rely
 * on, and the padding is non-minimal but valid headers — the tensor map as map16 instead of
 * fixmap, the key "data" as str8 or str16 instead of fixstr, the bytes as bin32. Anything else
 * (no such tensor, two of them, more than 14 fields, an envelope that would cross the limit only
 * because of the padding) is left to encodeEnvelope, which also raises every error.
 */
export function encodeAlignedEnvelope(message: object, limits: CodecLimits = { maxBytes: DEFAULT_MAX_BYTES }): Uint8Array {
  const maxBytes = checkLimits(limits);
  if (!isPlainObject(message)) return encodeEnvelope(message, limits);
  const entries = Object.entries(message).filter(([, v]) => v !== undefined);
  const large = entries.filter(
    ([, v]) => isPlainObject(v) && v.data instanceof Uint8Array && v.data.byteLength >= ALIGN_FROM_BYTES && ALIGNED_DTYPES.has(v.dtype),
  );
  if (large.length !== 1 || entries.length > 14) return encodeEnvelope(message, limits);
  const [key, tensor] = large[0] as [string, Record<string, unknown> & { data: Uint8Array }];
  const { data, ...tensorHeader } = tensor;
  let rest: Uint8Array;
  let keyBytes: Uint8Array;
  let tensorRest: Uint8Array;
  try {
    // Copied at once: msgpackr hands out views of a buffer it goes on writing into.
    rest = packr.pack(Object.fromEntries(entries.filter(([k]) => k !== key))).slice();
    keyBytes = packr.pack(key).slice();
    tensorRest = packr.pack(tensorHeader).slice();
  } catch {
    return encodeEnvelope(message, limits);
  }
  // Both maps must have come out as fixmaps with room for one more entry.
  const fields = rest[0]! - 0x80;
  const tensorFields = tensorRest[0]! - 0x80;
  if (fields < 0 || fields > 14 || tensorFields < 0 || tensorFields > 14) return encodeEnvelope(message, limits);
  // [map header][other fields][key][tensor map header][tensor fields]["data"][bin32 header][bytes]
  const fixed = 1 + (rest.length - 1) + keyBytes.length + (tensorRest.length - 1) + 5;
  const padding = (4 - ((fixed + 1 + 5) % 4)) % 4;
  const [mapHeader, dataKey] = ALIGNMENT_HEADERS[padding]!;
  const start = fixed + mapHeader + dataKey;
  const total = start + data.byteLength;
  if (total > maxBytes) return encodeEnvelope(message, limits);
  const out = allocateEnvelope(total);
  let at = 0;
  out[at++] = 0x80 + fields + 1;
  out.set(rest.subarray(1), at);
  at += rest.length - 1;
  out.set(keyBytes, at);
  at += keyBytes.length;
  if (mapHeader === 1) out[at++] = 0x80 + tensorFields + 1;
  else {
    out.set([0xde, 0, tensorFields + 1], at);
    at += 3;
  }
  out.set(tensorRest.subarray(1), at);
  at += tensorRest.length - 1;
  const name = [0x64, 0x61, 0x74, 0x61]; // "data"
  if (dataKey === 5) out.set([0xa4, ...name], at);
  else if (dataKey === 6) out.set([0xd9, 4, ...name], at);
  else out.set([0xda, 0, 4, ...name], at);
  at += dataKey;
  out[at++] = 0xc6;
  new DataView(out.buffer, out.byteOffset).setUint32(at, data.byteLength);
  at += 4;
  // Every byte of `out` is written: it was not zeroed.
  if (at !== start) throw new ProtocolError(ErrorCode.Internal, `aligned envelope layout: header ends at ${at}, expected ${start}`);
  out.set(data, at);
  return out;
}

/**
 * Room for one envelope, carved at an 8-byte boundary out of a larger block, as msgpackr does for
 * its own: one allocation per several envelopes (on this machine a fresh allocation costs more
 * than filling it), and the envelope starts at an aligned address. An envelope keeps its block
 * alive, a block of at most 4 times its size (msgpackr's are as large). The block is not zeroed (every
 * byte handed out is written before it is returned): Node's Buffer.allocUnsafeSlow, or where there
 * is no Buffer (a browser) a zeroed Uint8Array.
 */
function allocateEnvelope(size: number): Uint8Array {
  if (block === undefined || blockUsed + size > block.byteLength) {
    // Above 8 MiB an envelope gets a block of its own.
    const blockSize = size >= 8 * 1024 * 1024 ? size : Math.max(4 * size, 64 * 1024);
    block = typeof Buffer === 'function' ? Buffer.allocUnsafeSlow(blockSize) : new Uint8Array(blockSize);
    blockUsed = 0;
  }
  const out = block.subarray(blockUsed, blockUsed + size);
  blockUsed = Math.ceil((blockUsed + size) / 8) * 8;
  return out;
}
let block: Uint8Array | undefined;
let blockUsed = 0;

/** Padding bytes needed → [tensor map header bytes (fixmap 1, map16 3), key "data" bytes (fixstr 5, str8 6, str16 7)]. */
const ALIGNMENT_HEADERS: ReadonlyArray<readonly [1 | 3, 5 | 6 | 7]> = [[1, 5], [1, 6], [1, 7], [3, 6]];

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
  // The bytes are checked against codistill's subset of msgpack before msgpackr reads them, so that
  // whatever a peer sends is refused in words about the input — never msgpackr's own message, a
  // stack overflow, or advice about msgpackr's options.
  const scanned = scanEnvelope(source);
  if (scanned !== source.byteLength) {
    throw new ProtocolError(ErrorCode.Malformed, `the envelope has ${source.byteLength - scanned} trailing bytes after its msgpack value`);
  }
  if ((source[0]! & 0xf0) !== 0x80 && source[0] !== 0xde && source[0] !== 0xdf) {
    throw new ProtocolError(ErrorCode.Malformed, `an envelope must be a msgpack map; got ${msgpackTypeName(source[0]!)}`);
  }

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
    // scanEnvelope passed it, so this is not expected; msgpackr's words stay out of the reply all the same.
    throw new ProtocolError(ErrorCode.Malformed, 'the envelope is msgpack this coordinator cannot decode');
  }
  if (end !== source.byteLength) {
    throw new ProtocolError(ErrorCode.Malformed, `the envelope has ${source.byteLength - end} trailing bytes after its msgpack value`);
  }
  if (!isPlainObject(value)) {
    throw new ProtocolError(ErrorCode.Malformed, `an envelope must be a msgpack map; got ${kindOf(value)}`);
  }
  return value;
}

/** How deeply an envelope may nest maps and arrays; codistill's own nest 3 deep at most. */
export const MAX_NESTING = 32;

/**
 * Walks the first msgpack value of `bytes` — without recursion, without building anything, skipping
 * strings and binary by their length — and returns where it ends. Refuses, in words about the
 * input, what codistill's envelopes never hold: extension types (timestamps, typed arrays, records,
 * clones …), map keys that are not strings, the reserved byte 0xc1, nesting deeper than
 * MAX_NESTING; and a value cut short. Every item takes at least one byte, so the walk ends within
 * bytes.length steps whatever counts a header claims.
 */
function scanEnvelope(bytes: Uint8Array): number {
  const n = bytes.length;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  /** Items still to read in each open container (a map counts keys and values); parallel: whether it is a map. */
  const remaining: number[] = [];
  const inMap: boolean[] = [];
  let at = 0;
  const truncated = () => new ProtocolError(ErrorCode.Malformed, `the envelope is truncated: its ${n} bytes end inside a msgpack value`);
  const length = (width: 1 | 2 | 4): number => {
    if (at + 1 + width > n) throw truncated();
    return width === 1 ? bytes[at + 1]! : width === 2 ? view.getUint16(at + 1) : view.getUint32(at + 1);
  };
  do {
    const depth = remaining.length;
    const isKey = depth > 0 && inMap[depth - 1]! && remaining[depth - 1]! % 2 === 0;
    if (at >= n) throw truncated();
    const t = bytes[at]!;
    if (isKey && !((t >= 0xa0 && t <= 0xbf) || t === 0xd9 || t === 0xda || t === 0xdb)) {
      throw new ProtocolError(ErrorCode.Malformed, `map keys must be strings; the key at byte ${at} is ${msgpackTypeName(t)}`);
    }
    let size = 1; // bytes of this item, for scalars
    let items = -1; // for containers: entries (maps count both keys and values)
    let map = false;
    if (t <= 0x7f || t >= 0xe0 || t === 0xc0 || t === 0xc2 || t === 0xc3) size = 1;
    else if (t <= 0x8f) [items, map] = [2 * (t & 0x0f), true];
    else if (t <= 0x9f) items = t & 0x0f;
    else if (t <= 0xbf) size = 1 + (t & 0x1f);
    else {
      switch (t) {
        case 0xc1:
          throw new ProtocolError(ErrorCode.Malformed, `byte ${at} is 0xc1, which msgpack reserves and no value uses`);
        case 0xc4: case 0xd9: size = 2 + length(1); break; // bin8, str8
        case 0xc5: case 0xda: size = 3 + length(2); break; // bin16, str16
        case 0xc6: case 0xdb: size = 5 + length(4); break; // bin32, str32
        case 0xca: size = 5; break;
        case 0xcb: size = 9; break;
        case 0xcc: case 0xd0: size = 2; break;
        case 0xcd: case 0xd1: size = 3; break;
        case 0xce: case 0xd2: size = 5; break;
        case 0xcf: case 0xd3: size = 9; break;
        case 0xdc: items = length(2); size = 3; break;
        case 0xdd: items = length(4); size = 5; break;
        case 0xde: [items, map] = [2 * length(2), true]; size = 3; break;
        case 0xdf: [items, map] = [2 * length(4), true]; size = 5; break;
        default: {
          // 0xc7–0xc9 ext 8/16/32, 0xd4–0xd8 fixext: the type byte follows the header.
          const typeAt = t >= 0xd4 ? at + 1 : at + (t === 0xc7 ? 2 : t === 0xc8 ? 3 : 5);
          const type = typeAt < n ? ` (type ${view.getInt8(typeAt)})` : '';
          throw new ProtocolError(
            ErrorCode.Malformed,
            `byte ${at} starts a msgpack extension${type}; codistill envelopes hold only maps, arrays, strings, binary, numbers, booleans and nil`,
          );
        }
      }
    }
    if (items > 0) {
      if (depth + 1 > MAX_NESTING) {
        throw new ProtocolError(ErrorCode.Malformed, `the envelope nests maps and arrays more than ${MAX_NESTING} deep (byte ${at}); codistill's own nest a few levels deep`);
      }
      at += size;
      remaining.push(items);
      inMap.push(map);
      continue;
    }
    at += size;
    if (at > n) throw truncated();
    // One item done: count it off its container, and every container it completes off theirs.
    while (remaining.length > 0) {
      const top = remaining.length - 1;
      remaining[top]!--;
      if (remaining[top]! > 0) break;
      remaining.pop();
      inMap.pop();
    }
  } while (remaining.length > 0);
  return at;
}

/** What a msgpack value starting with this byte is, for a message. */
function msgpackTypeName(t: number): string {
  if (t <= 0x7f || t >= 0xe0 || (t >= 0xcc && t <= 0xd3)) return 'an integer';
  if (t <= 0x8f || t === 0xde || t === 0xdf) return 'a map';
  if (t <= 0x9f || t === 0xdc || t === 0xdd) return 'an array';
  if (t <= 0xbf || (t >= 0xd9 && t <= 0xdb)) return 'a string';
  if (t === 0xc0) return 'nil';
  if (t === 0xc2 || t === 0xc3) return 'a boolean';
  if (t >= 0xc4 && t <= 0xc6) return 'binary';
  if (t === 0xca || t === 0xcb) return 'a float';
  if (t === 0xc1) return 'the reserved byte 0xc1';
  return 'an extension';
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
