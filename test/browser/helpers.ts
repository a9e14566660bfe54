/**
 * What the browser tests share: the pages' build, a headless Chromium driven by playwright-core,
 * MNIST digits written as the files a person would pick, and a folder for screenshots.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import type { LabeledDataset } from '../../client/data/dataset.js';
import { readIdxFile } from '../../client/data/idx.js';
import { buildWeb, type WebBuild } from '../../simulations/build-web.js';
import { writeIdxImages } from '../../simulations/demo-sites.js';

export const CHROMIUM = '/usr/bin/chromium';
/** Screenshots go here (results/ is gitignored). */
export const SCREENSHOTS = join(import.meta.dirname, '../../results/browser-tests');

/** The pages as `npm test` will have them: built by vite into a folder of this test run's own. */
export async function buildPages(): Promise<WebBuild> {
  const out = mkdtempSync(join(tmpdir(), 'codistill-web-'));
  return buildWeb({ out, quiet: true });
}

/**
 * A fresh Chromium profile on a closed network: without the background-networking flags the
 * browser's own connections are refused and slow everything down.
 */
export async function launchChromium(): Promise<{ context: BrowserContext; close: () => Promise<void> }> {
  if (!existsSync(CHROMIUM)) throw new Error(`the browser tests need Chromium at ${CHROMIUM}: apt-get install -y --no-install-recommends chromium`);
  const profile = mkdtempSync(join(tmpdir(), 'codistill-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1360, height: 1000 },
  });
  return {
    context,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Records a page's console errors and uncaught exceptions, to print when a test fails. */
export function watchPage(page: Page, name: string): { errors: string[]; lines: string[] } {
  const record = { errors: [] as string[], lines: [] as string[] };
  page.on('console', (m) => record.lines.push(`[${name} ${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => record.errors.push(`[${name}] ${e.message}`));
  return record;
}

/** What a person types and picks on the participant page before pressing Join; unset fields keep the page's defaults. */
export interface ParticipantForm {
  session: string;
  token: string;
  epochs?: number;
  model?: string;
  /** A CSV file for #data. */
  data?: string;
  /** A folder of images, one subfolder per class, for #data-folder. */
  dataFolder?: string;
}

/** Opens the participant page in a new tab, fills its form and presses Join; the page's console is recorded. */
export async function joinFromPage(context: BrowserContext, url: string, form: ParticipantForm): Promise<{ page: Page; log: ReturnType<typeof watchPage> }> {
  const page = await context.newPage();
  const log = watchPage(page, 'participant');
  await page.goto(`${url}/participant/`);
  await page.fill('#session', form.session);
  await page.fill('#token', form.token);
  if (form.model !== undefined) await page.selectOption('#model', form.model);
  if (form.epochs !== undefined) await page.fill('#epochs', String(form.epochs));
  if (form.data !== undefined) await page.setInputFiles('#data', form.data);
  if (form.dataFolder !== undefined) await page.setInputFiles('#data-folder', form.dataFolder);
  await page.click('#join');
  return { page, log };
}

/** Waits until the participant page has ended or shown an error, and returns which. */
export async function pageOutcome(page: Page, timeout = 60_000): Promise<string | undefined> {
  await page.waitForFunction(() => document.body.dataset.state === 'ended' || document.body.dataset.state === 'error', null, { timeout });
  return page.evaluate(() => document.body.dataset.state);
}

/**
 * The reference set the coordinator serves to pages, written as an IDX images file at `path`, and
 * the values a Node participant reads from that same file: every participant must predict on the
 * same rows, and the coordinator checks their digests at the join (the mnist package's floats are
 * not the file's bytes ÷ 255).
 */
export function servedReference(path: string, x: Float32Array): Float32Array {
  writeIdxImages(path, x);
  return Float32Array.from(readIdxFile(path).data as ArrayLike<number>, (v) => v / 255);
}

/** Real digits as PNG files in folder/LABEL/i.png, as a person might have them. */
export function writeDigitFolder(folder: string, digits: LabeledDataset): void {
  digits.y.forEach((label, i) => {
    mkdirSync(join(folder, String(label)), { recursive: true });
    writeFileSync(join(folder, String(label), `${i}.png`), digitPng(digits.x.subarray(i * 784, (i + 1) * 784)));
  });
}

export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const path = join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/** A CSV a site could export, and an IDX images file: the same writers as the deployment tests. */
export { writeCsv as writeDigitsCsv, writeIdxImages } from '../../simulations/demo-sites.js';

/** CRC-32 (ISO 3309, the polynomial PNG uses), for the chunk trailers below. */
function crc32(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const b of bytes) {
    crc ^= b;
    for (let k = 0; k < 8; k++) crc = (crc >>> 1) ^ (0xedb88320 & -(crc & 1));
  }
  return (crc ^ 0xffffffff) >>> 0;
}

/**
 * A greyscale PNG (8-bit, no interlace) of one 28×28 digit, so that the page decodes a real image
 * file: signature, IHDR, one IDAT of zlib-deflated scanlines (filter 0 each), IEND (PNG spec, W3C 2003).
 */
export function digitPng(pixels: Float32Array, side = 28): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const out = Buffer.alloc(12 + data.length);
    out.writeUInt32BE(data.length, 0);
    body.copy(out, 4);
    out.writeUInt32BE(crc32(body), 8 + data.length);
    return out;
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(side, 0);
  header.writeUInt32BE(side, 4);
  header[8] = 8; // bit depth
  header[9] = 0; // colour type: greyscale
  const scanlines = Buffer.alloc(side * (side + 1));
  for (let r = 0; r < side; r++) for (let c = 0; c < side; c++) scanlines[r * (side + 1) + 1 + c] = Math.round(pixels[r * side + c]! * 255);
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', header), chunk('IDAT', deflateSync(scanlines)), chunk('IEND', Buffer.alloc(0))]);
}
