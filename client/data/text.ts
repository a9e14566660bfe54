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
import { encodeText } from '../lm/tokenizer.js';
import { SeededRandom } from './random.js';
import { TextDataError } from './text-sequences.js';

// The browser-safe half (sequences for teacher forcing, no file access) lives in text-sequences.ts.
export { bytesToSequences, selectSequences, TextDataError, toSequences, type TokenSequences } from './text-sequences.js';

export interface TextDomain {
  name: string;
  documents: string[];
  /** Where the documents came from, for the card and the logs. */
  source: string;
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

export function readUtf8(path: string): string {
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
