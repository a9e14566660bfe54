/**
 * Real text for language-model tests that need no Debian package: cookies of fortunes-min (en)
 * and fortunes-de, as a site's `--text` file (documents separated by blank lines) or in the
 * fortune files' own layout under a root that `data: { source: text, root }` reads.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const EN = [
  'A day for firm decisions!!!!!  Or is it?',
  'A few hours grace before the madness begins again.',
  'A gift of a flower will soon be made to you.',
  'A long-forgotten loved one will appear soon.  Buy the negatives at any price.',
  'A fool and his money are soon parted.',
  'A journey of a thousand miles begins with a single step.',
];
export const DE = [
  'Ein Mathematikprofessor trägt sein Fahrrad über den Universitätsplatz.',
  'Ein Bekannter spricht ihn an, ob denn sein Fahrrad kaputt sei.',
  'Darauf schaut der Professor verdutzt auf das Rad in seinen Händen.',
  'Ein Mathematikprofessor trifft auf dem Uniplatz einen Kollegen.',
  'Anschließend fragt er: "Können Sie mir vielleicht sagen, aus welcher Richtung ich vorhin kam?"',
  'Aha, dann war ich also noch nicht essen gewesen.',
];

/** A root with the English and German fortune files (fortunes, de/mathematiker). */
export function fortunesRoot(): string {
  const file = (cookies: string[]) => cookies.map((c) => `${c}\n%\n`).join('');
  const root = mkdtempSync(join(tmpdir(), 'codistill-fortunes-'));
  writeFileSync(join(root, 'fortunes'), file(EN));
  mkdirSync(join(root, 'de'));
  writeFileSync(join(root, 'de', 'mathematiker'), file(DE));
  return root;
}
