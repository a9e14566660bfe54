/**
 * End to end in a real browser: a coordinator on 127.0.0.1 serves the pages built by vite; a
 * browser participant in headless Chromium (tfjs wasm, socket.io-client, the same
 * runParticipant as Node) trains on an MNIST CSV the test writes and picks through the file
 * input, beside two Node participants; the dashboard, signed in as an admin, shows the rounds
 * as they happen. Screenshots go to results/browser-tests/.
 */
import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../client/backend.js';
import { subset, type LabeledDataset } from '../../client/data/dataset.js';
import { loadMnist, splitDataset } from '../../client/data/mnist.js';
import { createModel } from '../../client/models.js';
import { runParticipant, type ParticipantSummary } from '../../client/participant.js';
import { Student } from '../../client/student.js';
import { Coordinator } from '../../server/coordinator.js';
import type { SessionConfig } from '../../server/session.js';
import { buildPages, digitPng, joinFromPage, launchChromium, pageOutcome, screenshot, servedReference, watchPage, writeDigitFolder, writeDigitsCsv } from './helpers.js';

const ROUNDS = 4;
const REFERENCE = 300;
const ADMIN = { id: 'ada', token: 'admin-token-for-the-dashboard-0123', role: 'admin' as const };
const OBSERVER = { id: 'otto', token: 'observer-token-for-the-dashboard-01', role: 'observer' as const };
const TOKENS = { node0: 'node-0-token-0123456789abcdef', node1: 'node-1-token-0123456789abcdef', browser: 'browser-token-0123456789abcdef' };

/** Rows start..start+count of a dataset, as a copy. */
const rows = (d: LabeledDataset, start: number, count: number) => subset(d, Array.from({ length: count }, (_, i) => start + i));

describe('a browser participant and the dashboard, in headless Chromium', () => {
  let coordinator: Coordinator;
  let browser: { context: BrowserContext; close: () => Promise<void> };
  let dir: string;
  let buildMs = 0;
  let bundleKiB = 0;
  const split = splitDataset(loadMnist(), { test: 500, reference: REFERENCE }, 11);
  let served: Float32Array;

  beforeAll(async () => {
    const started = Date.now();
    const build = await buildPages();
    buildMs = Date.now() - started;
    bundleKiB = build.pages.find((p) => p.page === 'participant')!.scriptBytes / 1024;
    dir = mkdtempSync(join(tmpdir(), 'codistill-browser-'));
    // The operator serves the reference set from the coordinator, so the person need not pick it;
    // the Node participants read that same file, as a site does.
    served = servedReference(join(dir, 'reference-idx3-ubyte'), split.reference.x);
    await selectBackend('wasm');
    coordinator = await Coordinator.start({
      operators: [ADMIN, OBSERVER],
      web: { root: build.out, references: { 'web-e2e': join(dir, 'reference-idx3-ubyte'), 'web-images': join(dir, 'reference-idx3-ubyte') } },
    });
    browser = await launchChromium();
  }, 180_000);
  afterAll(async () => {
    await browser?.close();
    await coordinator?.close();
  });

  it('trains beside Node participants and improves its accuracy, while the dashboard shows each round', { timeout: 400_000 }, async () => {
    const csv = join(dir, 'my-digits.csv');
    const browserData = rows(split.pool, 0, 1000);
    writeDigitsCsv(csv, browserData.x, browserData.y);
    const config: SessionConfig = {
      id: 'web-e2e', algorithm: 'dml', rounds: ROUNDS, minParticipants: 3, minToStart: 3, numClasses: 10,
      referenceSize: REFERENCE, referencePerRound: REFERENCE, temperature: 3, alpha: 0.5, uploadDtype: 'float16',
      roundTimeoutMs: 120_000, trainTimeoutMs: 120_000, onRoundFailure: 'stop', seed: 11, maxMessageBytes: 1 << 20,
      participants: [{ id: 'node-0', token: TOKENS.node0 }, { id: 'node-1', token: TOKENS.node1 }, { id: 'browser', token: TOKENS.browser }],
    };
    const session = coordinator.createSession(config);
    const ended = new Promise<void>((resolve) => session.once('end', () => resolve()));

    // The dashboard first, signed in as the admin, to watch the session from before it starts.
    const dashboard = await browser.context.newPage();
    const dashboardLog = watchPage(dashboard, 'dashboard');
    await dashboard.goto(`${coordinator.url}/dashboard/`);
    await dashboard.fill('#token', ADMIN.token);
    await dashboard.click('#login button');
    const card = dashboard.locator('[data-session="web-e2e"]');
    await card.waitFor();
    expect(await dashboard.textContent('#who')).toMatch(/^ada \(admin\)/);
    // Every completed-round count the dashboard renders, with when it rendered it (same machine, same clock).
    await card.evaluate((el) => {
      const seen: Array<[number, number]> = [[Number((el as HTMLElement).dataset.completed), Date.now()]];
      (window as unknown as { seen: typeof seen }).seen = seen;
      new MutationObserver(() => {
        const completed = Number((el as HTMLElement).dataset.completed);
        if (seen.at(-1)![0] !== completed) seen.push([completed, Date.now()]);
      }).observe(el, { attributes: true, attributeFilter: ['data-completed'] });
    });

    // The person's page: session, token, their CSV through the file input; the reference set comes from the coordinator.
    const page = await browser.context.newPage();
    const pageLog = watchPage(page, 'participant');
    let framesSent = 0;
    page.on('websocket', (ws) => ws.on('framesent', (frame) => (framesSent += typeof frame.payload === 'string' ? Buffer.byteLength(frame.payload) : frame.payload.byteLength)));
    const requestBodies: string[] = [];
    page.on('request', (r) => {
      if (r.postData() !== null) requestBodies.push(r.url());
    });
    await page.goto(`${coordinator.url}/participant/`);
    await page.fill('#session', 'web-e2e');
    await page.fill('#token', TOKENS.browser);
    await page.setInputFiles('#data', csv);
    await page.fill('#epochs', '2');
    await page.click('#join');

    // Two Node participants on their own digits, the same runParticipant as the page's.
    const node = (k: number, token: string): Promise<ParticipantSummary> => {
      const student = new Student(createModel({ name: 'mlp', inputShape: [28, 28, 1], numClasses: 10, seed: 20 + k }), { sampleShape: [28, 28, 1], numClasses: 10, learningRate: 1e-3, seed: k });
      return runParticipant({
        url: coordinator.url, session: 'web-e2e', token, student, epochs: 2, batchSize: 32,
        data: { train: rows(split.pool, 1000 + 800 * k, 800), reference: served }, evaluation: split.test,
      }).finally(() => student.dispose());
    };
    const nodes = Promise.all([node(0, TOKENS.node0), node(1, TOKENS.node1)]);

    // Screenshots of both pages mid-run, once a round is done.
    let running = true;
    const watching = (async () => {
      while (running) {
        if (session.history.length >= 1) {
          await screenshot(dashboard, 'dashboard-during-the-session');
          await screenshot(page, 'participant-during-the-session');
          return;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    })();

    const started = Date.now();
    try {
      await Promise.all([ended, nodes]);
      await pageOutcome(page);
    } catch (error) {
      console.log([...pageLog.lines, ...pageLog.errors, ...dashboardLog.errors].join('\n'));
      await screenshot(page, 'participant-failure');
      throw error;
    } finally {
      running = false;
      await watching;
    }
    const sessionMs = Date.now() - started;
    await card.locator(`tr[data-round="${ROUNDS}"]`).waitFor();
    await screenshot(page, 'participant-ended');
    await screenshot(dashboard, 'dashboard-ended');

    expect(await page.evaluate(() => document.body.dataset.state), await page.textContent('#error') ?? '').toBe('ended');
    expect(await page.textContent('#status')).toBe(`Session ended: completed ${ROUNDS} rounds.`);
    expect(await page.evaluate(() => document.body.dataset.backend)).toBe('wasm');
    // The page's student trained with the fused Adam kernel, bound to the browser's wasm memory.
    expect(await page.evaluate(() => document.body.dataset.fusedAdam)).toBe('true');
    expect(pageLog.errors).toEqual([]);
    expect(dashboardLog.errors).toEqual([]);

    // The page's rounds, as the person sees them.
    const pageRounds = await page.$$eval('#rounds tbody tr', (trs) => trs.map((tr) => ({
      round: Number((tr as HTMLElement).dataset.round),
      accuracy: Number((tr as HTMLElement).dataset.accuracy),
      bytesUp: Number((tr as HTMLElement).dataset.bytesUp),
      tensors: Number((tr as HTMLElement).dataset.tensors),
      learned: tr.children[1]?.textContent,
    })));
    expect(pageRounds.map((r) => r.round)).toEqual([1, 2, 3, 4]);
    expect(pageRounds.every((r) => r.learned === 'yes')).toBe(true);
    // tfjs in the page disposes what each round makes: the live tensor count does not grow.
    expect(new Set(pageRounds.map((r) => r.tensors)).size).toBe(1);
    const first = pageRounds[0]!.accuracy;
    const last = pageRounds.at(-1)!.accuracy;
    // Real learning: better after the last round than after the first, and far above chance (10%).
    expect(last).toBeGreaterThan(first);
    expect(last).toBeGreaterThan(0.6);
    // The coordinator received the same accuracies the page shows.
    expect(session.history.map((r) => r.reports.browser?.accuracy)).toEqual(pageRounds.map((r) => r.accuracy));
    expect(session.history.every((r) => r.contributors.includes('browser'))).toBe(true);
    expect(await page.textContent('#shares')).toMatch(/^As browser in web-e2e \(dml, 4 rounds\), this page shares its model's soft predictions, softmax\(z\/T\) at T = 3, on the reference samples each round names \(of the session's 300, as float16\) — never your files/);

    // What left the page: its envelopes (plus socket.io framing and pings), nowhere near its data.
    const reportedUp = pageRounds.reduce((a, r) => a + r.bytesUp, 0);
    expect(framesSent).toBeGreaterThanOrEqual(reportedUp);
    expect(framesSent).toBeLessThan(reportedUp + 16 * 1024);
    expect(framesSent).toBeLessThan(statSync(csv).size / 20);
    expect(requestBodies).toEqual([]);

    // The dashboard showed every round as it completed (within a second and a half of the
    // coordinator closing it), and ends where the coordinator does.
    const seen = await dashboard.evaluate(() => (window as unknown as { seen: Array<[number, number]> }).seen);
    const shown = seen.map(([completed]) => completed);
    expect(shown).toEqual([0, 1, 2, 3, 4]);
    for (const record of session.history) {
      const at = seen.find(([completed]) => completed === record.round)![1];
      expect(at - record.closedAt).toBeGreaterThanOrEqual(0);
      expect(at - record.closedAt).toBeLessThan(1500);
    }
    expect(Number(await card.getAttribute('data-completed'))).toBe(session.history.length);
    expect(await card.getAttribute('data-phase')).toBe('ended');
    expect(await card.locator('table.rounds tr[data-round]').count()).toBe(session.history.length);
    const dashboardMeans = await card.locator('table.rounds tr[data-round]').evaluateAll((trs) => trs.map((tr) => Number((tr as HTMLElement).dataset.accuracy)));
    const coordinatorMeans = session.history.map((r) => Object.values(r.reports).reduce((a, m) => a + m.accuracy!, 0) / Object.keys(r.reports).length);
    dashboardMeans.forEach((m, i) => expect(m).toBeCloseTo(coordinatorMeans[i]!, 10));
    expect(await card.locator('tr[data-participant]').evaluateAll((trs) => trs.map((tr) => (tr as HTMLElement).dataset.state))).toEqual(['finished', 'finished', 'finished']);
    expect(await card.locator('.plot.accuracy polyline').count()).toBe(4); // three participants and the mean
    expect(await card.locator('table.config').textContent()).toContain('participantsnode-0, node-1, browser');
    expect(await card.locator('table.config').textContent()).not.toContain(TOKENS.browser);

    console.log(`browser e2e: pages built in ${(buildMs / 1000).toFixed(1)} s (participant JavaScript ${bundleKiB.toFixed(0)} KiB); ` +
      `${ROUNDS} rounds in ${(sessionMs / 1000).toFixed(1)} s; browser accuracy ${(100 * first).toFixed(1)}% → ${(100 * last).toFixed(1)}%; ` +
      `dashboard showed completed counts ${shown.join(' → ')}; the page sent ${(framesSent / 1024).toFixed(1)} KiB (its CSV is ${(statSync(csv).size / 1024).toFixed(0)} KiB)`);
    await Promise.all([page.close(), dashboard.close()]);
  });

  it('trains on a picked folder of images, one subfolder per class', { timeout: 200_000 }, async () => {
    const session = coordinator.createSession({
      id: 'web-images', algorithm: 'dml', rounds: 2, minParticipants: 2, numClasses: 10, referenceSize: REFERENCE,
      referencePerRound: REFERENCE, temperature: 3, alpha: 0.5, uploadDtype: 'float32', roundTimeoutMs: 120_000,
      trainTimeoutMs: 120_000, onRoundFailure: 'stop', seed: 5, maxMessageBytes: 1 << 20,
      participants: [{ id: 'images', token: 'images-token-0123456789abc' }, { id: 'peer', token: 'peer-token-0123456789abcde' }],
    });
    // 400 real digits as PNG files in digits/LABEL/, as a person might have them.
    const folder = join(dir, 'digits');
    writeDigitFolder(folder, rows(split.pool, 3000, 400));
    const { page, log } = await joinFromPage(browser.context, coordinator.url, { session: 'web-images', token: 'images-token-0123456789abc', model: 'cnn', epochs: 3, dataFolder: folder });
    const student = new Student(createModel({ name: 'mlp', inputShape: [28, 28, 1], numClasses: 10, seed: 9 }), { sampleShape: [28, 28, 1], numClasses: 10, learningRate: 1e-3, seed: 9 });
    await runParticipant({
      url: coordinator.url, session: 'web-images', token: 'peer-token-0123456789abcde', student, epochs: 1, batchSize: 32,
      data: { train: rows(split.pool, 4000, 600), reference: served },
    }).finally(() => student.dispose());
    const outcome = await pageOutcome(page);
    await screenshot(page, 'participant-images');
    expect(outcome, await page.textContent('#error') ?? '').toBe('ended');
    expect(await page.textContent('#log')).toContain('private data: 400 images scaled to 28×28 grey levels, 10 classes');
    const accuracies = await page.$$eval('#rounds tbody tr', (trs) => trs.map((tr) => Number((tr as HTMLElement).dataset.accuracy)));
    expect(accuracies).toHaveLength(2);
    // Images decoded with their right labels: the CNN (with codistill's wasm kernels for its
    // gradients) on 360 of them is far above chance (10%), and better after round 2 than round 1.
    expect(accuracies[1]).toBeGreaterThan(0.5);
    expect(accuracies[1]).toBeGreaterThan(accuracies[0]!);
    expect(session.history.map((r) => r.contributors.sort())).toEqual([['images', 'peer'], ['images', 'peer']]);
    expect(log.errors).toEqual([]);
    await page.close();
  });

  it('tells the person clearly what is wrong: a rejected token, a CSV row with the wrong number of fields', async () => {
    coordinator.createSession({
      id: 'web-errors', algorithm: 'dml', rounds: 1, minParticipants: 1, numClasses: 10, referenceSize: REFERENCE,
      referencePerRound: REFERENCE, temperature: 3, alpha: 0.5, uploadDtype: 'float32', roundTimeoutMs: 60_000,
      trainTimeoutMs: 60_000, onRoundFailure: 'stop', seed: 1, maxMessageBytes: 1 << 20,
      participants: [{ id: 'someone', token: 'the-right-token-0123456789' }],
    });
    const good = join(dir, 'good.csv');
    const sample = rows(split.pool, 0, 30);
    writeDigitsCsv(good, sample.x, sample.y);
    const page = await browser.context.newPage();
    const log = watchPage(page, 'participant');
    await page.goto(`${coordinator.url}/participant/`);

    await page.fill('#session', 'web-errors');
    await page.fill('#token', 'a-wrong-token-0123456789');
    await page.setInputFiles('#data', good);
    await page.click('#join');
    await page.locator('#error.shown').waitFor();
    expect(await page.textContent('#error')).toMatch(/^E_AUTH: the coordinator refused this token \(the reference set is for the session's participants: send a participant token\); check the token the operator gave you$/);
    await screenshot(page, 'participant-wrong-token');

    // A picked reference file skips the coordinator's: the wrong token is then refused by the join itself.
    const reference = join(dir, 'reference-idx3-ubyte');
    await page.setInputFiles('#reference', reference);
    await page.click('#join');
    await page.waitForFunction(() => /the token is not valid/.test(document.getElementById('error')?.textContent ?? ''));
    expect(await page.textContent('#error')).toBe('E_AUTH: the token is not valid for any running session');

    // A row with one field too few: the message names the file, the line and both counts.
    const bad = join(dir, 'bad.csv');
    writeDigitsCsv(bad, sample.x, sample.y);
    const { readFileSync } = await import('node:fs');
    const lines = readFileSync(bad, 'utf8').split('\n');
    lines[3] = lines[3]!.split(',').slice(0, -1).join(',');
    writeFileSync(bad, lines.join('\n'));
    await page.fill('#token', 'the-right-token-0123456789');
    await page.setInputFiles('#data', bad);
    await page.click('#join');
    await page.waitForFunction(() => /E_CSV_FIELDS/.test(document.getElementById('error')?.textContent ?? ''));
    expect(await page.textContent('#error')).toBe('E_CSV_FIELDS: bad.csv line 4: 784 fields; the header (line 1) has 785');
    await screenshot(page, 'participant-bad-csv');

    // Images picked one by one are labelled by their names; one without a label is named.
    const png = digitPng(sample.x.subarray(0, 784));
    await page.setInputFiles('#data', [{ name: '7_a.png', mimeType: 'image/png', buffer: png }, { name: 'holiday.png', mimeType: 'image/png', buffer: png }]);
    await page.click('#join');
    await page.waitForFunction(() => /holiday/.test(document.getElementById('error')?.textContent ?? ''));
    expect(await page.textContent('#error')).toBe('holiday.png: no label: put images in one folder per class, or name them LABEL_anything.png');
    expect(log.errors).toEqual([]);
    await page.close();
  });

  it('gives observers a read-only dashboard, and refuses tokens that are not operators\'', async () => {
    const page = await browser.context.newPage();
    await page.goto(`${coordinator.url}/dashboard/`);
    await page.fill('#token', TOKENS.browser);
    await page.click('#login button');
    await page.locator('#error.shown').waitFor();
    expect(await page.textContent('#error')).toMatch(/^E_AUTH: the token is not an operator token of this coordinator/);
    await screenshot(page, 'dashboard-participant-token-refused');

    await page.fill('#token', OBSERVER.token);
    await page.click('#login button');
    await page.locator('[data-session="web-errors"]').waitFor();
    expect(await page.textContent('#who')).toMatch(/^otto \(observer\)/);
    // Every control is disabled for an observer; the coordinator would refuse them anyway (test/server/operator.test.ts).
    const buttons = page.locator('[data-session="web-errors"] button[data-action]');
    expect(await buttons.count()).toBe(4);
    expect(await buttons.evaluateAll((bs) => bs.every((b) => (b as HTMLButtonElement).disabled))).toBe(true);
    await screenshot(page, 'dashboard-observer');
    await page.close();
  });

  it('lets an admin pause, resume and stop a session from the dashboard', { timeout: 120_000 }, async () => {
    const session = coordinator.createSession({
      id: 'web-control', algorithm: 'local', rounds: 50, minParticipants: 1, minToStart: 2, numClasses: 10, referenceSize: 0,
      referencePerRound: 0, temperature: 1, alpha: 1, uploadDtype: 'float32', roundTimeoutMs: 60_000,
      trainTimeoutMs: 60_000, onRoundFailure: 'stop', seed: 1, maxMessageBytes: 1 << 20,
      participants: [{ id: 'n0', token: 'control-n0-token-0123456789' }, { id: 'n1', token: 'control-n1-token-0123456789' }],
    });
    const page = await browser.context.newPage();
    await page.goto(`${coordinator.url}/dashboard/`);
    await page.fill('#token', ADMIN.token);
    await page.click('#login button');
    const card = page.locator('[data-session="web-control"]');
    await card.waitFor();

    const student = new Student(createModel({ name: 'mlp', inputShape: [28, 28, 1], numClasses: 10, seed: 3 }), { sampleShape: [28, 28, 1], numClasses: 10, learningRate: 1e-3, seed: 3 });
    const participant = runParticipant({
      url: coordinator.url, session: 'web-control', token: 'control-n0-token-0123456789', student, epochs: 1, batchSize: 32,
      data: { train: rows(split.pool, 0, 200) }, evaluation: rows(split.test, 0, 100),
    });
    // minToStart is 2 and only one participant comes: the admin starts the session.
    await page.waitForFunction(() => document.querySelector('[data-session="web-control"] tr[data-participant="n0"]')?.getAttribute('data-state') === 'active');
    await card.locator('button[data-action="start"]').click();
    await page.waitForFunction(() => Number(document.querySelector<HTMLElement>('[data-session="web-control"]')?.dataset.completed) >= 1);
    await card.locator('button[data-action="pause"]').click();
    await page.waitForFunction(() => {
      const el = document.querySelector<HTMLElement>('[data-session="web-control"]');
      return el?.dataset.paused === 'true' && el.dataset.phase === 'waiting';
    });
    const completed = session.history.length;
    await new Promise((r) => setTimeout(r, 1500));
    expect(session.history).toHaveLength(completed); // paused: no round opened
    await screenshot(page, 'dashboard-admin-paused');
    expect(await card.locator('button[data-action="resume"]').isEnabled()).toBe(true);
    await card.locator('button[data-action="resume"]').click();
    await page.waitForFunction((n) => Number(document.querySelector<HTMLElement>('[data-session="web-control"]')?.dataset.completed) > n, completed);
    await card.locator('button[data-action="stop"]').click();
    const summary = await participant.finally(() => student.dispose());
    expect(summary.endReason).toBe('stopped by admin ada');
    await page.waitForFunction(() => document.querySelector<HTMLElement>('[data-session="web-control"]')?.dataset.phase === 'ended');
    expect(await card.locator('h2').textContent()).toContain('stopped by admin ada');
    expect(await card.locator('.result').textContent()).toBe('stop: done');
    expect(session.history.length).toBeGreaterThan(completed);
    expect(session.history.length).toBeLessThan(50);
    await screenshot(page, 'dashboard-admin-stopped');
    await page.close();
  });
});
