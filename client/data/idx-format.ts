/**
 * The IDX format of the MNIST family (LeCun, Cortes & Burges, "The MNIST database of
 * handwritten digits", http://yann.lecun.com/exdb/mnist/; also Fashion-MNIST, KMNIST, EMNIST):
 *
 *   magic   u32 big-endian = 0x00 0x00 <dtype> <rank>
 *   dims    rank × u32 big-endian
 *   data    prod(dims) values of <dtype>, big-endian, row-major
 *
 * dtype: 0x08 u8, 0x09 i8, 0x0B i16, 0x0C i32, 0x0D f32, 0x0E f64. MNIST images are
 * 0x00000803 (u8, [n, rows, cols]) and labels 0x00000801 (u8, [n]). Files may be gzipped
 * (as distributed); gzip is recognised by its magic bytes 1f 8b, not by the file name.
 *
 * This module decodes bytes only (no Node imports), so the browser participant reads IDX files
 * with it; idx.ts reads them from disk.
 */
export type IdxDtype = 'u8' | 'i8' | 'i16' | 'i32' | 'f32' | 'f64';

export type IdxData = Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;

/** One decoded IDX file: values in host order, copied out of the file's bytes. */
export interface IdxArray {
  dtype: IdxDtype;
  shape: number[];
  data: IdxData;
}

export const DTYPES: Record<number, { dtype: IdxDtype; bytes: number }> = {
  0x08: { dtype: 'u8', bytes: 1 },
  0x09: { dtype: 'i8', bytes: 1 },
  0x0b: { dtype: 'i16', bytes: 2 },
  0x0c: { dtype: 'i32', bytes: 4 },
  0x0d: { dtype: 'f32', bytes: 4 },
  0x0e: { dtype: 'f64', bytes: 8 },
};

export const IDX_IMAGES_MAGIC = 0x00000803;
export const IDX_LABELS_MAGIC = 0x00000801;

export const hex = (n: number) => `0x${(n >>> 0).toString(16).padStart(8, '0')}`;

export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** What a caller expects of a file; used only to word the errors. */
export interface IdxExpectation {
  /** The magic number named in errors, e.g. 0x00000803 for images. */
  magic: number;
  description: string;
}

/**
 * Decodes IDX bytes. `file` names the source in errors. Checks the magic (two zero bytes, a
 * known dtype), the header length and that the data is exactly prod(dims) values long.
 */
export function parseIdx(bytes: Uint8Array, file: string, expect?: IdxExpectation): IdxArray {
  const wanted = expect === undefined ? 'an IDX magic 0x00000Dnn (D = 08, 09, 0b, 0c, 0d or 0e; nn = rank)' : `${hex(expect.magic)} (${expect.description})`;
  if (bytes.length < 4) {
    throw new Error(`E_IDX_TRUNCATED: ${file} has ${bytes.length} bytes; an IDX file needs at least a 4-byte magic number (expected ${wanted})`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0, false);
  const type = DTYPES[bytes[2]!];
  const rank = bytes[3]!;
  if (bytes[0] !== 0 || bytes[1] !== 0 || type === undefined || rank === 0) {
    throw new Error(`E_IDX_MAGIC: ${file} has magic number ${hex(magic)}; expected ${wanted}. Is this an IDX file?`);
  }
  const headerBytes = 4 + 4 * rank;
  if (bytes.length < headerBytes) {
    throw new Error(`E_IDX_TRUNCATED: ${file} ends inside its header: a rank-${rank} header needs ${headerBytes} bytes, the file has ${bytes.length}`);
  }
  const shape = Array.from({ length: rank }, (_, d) => view.getUint32(4 + 4 * d, false));
  const count = shape.reduce((a, b) => a * b, 1);
  const expected = headerBytes + count * type.bytes;
  if (bytes.length !== expected) {
    const what = bytes.length < expected ? 'truncated' : 'longer than its header says';
    throw new Error(
      `E_IDX_TRUNCATED: ${file} is ${what}: shape [${shape.join(', ')}] of ${type.dtype} needs ${expected} bytes ` +
        `(${headerBytes} header + ${count * type.bytes} data); found ${bytes.length}`,
    );
  }
  return { dtype: type.dtype, shape, data: decode(view, headerBytes, count, type.dtype) };
}

function decode(view: DataView, offset: number, count: number, dtype: IdxDtype): IdxData {
  switch (dtype) {
    case 'u8':
      return new Uint8Array(view.buffer.slice(view.byteOffset + offset, view.byteOffset + offset + count));
    case 'i8':
      return new Int8Array(view.buffer.slice(view.byteOffset + offset, view.byteOffset + offset + count));
    case 'i16': {
      const out = new Int16Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt16(offset + 2 * i, false);
      return out;
    }
    case 'i32': {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt32(offset + 4 * i, false);
      return out;
    }
    case 'f32': {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(offset + 4 * i, false);
      return out;
    }
    case 'f64': {
      const out = new Float64Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(offset + 8 * i, false);
      return out;
    }
  }
}

