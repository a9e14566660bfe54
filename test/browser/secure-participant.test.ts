/**
 * Secure aggregation in a real browser: the browser participant (headless Chromium, the pages
 * vite builds, WebCrypto's X25519, HKDF, AES-CTR and AES-GCM) takes part in a secure DML round
 * beside a Node participant; both learn from the sum, the coordinator never sees either's vector.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../client/backend.js';
import { subset } from '../../client/data/dataset.js';
import { loadMnist, splitDataset } from '../../client/data/mnist.js';
import { createModel } from '../../client/models.js';
import { runParticipant } from '../../client/participant.js';
import { Student } from '../../client/student.js';
import { Coordinator } from '../../server/coordinator.js';
import { buildPages, joinFromPage, launchChromium, pageOutcome, servedReference, writeDigitFolder } from './helpers.js';

const REFERENCE = 100;

describe('a browser participant under secure aggregation', () => {
  let coordinator: Coordinator;
  let browser: { context: BrowserContext; close: () => Promise<void> };
  let dir: string;
  const split = splitDataset(loadMnist(), { test: 100, reference: REFERENCE }, 13);
  let served: Float32Array;

  beforeAll(async () => {
    const build = await buildPages();
    dir = mkdtempSync(join(tmpdir(), 'codistill-secure-browser-'));
    served = servedReference(join(dir, 'reference-idx3-ubyte'), split.reference.x);
    await selectBackend('wasm');
    coordinator = await Coordinator.start({ web: { root: build.out, references: { 'web-secure': join(dir, 'reference-idx3-ubyte') } } });
    browser = await launchChromium();
  }, 180_000);
  afterAll(async () => {
    await browser?.close();
    await coordinator?.close();
  });

  it('runs the secure steps in the page and learns from the sum', { timeout: 200_000 }, async () => {
    const session = coordinator.createSession({
      id: 'web-secure', algorithm: 'dml', rounds: 2, minParticipants: 2, numClasses: 10, referenceSize: REFERENCE,
      referencePerRound: REFERENCE, temperature: 3, alpha: 0.5, uploadDtype: 'float32', roundTimeoutMs: 120_000,
      trainTimeoutMs: 120_000, onRoundFailure: 'stop', seed: 5, maxMessageBytes: 1 << 20, secureAggregation: { threshold: 2 },
      participants: [{ id: 'browser', token: 'browser-secure-token-0123456789' }, { id: 'node', token: 'node-secure-token-0123456789ab' }],
    });
    const folder = join(dir, 'digits');
    writeDigitFolder(folder, subset(split.pool, Array.from({ length: 200 }, (_, i) => 3000 + i)));
    const { page, log } = await joinFromPage(browser.context, coordinator.url, { session: 'web-secure', token: 'browser-secure-token-0123456789', epochs: 1, dataFolder: folder });
    const student = new Student(createModel({ name: 'mlp', inputShape: [28, 28, 1], numClasses: 10, seed: 9 }), { sampleShape: [28, 28, 1], numClasses: 10, learningRate: 1e-3, seed: 9 });
    const summary = await runParticipant({
      url: coordinator.url, session: 'web-secure', token: 'node-secure-token-0123456789ab', student, epochs: 1, batchSize: 32,
      data: { train: subset(split.pool, Array.from({ length: 300 }, (_, i) => 4000 + i)), reference: served },
    }).finally(() => student.dispose());
    expect(await pageOutcome(page), `${await page.textContent('#error') ?? ''}\n${log.lines.join('\n')}`).toBe('ended');
    expect(log.errors).toEqual([]);
    expect(session.history.map((r) => [r.failure, r.contributors.sort()])).toEqual([[undefined, ['browser', 'node']], [undefined, ['browser', 'node']]]);
    expect(Object.keys(session.history[1]!.reports).sort()).toEqual(['browser', 'node']);
    // The Node participant's targets came from the sum, which held the browser's predictions.
    expect(summary.rounds.map((r) => r.receivedTarget)).toEqual([true, true]);
    await page.close();
  });
});
