import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, it, expect } from 'vitest';
import { loadCsv, parseCsv } from '../../client/data/csv.js';
import { findIdxPairs, loadIdxDataset, loadIdxFolder, parseIdx, readIdxFile } from '../../client/data/idx.js';

const root = mkdtempSync(join(tmpdir(), 'codistill-loaders-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let dirCount = 0;
function freshDir(): string {
  const dir = join(root, `d${dirCount++}`);
  mkdirSync(dir);
  return dir;
}

const DTYPE_CODES = { u8: 0x08, i8: 0x09, i16: 0x0b, i32: 0x0c, f32: 0x0d, f64: 0x0e } as const;
const DTYPE_BYTES = { u8: 1, i8: 1, i16: 2, i32: 4, f32: 4, f64: 8 } as const;

/** An IDX file's bytes, written the way the format specifies: big-endian header and values. */
function idx(dtype: keyof typeof DTYPE_CODES, shape: number[], values: number[]): Buffer {
  const header = 4 + 4 * shape.length;
  const buffer = Buffer.alloc(header + values.length * DTYPE_BYTES[dtype]);
  buffer.writeUInt8(DTYPE_CODES[dtype], 2);
  buffer.writeUInt8(shape.length, 3);
  shape.forEach((d, k) => buffer.writeUInt32BE(d, 4 + 4 * k));
  values.forEach((v, i) => {
    const at = header + i * DTYPE_BYTES[dtype];
    if (dtype === 'u8') buffer.writeUInt8(v, at);
    else if (dtype === 'i8') buffer.writeInt8(v, at);
    else if (dtype === 'i16') buffer.writeInt16BE(v, at);
    else if (dtype === 'i32') buffer.writeInt32BE(v, at);
    else if (dtype === 'f32') buffer.writeFloatBE(v, at);
    else buffer.writeDoubleBE(v, at);
  });
  return buffer;
}

/** Three 2×2 grey images (pixel values 0…255) and their labels 2, 0, 1. */
const PIXELS = [0, 51, 102, 255, 255, 0, 0, 0, 10, 20, 30, 40];
const IMAGES = idx('u8', [3, 2, 2], PIXELS);
const LABELS = idx('u8', [3], [2, 0, 1]);

function write(dir: string, name: string, bytes: Buffer | string): string {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
}

describe('IDX', () => {
  it('loads u8 images [n, rows, cols] as [rows, cols, 1] in [0, 1], with numClasses = max label + 1', () => {
    const dir = freshDir();
    const d = loadIdxDataset(write(dir, 'a-images-idx3-ubyte', IMAGES), write(dir, 'a-labels-idx1-ubyte', LABELS));
    expect(d.sampleShape).toEqual([2, 2, 1]);
    expect(d.numClasses).toBe(3);
    expect(Array.from(d.y)).toEqual([2, 0, 1]);
    expect(d.x).toEqual(Float32Array.from(PIXELS.map((p) => p / 255)));
    expect(loadIdxDataset(join(dir, 'a-images-idx3-ubyte'), join(dir, 'a-labels-idx1-ubyte'), { numClasses: 10, scaleBytes: false }).x[3]).toBe(255);
  });

  it('reads gzipped files by their magic bytes, whatever their names', () => {
    const dir = freshDir();
    const plain = loadIdxDataset(write(dir, 'p-images', IMAGES), write(dir, 'p-labels', LABELS));
    const gz = loadIdxDataset(write(dir, 'g-images.gz', gzipSync(IMAGES)), write(dir, 'g-labels-no-suffix', gzipSync(LABELS)));
    expect(gz).toEqual(plain);
  });

  it('decodes the other IDX dtypes big-endian and keeps other ranks', () => {
    const dir = freshDir();
    const features = [0.5, -1.25, 3, 1e-3, 7, -2];
    const d = loadIdxDataset(write(dir, 'f-images', idx('f32', [2, 3], features)), write(dir, 'f-labels', idx('i32', [2], [4, 70000 - 69999])));
    expect(d.sampleShape).toEqual([3]);
    expect(d.x).toEqual(Float32Array.from(features));
    expect(Array.from(d.y)).toEqual([4, 1]);
    expect(d.numClasses).toBe(5);
    expect(Array.from(parseIdx(idx('i16', [3], [-300, 0, 300]), 'mem').data)).toEqual([-300, 0, 300]);
    expect(Array.from(parseIdx(idx('f64', [2], [Math.PI, -0.1]), 'mem').data)).toEqual([Math.PI, -0.1]);
    expect(parseIdx(idx('u8', [2, 1, 2, 3], new Array(12).fill(1)), 'mem').shape).toEqual([2, 1, 2, 3]);
    const colour = loadIdxDataset(write(dir, 'c-images', idx('u8', [1, 2, 2, 3], new Array(12).fill(255))), write(dir, 'c-labels', idx('u8', [1], [0])));
    expect(colour.sampleShape).toEqual([2, 2, 3]);
  });

  it('finds the standard MNIST names in a folder; train and test share numClasses', () => {
    const dir = freshDir();
    write(dir, 'train-images-idx3-ubyte.gz', gzipSync(IMAGES));
    write(dir, 'train-labels-idx1-ubyte.gz', gzipSync(LABELS));
    write(dir, 't10k-images-idx3-ubyte', idx('u8', [2, 2, 2], [1, 2, 3, 4, 5, 6, 7, 8]));
    write(dir, 't10k-labels-idx1-ubyte', idx('u8', [2], [4, 0]));
    write(dir, 'README.txt', 'not data');
    const folder = loadIdxFolder(dir);
    expect(folder.train.y.length).toBe(3);
    expect(folder.test?.y.length).toBe(2);
    expect(folder.train.numClasses).toBe(5);
    expect(folder.test?.numClasses).toBe(5);
    expect(folder.files.train.images).toBe(join(dir, 'train-images-idx3-ubyte.gz'));
    expect(folder.files.test?.prefix).toBe('t10k');
  });

  it('finds other <prefix>-images/-labels pairs (EMNIST names, dot separators, a lone pair)', () => {
    const emnist = freshDir();
    write(emnist, 'emnist-digits-train-images-idx3-ubyte.gz', gzipSync(IMAGES));
    write(emnist, 'emnist-digits-train-labels-idx1-ubyte.gz', gzipSync(LABELS));
    write(emnist, 'emnist-digits-test-images-idx3-ubyte.gz', gzipSync(IMAGES));
    write(emnist, 'emnist-digits-test-labels-idx1-ubyte.gz', gzipSync(LABELS));
    const folder = loadIdxFolder(emnist);
    expect(folder.files.train.prefix).toBe('emnist-digits-train');
    expect(folder.files.test?.prefix).toBe('emnist-digits-test');

    const kaggle = freshDir();
    write(kaggle, 'train-images.idx3-ubyte', IMAGES);
    write(kaggle, 'train-labels.idx1-ubyte', LABELS);
    expect(loadIdxFolder(kaggle).test).toBeUndefined();

    const lone = freshDir();
    write(lone, 'scans-images-idx3-ubyte', IMAGES);
    write(lone, 'scans-labels-idx1-ubyte', LABELS);
    expect(loadIdxFolder(lone).files.train.prefix).toBe('scans');
  });

  it('asks which pair when a folder holds several training sets', () => {
    const dir = freshDir();
    for (const set of ['emnist-digits', 'emnist-letters']) {
      write(dir, `${set}-train-images-idx3-ubyte`, IMAGES);
      write(dir, `${set}-train-labels-idx1-ubyte`, LABELS);
    }
    expect(() => loadIdxFolder(dir)).toThrow(/E_DATA_AMBIGUOUS.*emnist-digits-train, emnist-letters-train/);
    expect(loadIdxFolder(dir, { train: 'emnist-letters-train' }).files.train.prefix).toBe('emnist-letters-train');
    expect(() => loadIdxFolder(dir, { train: 'nope' })).toThrow(/E_DATA_MISSING.*nope/);
  });

  describe('broken files', () => {
    it('names a missing file', () => {
      const dir = freshDir();
      write(dir, 'x-images', IMAGES);
      expect(() => loadIdxDataset(join(dir, 'x-images'), join(dir, 'x-labels'))).toThrow(`E_DATA_MISSING: ${join(dir, 'x-labels')} does not exist`);
      expect(() => readIdxFile(join(dir, 'nothing-here'))).toThrow(/E_DATA_MISSING/);
    });

    it('names the missing half of a pair and an empty folder', () => {
      const dir = freshDir();
      write(dir, 'train-images-idx3-ubyte.gz', gzipSync(IMAGES));
      expect(() => loadIdxFolder(dir)).toThrow(/E_DATA_MISSING: .*train-images-idx3-ubyte\.gz has no labels file: expected .*train-labels-idx1-ubyte\[\.gz\]/);
      expect(() => loadIdxFolder(freshDir())).toThrow(/E_DATA_MISSING: no IDX images\/labels pair/);
      expect(() => loadIdxFolder(join(root, 'no-such-dir'))).toThrow(/E_DATA_MISSING: .*no-such-dir is not a directory/);
    });

    it('prints the expected and found magic numbers in hex', () => {
      const dir = freshDir();
      const png = write(dir, 'png-images', Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
      const labels = write(dir, 'png-labels', LABELS);
      expect(() => loadIdxDataset(png, labels)).toThrow(`E_IDX_MAGIC: ${png} has magic number 0x89504e47; expected 0x00000803 (u8 images [n, rows, cols])`);
      // Labels where images belong, and images where labels belong.
      expect(() => loadIdxDataset(labels, labels)).toThrow(/E_IDX_MAGIC: .*png-labels has magic number 0x00000801; expected 0x00000803/);
      const images = write(dir, 'real-images', IMAGES);
      expect(() => loadIdxDataset(images, images)).toThrow(/E_IDX_MAGIC: .*real-images has magic number 0x00000803; expected 0x00000801/);
      expect(() => parseIdx(Buffer.from([0, 0, 0x07, 1, 0, 0, 0, 0]), 'mem')).toThrow(/E_IDX_MAGIC: mem has magic number 0x00000701/);
    });

    it('reports truncated data with expected and actual sizes', () => {
      const dir = freshDir();
      const short = write(dir, 'short-images', IMAGES.subarray(0, IMAGES.length - 5));
      const labels = write(dir, 'short-labels', LABELS);
      expect(() => loadIdxDataset(short, labels)).toThrow(
        `E_IDX_TRUNCATED: ${short} is truncated: shape [3, 2, 2] of u8 needs 28 bytes (16 header + 12 data); found 23`,
      );
      const gz = write(dir, 'gz-images', gzipSync(IMAGES.subarray(0, 20)));
      expect(() => loadIdxDataset(gz, labels)).toThrow(/E_IDX_TRUNCATED: .*gz-images is truncated: .*needs 28 bytes .*found 20/);
      expect(() => parseIdx(IMAGES.subarray(0, 10), 'mem')).toThrow(/E_IDX_TRUNCATED: mem ends inside its header/);
      expect(() => parseIdx(IMAGES.subarray(0, 2), 'mem')).toThrow(/E_IDX_TRUNCATED: mem has 2 bytes/);
      expect(() => parseIdx(Buffer.concat([LABELS, Buffer.from([1])]), 'mem')).toThrow(/E_IDX_TRUNCATED: mem is longer than its header says/);
      const cut = gzipSync(IMAGES);
      const brokenGzip = write(dir, 'cut.gz', cut.subarray(0, cut.length - 12));
      expect(() => readIdxFile(brokenGzip)).toThrow(/E_GZIP: .*cut\.gz starts with the gzip magic but cannot be gunzipped/);
    });

    it('refuses mismatched image and label counts', () => {
      const dir = freshDir();
      const images = write(dir, 'm-images', IMAGES);
      const labels = write(dir, 'm-labels', idx('u8', [4], [0, 1, 2, 3]));
      expect(() => loadIdxDataset(images, labels)).toThrow(`E_IDX_COUNT: ${images} holds 3 images but ${labels} holds 4 labels; they must match`);
      write(dir, 'train-images-idx3-ubyte', IMAGES);
      write(dir, 'train-labels-idx1-ubyte', idx('u8', [2], [0, 1]));
      expect(() => loadIdxFolder(dir, { train: 'train' })).toThrow(/E_IDX_COUNT: .*train-images-idx3-ubyte holds 3 images but .*train-labels-idx1-ubyte holds 2 labels/);
    });

    it('refuses labels outside [0, numClasses) and float labels', () => {
      const dir = freshDir();
      const images = write(dir, 'l-images', IMAGES);
      const labels = write(dir, 'l-labels', LABELS);
      expect(() => loadIdxDataset(images, labels, { numClasses: 2 })).toThrow(`E_IDX_LABEL: ${labels}: label 0 is 2, outside [0, 2) for numClasses 2`);
      const negative = write(dir, 'n-labels', idx('i8', [3], [0, -1, 1]));
      expect(() => loadIdxDataset(images, negative)).toThrow(/E_IDX_LABEL: .*n-labels: label 1 is -1/);
      const floats = write(dir, 'f-labels', idx('f32', [3], [0, 1, 2]));
      expect(() => loadIdxDataset(images, floats)).toThrow(/E_IDX_MAGIC: .*f-labels has magic number 0x00000d01; expected 0x00000801/);
    });

    it('refuses a test set whose samples differ in shape from the training set', () => {
      const dir = freshDir();
      write(dir, 'train-images-idx3-ubyte', IMAGES);
      write(dir, 'train-labels-idx1-ubyte', LABELS);
      write(dir, 't10k-images-idx3-ubyte', idx('u8', [1, 1, 4], [1, 2, 3, 4]));
      write(dir, 't10k-labels-idx1-ubyte', idx('u8', [1], [0]));
      expect(() => loadIdxFolder(dir)).toThrow(/E_IDX_SHAPE: .*t10k-images-idx3-ubyte holds samples of shape \[1, 4, 1\] but .* holds \[2, 2, 1\]/);
    });
  });

  it('lists pairs in a folder', () => {
    const dir = freshDir();
    write(dir, 'train-images-idx3-ubyte', IMAGES);
    write(dir, 'train-labels-idx1-ubyte', LABELS);
    expect(findIdxPairs(dir)).toEqual([{ prefix: 'train', images: join(dir, 'train-images-idx3-ubyte'), labels: join(dir, 'train-labels-idx1-ubyte') }]);
  });
});

describe('CSV', () => {
  it('reads a header, a label column and numeric features', () => {
    const d = parseCsv('label,a,b,c,d\n1,0.5,1,2,3\n0,-1,1e-3,0,4\n3,0,0,0,0\n', 'mem.csv');
    expect(Array.from(d.y)).toEqual([1, 0, 3]);
    expect(d.numClasses).toBe(4);
    expect(d.sampleShape).toEqual([4]);
    expect(d.featureColumns).toEqual(['a', 'b', 'c', 'd']);
    expect(d.labelColumn).toBe('label');
    expect(d.classNames).toBeUndefined();
    expect(d.x).toEqual(Float32Array.from([0.5, 1, 2, 3, -1, 1e-3, 0, 4, 0, 0, 0, 0]));
    expect(parseCsv('label,a,b,c,d\n1,0,1,2,3\n', 'mem', { sampleShape: [2, 2, 1] }).sampleShape).toEqual([2, 2, 1]);
  });

  it('takes the label column by name or index, can exclude columns, and reads "3.0" as class 3', () => {
    const text = 'id,x1,x2,y\n7,1,2,0\n8,3,4,3.0\n';
    const byName = parseCsv(text, 'mem', { label: 'y', exclude: ['id'] });
    expect(byName.featureColumns).toEqual(['x1', 'x2']);
    expect(Array.from(byName.x)).toEqual([1, 2, 3, 4]);
    expect(Array.from(byName.y)).toEqual([0, 3]);
    const byIndex = parseCsv(text, 'mem', { label: 3, exclude: [0] });
    expect(byIndex).toEqual(byName);
    expect(parseCsv(text, 'mem', { label: 'y' }).featureColumns).toEqual(['id', 'x1', 'x2']);
  });

  it('maps string labels to ids in sorted order and returns the mapping', () => {
    const d = parseCsv('f,species\n1,dog\n2,cat\n3,bird\n4,cat\n', 'mem', { label: 'species' });
    expect(d.classNames).toEqual(['bird', 'cat', 'dog']);
    expect(Array.from(d.y)).toEqual([2, 1, 0, 1]);
    expect(d.numClasses).toBe(3);
    // Integers forced to names: sorted as text.
    expect(parseCsv('f,label\n1,10\n2,9\n', 'mem', { labels: 'string' }).classNames).toEqual(['10', '9']);
  });

  it('handles quotes, escaped quotes, delimiters and line breaks inside quotes, CRLF, a BOM and blank lines', () => {
    const text = '\ufeff"label","a","b"\r\n"say ""hi""",1,"2"\r\n"two\nlines, really",3,4\r\n\r\nplain,5,6\r\n\r\n';
    const d = parseCsv(text, 'mem');
    expect(d.classNames).toEqual(['plain', 'say "hi"', 'two\nlines, really']);
    expect(Array.from(d.y)).toEqual([1, 2, 0]);
    expect(Array.from(d.x)).toEqual([1, 2, 3, 4, 5, 6]);
    // Line numbers count the line break inside the quoted field: "plain" is on line 6.
    expect(() => parseCsv(text.replace('plain,5,6', 'plain,5,x'), 'mem')).toThrow(/E_CSV_VALUE: mem line 6, column 3 \("b"\)/);
    expect(parseCsv('label;a\n1;2.5\n', 'mem', { delimiter: ';', labels: 'integer' }).featureColumns).toEqual(['a']);
  });

  it('reads files, gzipped or not', () => {
    const dir = freshDir();
    const text = 'label,a\n0,1\n1,2\n';
    const plain = loadCsv(write(dir, 'data.csv', text));
    expect(loadCsv(write(dir, 'data.csv.gz', gzipSync(text)))).toEqual(plain);
    expect(() => loadCsv(join(dir, 'missing.csv'))).toThrow(/E_DATA_MISSING: .*missing\.csv does not exist/);
  });

  describe('broken files', () => {
    it('names file, line and column of a non-numeric value', () => {
      expect(() => parseCsv('label,a,b\n0,1,2\n1,3,abc\n', 'data.csv')).toThrow('E_CSV_VALUE: data.csv line 3, column 3 ("b"): "abc" is not a finite number');
      expect(() => parseCsv('label,a,b\n0,,2\n', 'data.csv')).toThrow('E_CSV_VALUE: data.csv line 2, column 2 ("a"): "" is not a finite number');
      expect(() => parseCsv('label,a\n0,Infinity\n', 'data.csv')).toThrow(/E_CSV_VALUE: data.csv line 2, column 2/);
    });

    it('names the line with the wrong number of fields', () => {
      expect(() => parseCsv('label,a,b\n0,1,2\n1,3\n', 'data.csv')).toThrow('E_CSV_FIELDS: data.csv line 3: 2 fields; the header (line 1) has 3');
      expect(() => parseCsv('label,a,b\n0,1,2,\n', 'data.csv')).toThrow(/E_CSV_FIELDS: data.csv line 2: 4 fields/);
    });

    it('names a missing label column and lists the columns', () => {
      expect(() => parseCsv('digit,a,b\n0,1,2\n', 'data.csv')).toThrow('E_CSV_COLUMN: data.csv: no label column "label" in the header (columns: digit, a, b)');
      expect(() => parseCsv('digit,a,b\n0,1,2\n', 'data.csv', { label: 5 })).toThrow(/E_CSV_COLUMN: data.csv: label column index 5 is outside/);
    });

    it('refuses an empty file, a header without rows, and a header without features', () => {
      expect(() => parseCsv('', 'empty.csv')).toThrow('E_CSV_EMPTY: empty.csv is empty; expected a header row and data rows');
      expect(() => parseCsv('\n\n', 'blank.csv')).toThrow(/E_CSV_EMPTY: blank.csv is empty/);
      expect(() => parseCsv('label,a\n', 'head.csv')).toThrow('E_CSV_EMPTY: head.csv has a header but no data rows');
      expect(() => parseCsv('label\n1\n', 'one.csv')).toThrow(/E_CSV_EMPTY: one.csv: the header has no feature columns/);
      const dir = freshDir();
      expect(() => loadCsv(write(dir, 'empty.csv', ''))).toThrow(/E_CSV_EMPTY: .*empty\.csv is empty/);
    });

    it('refuses an unterminated quote, text after a closing quote, bad labels and a wrong sampleShape', () => {
      expect(() => parseCsv('label,a\n0,"1\n1,2\n', 'q.csv')).toThrow('E_CSV_QUOTE: q.csv line 2, column 2: the quoted field never closes');
      expect(() => parseCsv('label,a\n0,"1"x\n', 'q.csv')).toThrow(/E_CSV_QUOTE: q.csv line 2, column 2: characters after the closing quote/);
      expect(() => parseCsv('label,a\n0,1\ncat,2\n', 'l.csv', { labels: 'integer' })).toThrow(
        'E_CSV_LABEL: l.csv line 3, column 1 ("label"): label "cat" is not an integer ≥ 0',
      );
      expect(() => parseCsv('label,a\n0,1\n5,2\n', 'l.csv', { numClasses: 3 })).toThrow(/E_CSV_LABEL: l.csv line 3, column 1 \("label"\): label 5 is outside \[0, 3\)/);
      expect(() => parseCsv('label,a\n0,1\n,2\n', 'l.csv')).toThrow(/E_CSV_LABEL: l.csv line 3, column 1 \("label"\): the label is empty/);
      expect(() => parseCsv('label,a,b\n0,1,2\n', 's.csv', { sampleShape: [3] })).toThrow(/E_CSV_SHAPE: s.csv: sampleShape \[3\] holds 3 values; the file has 2 feature columns/);
    });
  });
});

describe('CSV class names fixed elsewhere', () => {
  it('numbers string labels by the given names, so a file that lacks a class keeps the others\' ids; an unknown name is refused', () => {
    const text = 'species,a,b\nvirginica,1,2\nsetosa,3,4\n';
    const own = parseCsv(text, 'test.csv', { label: 'species' });
    expect([...own.y]).toEqual([1, 0]); // sorted among the names present: setosa, virginica
    const fixed = parseCsv(text, 'test.csv', { label: 'species', classNames: ['setosa', 'versicolor', 'virginica'] });
    expect([...fixed.y]).toEqual([2, 0]);
    expect(fixed.numClasses).toBe(3);
    expect(() => parseCsv('species,a\nfox,1\n', 'test.csv', { label: 'species', classNames: ['setosa', 'virginica'] }))
      .toThrow(/^E_CSV_LABEL: test\.csv line 2, column 1 \("species"\): label "fox" is not one of the classes "setosa", "virginica"$/);
  });
});
