/**
 * The browser participant's files: private data (a CSV table, or labelled images) and the shared
 * reference set (IDX images or CSV), read inside the page with the same parsers as the Node
 * participant (data/csv-text.ts, data/idx-format.ts). Nothing here sends anything anywhere.
 */
import { parseCsv } from '../data/csv-text.js';
import type { LabeledDataset } from '../data/dataset.js';
import { isGzip, parseIdx } from '../data/idx-format.js';

/** A file's bytes, gunzipped when they start with the gzip magic (as the Node loaders do). */
export async function fileBytes(name: string, blob: Blob): Promise<Uint8Array> {
  const raw = new Uint8Array(await blob.arrayBuffer());
  if (!isGzip(raw)) return raw;
  try {
    const stream = new Blob([raw]).stream().pipeThrough(new DecompressionStream('gzip'));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  } catch (error) {
    throw new Error(`E_GZIP: ${name} starts with the gzip magic but cannot be gunzipped (${(error as Error).message})`);
  }
}

export interface PrivateData extends LabeledDataset {
  /** How the data was read, for the page to show. */
  description: string;
  /** Class names of named labels (images in folders "cat", "dog", …), by class id. */
  classNames?: string[];
}

const IMAGE = /\.(png|jpe?g|gif|bmp|webp)$/i;

/**
 * One CSV file (a header, a label column, numeric features), or images whose label is the name
 * of their folder (a picked folder: digits/3/a.png) or the start of their file name (3_a.png,
 * 3-a.png). Images are scaled to side × side and turned to grey levels in [0, 1].
 */
export async function readPrivateData(
  files: readonly File[],
  options: { label: string; numClasses: number; imageSide: number },
): Promise<PrivateData> {
  if (files.length === 0) throw new Error('pick your private data: one CSV file, images with labels, or a folder of images');
  const images = files.filter((f) => IMAGE.test(f.name));
  if (images.length === 0) {
    if (files.length > 1) throw new Error(`pick one CSV file (got ${files.length} files), or images`);
    const file = files[0]!;
    const text = new TextDecoder('utf-8').decode(await fileBytes(file.name, file));
    const csv = parseCsv(text, file.name, { label: options.label, numClasses: options.numClasses });
    const data: PrivateData = {
      ...csv,
      description: `${file.name}: ${csv.y.length} rows, ${csv.featureColumns.length} feature columns, label column "${csv.labelColumn}"`,
    };
    if (csv.classNames !== undefined) data.classNames = csv.classNames;
    return data;
  }
  if (images.length !== files.length) {
    const other = files.find((f) => !IMAGE.test(f.name))!;
    throw new Error(`${other.name} is not an image (png, jpg, gif, bmp, webp); pick either images or one CSV file`);
  }
  return readImages(images, options.numClasses, options.imageSide);
}

function labelOf(file: File): string {
  // A picked folder gives each file its path: digits/3/a.png → "3".
  const parts = (file.webkitRelativePath || file.name).split('/');
  if (parts.length >= 2) return parts.at(-2)!;
  const match = /^([^_\-.]+)[_-]/.exec(file.name);
  if (match === null) throw new Error(`${file.name}: no label: put images in one folder per class, or name them LABEL_anything.png`);
  return match[1]!;
}

async function readImages(files: readonly File[], numClasses: number, side: number): Promise<PrivateData> {
  const labels = files.map(labelOf);
  // Integer labels are class ids; names become ids 0, 1, … in sorted order (as for CSV).
  const integer = labels.every((l) => /^\d+$/.test(l));
  const names = integer ? undefined : [...new Set(labels)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const ids = names === undefined ? labels.map(Number) : labels.map((l) => names.indexOf(l));
  const outside = ids.findIndex((c) => c >= numClasses);
  if (outside >= 0) {
    const what = names === undefined ? `label ${labels[outside]}` : `${names.length} classes (${names.join(', ')})`;
    throw new Error(`${files[outside]!.name}: ${what} does not fit the session's ${numClasses} classes`);
  }
  const canvas = new OffscreenCanvas(side, side);
  const context = canvas.getContext('2d', { willReadFrequently: true });
  if (context === null) throw new Error('this browser cannot decode images here (no 2D canvas)');
  const x = new Float32Array(files.length * side * side);
  for (let i = 0; i < files.length; i++) {
    let bitmap: ImageBitmap;
    try {
      bitmap = await createImageBitmap(files[i]!);
    } catch {
      throw new Error(`${files[i]!.name}: the browser cannot decode this image`);
    }
    context.clearRect(0, 0, side, side);
    context.drawImage(bitmap, 0, 0, side, side);
    bitmap.close();
    const { data } = context.getImageData(0, 0, side, side);
    // ITU-R BT.601 luma: the grey level a colour image is reduced to.
    for (let p = 0; p < side * side; p++) x[i * side * side + p] = (0.299 * data[4 * p]! + 0.587 * data[4 * p + 1]! + 0.114 * data[4 * p + 2]!) / 255;
  }
  const data: PrivateData = {
    x,
    y: Int32Array.from(ids),
    sampleShape: [side, side, 1],
    numClasses,
    description: `${files.length} images scaled to ${side}×${side} grey levels, ${new Set(ids).size} classes`,
  };
  if (names !== undefined) data.classNames = names;
  return data;
}

/**
 * The reference set's features as one row per sample: an IDX file of u8 images (scaled to
 * [0, 1], as the Node client does) or of floats, or a CSV with the label column named on the page (its labels are dropped: a reference set is
 * read, never learned from its labels).
 */
export function readReference(bytes: Uint8Array, name: string, sampleSize: number, label: string): { features: Float32Array; samples: number } {
  let features: Float32Array;
  if (/\.csv(\.gz)?$/i.test(name)) {
    features = parseCsv(new TextDecoder('utf-8').decode(bytes), name, { label }).x;
  } else {
    const idx = parseIdx(bytes, name);
    const scale = idx.dtype === 'u8' ? 1 / 255 : 1;
    features = Float32Array.from(idx.data as ArrayLike<number>, (v) => v * scale);
  }
  if (features.length % sampleSize !== 0) {
    throw new Error(`the reference set ${name} holds ${features.length} values: not a whole number of samples of ${sampleSize} features (your data's)`);
  }
  return { features, samples: features.length / sampleSize };
}
