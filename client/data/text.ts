/**
 * Text for language models: documents grouped in domains (a language, a genre, a site's own
 * files), split per domain into training and held-out documents by a seeded shuffle, and cut
 * into fixed-length token sequences with a mask over padding.
 *
 * Sources: Debian's fortune packages, one domain per language (`fortunes-min` English,
 * `fortunes-de`, `fortunes-it`, `fortunes-es`; text no one here wrote, GPL-2+ / public domain,
 * installed under /usr/share/games/fortunes by `apt-get install`), and plain UTF-8 files (one
 * domain per file, documents separated by blank lines).
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { BOS, encodeText } from '../lm/tokenizer.js';
import { SeededRandom } from './random.js';

export interface TextDomain {
  name: string;
  documents: string[];
  /** Where the documents came from, for the card and the logs. */
  source: string;
}

export class TextDataError extends Error {
  override readonly name = 'TextDataError';
  constructor(
    readonly code: 'E_DATA' | 'E_ENCODING',
    message: string,
  ) {
    super(`${code}: ${message}`);
  }
}

export const FORTUNES_ROOT = '/usr/share/games/fortunes';

/** Each language's files under the fortunes root and the Debian package that installs them. */
export const FORTUNE_DOMAINS: Readonly<Record<string, { package: string; files: (root: string) => string[] }>> = {
  en: { package: 'fortunes-min', files: (root) => ['fortunes', 'literature', 'riddles'].map((f) => join(root, f)) },
  de: { package: 'fortunes-de', files: (root) => listFortuneFiles(join(root, 'de')) },
  it: { package: 'fortunes-it', files: (root) => listFortuneFiles(join(root, 'it')) },
  es: { package: 'fortunes-es', files: (root) => listFortuneFiles(join(root, 'es')) },
};

/** The fortune files of a language folder: not the `.dat` indexes, not the `.u8` links to the same files, not the offensive `off/` section. */
function listFortuneFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => !f.endsWith('.dat') && !f.endsWith('.u8') && !f.endsWith('-pre') && f !== 'off')
    .map((f) => join(dir, f))
    .filter((p) => statSync(p).isFile())
    .sort();
}

function readUtf8(path: string): string {
  const bytes = readFileSync(path);
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new TextDataError('E_ENCODING', `${path} is not valid UTF-8; convert it first (e.g. iconv -f latin1 -t utf-8)`);
  }
}

/** A fortune file's cookies: the text between lines holding a single `%`. */
export function parseFortunes(text: string): string[] {
  return text
    .split(/\r?\n%\r?\n/)
    .map((s) => s.replace(/^%\r?\n/, '').replace(/\r?\n%\s*$/, '').trim())
    .filter((s) => s.length > 0);
}

/** The fortune domains asked for (default: every language installed), with a clear error naming the package of one that is missing. */
export function loadFortuneDomains(languages: readonly string[] = Object.keys(FORTUNE_DOMAINS), root = FORTUNES_ROOT): TextDomain[] {
  return languages.map((language) => {
    const entry = Object.hasOwn(FORTUNE_DOMAINS, language) ? FORTUNE_DOMAINS[language] : undefined;
    if (entry === undefined) throw new TextDataError('E_DATA', `no fortune domain "${language}"; known: ${Object.keys(FORTUNE_DOMAINS).join(', ')}`);
    const files = entry.files(root).filter((f) => existsSync(f));
    if (files.length === 0) throw new TextDataError('E_DATA', `no fortunes for "${language}" under ${root}: install them with apt-get install ${entry.package}`);
    return { name: language, documents: files.flatMap((f) => parseFortunes(readUtf8(f))), source: `debian:${entry.package}` };
  });
}

/** A user's own text: one domain per UTF-8 file (named after it), documents separated by blank lines. */
export function loadTextFiles(paths: readonly string[]): TextDomain[] {
  return paths.map((path) => {
    const documents = readUtf8(path).split(/\r?\n\s*\r?\n/).map((d) => d.trim()).filter((d) => d.length > 0);
    if (documents.length === 0) throw new TextDataError('E_DATA', `${path} holds no text`);
    return { name: basename(path).replace(/\.[^.]*$/, ''), documents, source: `file:${path}` };
  });
}

export interface DomainSplit {
  name: string;
  train: string[];
  heldOut: string[];
}

export interface TextSplits {
  domains: DomainSplit[];
  /** Every domain's held-out documents together, domain after domain. */
  mixedHeldOut: string[];
}

/**
 * Per domain, a seeded shuffle of the documents, then the first `heldOutFraction` held out (at
 * least one document each side). `maxBytesPerDomain` caps each domain's kept text (after the
 * shuffle), so that domains of unequal size can be made equal and runs kept short.
 */
export function splitDomains(domains: readonly TextDomain[], options: { heldOutFraction: number; seed: number; maxBytesPerDomain?: number }): TextSplits {
  if (!(options.heldOutFraction > 0 && options.heldOutFraction < 1)) throw new TextDataError('E_DATA', `heldOutFraction must be in (0, 1); got ${options.heldOutFraction}`);
  const splits = domains.map((domain, index): DomainSplit => {
    if (domain.documents.length < 2) throw new TextDataError('E_DATA', `domain "${domain.name}" has ${domain.documents.length} document(s); a split needs at least 2`);
    const random = new SeededRandom((options.seed + 0x9e3779b9 * (index + 1)) >>> 0);
    const docs = [...domain.documents];
    for (let i = docs.length - 1; i > 0; i--) {
      const j = random.int(i + 1);
      [docs[i], docs[j]] = [docs[j]!, docs[i]!];
    }
    let kept = docs;
    if (options.maxBytesPerDomain !== undefined) {
      let bytes = 0;
      let n = 0;
      while (n < docs.length && bytes < options.maxBytesPerDomain) bytes += encodeText(docs[n++]!).length;
      kept = docs.slice(0, Math.max(2, n));
    }
    const held = Math.min(kept.length - 1, Math.max(1, Math.round(kept.length * options.heldOutFraction)));
    return { name: domain.name, heldOut: kept.slice(0, held), train: kept.slice(held) };
  });
  return { domains: splits, mixedHeldOut: splits.flatMap((s) => s.heldOut) };
}

/** Token sequences [count, context], row-major, with a mask that is 0 on padding. */
export interface TokenSequences {
  count: number;
  context: number;
  /** What the model reads at each position: BOS or the previous byte. */
  inputs: Int32Array;
  /** What it must predict there: the next byte (0 on padding). */
  targets: Int32Array;
  mask: Float32Array;
  /** Bytes of text covered: the number of mask ones. */
  bytes: number;
}

/**
 * Documents as sequences for teacher forcing: each document's bytes are cut in chunks of
 * `context`; a chunk's inputs are BOS (first chunk) or the byte before it, then its own bytes
 * but the last; its targets are its bytes. Every byte of the text is a target exactly once, so
 * the masked mean cross-entropy over these sequences is the text's bits per byte (× 1/ln 2),
 * with at most `context` bytes of history.
 */
export function toSequences(documents: readonly string[], context: number): TokenSequences {
  return bytesToSequences(documents.map(encodeText), context);
}

/** toSequences for documents already in bytes (e.g. a teacher's samples, which need not be valid UTF-8). */
export function bytesToSequences(documents: readonly Uint8Array[], context: number): TokenSequences {
  if (!Number.isInteger(context) || context < 1) throw new TextDataError('E_DATA', `context must be a positive integer; got ${context}`);
  const chunks: Array<{ previous: number; bytes: Uint8Array }> = [];
  for (const bytes of documents) {
    for (let start = 0; start < bytes.length; start += context) {
      chunks.push({ previous: start === 0 ? BOS : bytes[start - 1]!, bytes: bytes.subarray(start, Math.min(bytes.length, start + context)) });
    }
  }
  const count = chunks.length;
  const inputs = new Int32Array(count * context);
  const targets = new Int32Array(count * context);
  const mask = new Float32Array(count * context);
  let total = 0;
  chunks.forEach((chunk, row) => {
    const base = row * context;
    inputs[base] = chunk.previous;
    for (let i = 0; i < chunk.bytes.length; i++) {
      if (i > 0) inputs[base + i] = chunk.bytes[i - 1]!;
      targets[base + i] = chunk.bytes[i]!;
      mask[base + i] = 1;
    }
    total += chunk.bytes.length;
  });
  return { count, context, inputs, targets, mask, bytes: total };
}

/** Rows `rows` of `s`, as a new TokenSequences (a batch). */
export function selectSequences(s: TokenSequences, rows: ArrayLike<number>): TokenSequences {
  const n = rows.length;
  const c = s.context;
  const inputs = new Int32Array(n * c);
  const targets = new Int32Array(n * c);
  const mask = new Float32Array(n * c);
  let bytes = 0;
  for (let i = 0; i < n; i++) {
    const r = rows[i]!;
    inputs.set(s.inputs.subarray(r * c, (r + 1) * c), i * c);
    targets.set(s.targets.subarray(r * c, (r + 1) * c), i * c);
    mask.set(s.mask.subarray(r * c, (r + 1) * c), i * c);
    for (let k = 0; k < c; k++) bytes += s.mask[r * c + k]!;
  }
  return { count: n, context: c, inputs, targets, mask, bytes };
}
