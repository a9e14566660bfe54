/**
 * The browser participant keeps its student: after the session, "Download my student" hands
 * over a zip of the folder `codistill client --save` writes; unzipped, plain tfjs loads it and
 * codistill's reader accepts it with its card. Headless Chromium, pages built by vite.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../client/backend.js';
import { subset } from '../../client/data/dataset.js';
import { loadMnist, splitDataset } from '../../client/data/mnist.js';
import { loadStudent, type ModelCard } from '../../client/student-io/index.js';
import { Coordinator } from '../../server/coordinator.js';
import { buildPages, joinFromPage, launchChromium, pageOutcome, screenshot, writeDigitsCsv } from './helpers.js';

const TOKEN = 'browser-student-token-0123456789';

describe('the browser participant page offers its student', () => {
  let coordinator: Coordinator;
  let browser: Awaited<ReturnType<typeof launchChromium>>;
  const dir = mkdtempSync(join(tmpdir(), 'codistill-browser-student-'));

  beforeAll(async () => {
    const build = await buildPages();
    await selectBackend('wasm');
    coordinator = await Coordinator.start({ web: { root: build.out } });
    browser = await launchChromium();
  }, 180_000);
  afterAll(async () => {
    await browser?.close();
    await coordinator?.close();
  });

  it('downloads a zip of model.json, weights, card.json and README.md that plain tfjs loads', { timeout: 300_000 }, async () => {
    const split = splitDataset(loadMnist(), { test: 0, reference: 0 }, 4);
    const mine = subset(split.pool, Array.from({ length: 600 }, (_, i) => i));
    writeDigitsCsv(join(dir, 'mine.csv'), mine.x, mine.y);
    coordinator.createSession({
      id: 'web-keep', algorithm: 'local', rounds: 2, minParticipants: 1, numClasses: 10, referenceSize: 0, referencePerRound: 0, temperature: 1, alpha: 1,
      uploadDtype: 'float32', roundTimeoutMs: 120_000, trainTimeoutMs: 120_000, onRoundFailure: 'stop', seed: 4, maxMessageBytes: 1 << 20,
      participants: [{ id: 'web-site', token: TOKEN }],
    });
    const { page, log: record } = await joinFromPage(browser.context, coordinator.url, { session: 'web-keep', token: TOKEN, data: join(dir, 'mine.csv') });
    try {
      expect(await pageOutcome(page, 240_000)).toBe('ended');
    } catch (error) {
      console.log([...record.lines, ...record.errors].join('\n'));
      throw error;
    }
    expect(await page.isVisible('#download')).toBe(true);
    await screenshot(page, 'participant-download-student');
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
    expect(download.suggestedFilename()).toBe('student-web-keep-web-site.zip');
    const zip = join(dir, 'student.zip');
    await download.saveAs(zip);
    execFileSync('unzip', ['-q', zip, '-d', dir]);
    const folder = join(dir, 'student-web-keep-web-site');

    const json = JSON.parse(readFileSync(join(folder, 'model.json'), 'utf8')) as tf.io.ModelJSON;
    const model = await tf.loadLayersModel(tf.io.fromMemory({
      modelTopology: json.modelTopology,
      weightSpecs: json.weightsManifest.flatMap((g) => g.weights),
      weightData: new Uint8Array(Buffer.concat(json.weightsManifest.flatMap((g) => g.paths.map((p) => readFileSync(join(folder, p)))))).buffer,
    }));
    expect(model.outputs[0]!.shape).toEqual([null, 10]);
    model.dispose();
    const loaded = await loadStudent(folder);
    loaded.model.dispose();
    const card = JSON.parse(readFileSync(join(folder, 'card.json'), 'utf8')) as ModelCard;
    expect(card.training).toMatchObject({ session: 'web-keep', participant: 'web-site', algorithm: 'local', rounds: 2, trainSamples: 540 });
    expect(card.metrics.validation?.samples).toBe(60);
    expect(card.metrics.validation?.accuracy).toBeGreaterThan(0.5);
    expect(card.provenance.runtime).toMatch(/^browser: /);
    expect(card.input.preprocessing.u8Divisor).toBe(1);
    expect(readFileSync(join(folder, 'README.md'), 'utf8')).toContain('# codistill student web-site (session web-keep)');
  });
});
