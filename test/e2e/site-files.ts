/** The files a site would hold, written from MNIST digits: CSV with a label column, IDX images. */
import { writeFileSync } from 'node:fs';

/** A CSV file with a header (label, p0…p783) for some MNIST rows. */
export function writeCsv(path: string, x: Float32Array, y: Int32Array): void {
  const d = x.length / y.length;
  const header = ['label', ...Array.from({ length: d }, (_, i) => `p${i}`)].join(',');
  const rows = Array.from(y, (label, i) => [label, ...Array.from(x.subarray(i * d, (i + 1) * d), (v) => +v.toFixed(3))].join(','));
  writeFileSync(path, `${header}\n${rows.join('\n')}\n`);
}

/** An IDX u8 images file [n, 28, 28]. */
export function writeIdxImages(path: string, x: Float32Array): void {
  const n = x.length / 784;
  const bytes = Buffer.alloc(16 + x.length);
  bytes.writeUInt32BE(0x00000803, 0);
  bytes.writeUInt32BE(n, 4);
  bytes.writeUInt32BE(28, 8);
  bytes.writeUInt32BE(28, 12);
  for (let i = 0; i < x.length; i++) bytes[16 + i] = Math.round(x[i]! * 255);
  writeFileSync(path, bytes);
}
