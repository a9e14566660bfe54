/**
 * An asynchronous run (co-distillation) outlives a dropped link. Two language-model sites reach a
 * real coordinator on 127.0.0.1 through a TCP relay; after a site's first checkpoint the relay
 * cuts every connection once. The sites reconnect, rejoin and go on pushing, pulling and reporting
 * until the last checkpoint. Before, a push or pull lost with the link ended that site's run, and a
 * rejoining site got no new go signal: the session waited for the training deadline.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../client/backend.js';
import { toSequences } from '../../client/data/text.js';
import { createLanguageModel } from '../../client/lm/model.js';
import { referenceWindows, textParticipantData, tokenizerIdentity, type TextSite } from '../../client/lm/site.js';
import { BYTE_TOKENIZER, BYTE_VOCAB } from '../../client/lm/tokenizer.js';
import { runParticipant } from '../../client/participant.js';
import { Coordinator } from '../../server/coordinator.js';
import type { SessionConfig } from '../../server/session-config.js';
import { DE, EN } from '../e2e/fortune-slices.js';

const POSITIONS = 16;
const REFERENCE = [EN[4]!, DE[3]!, EN[5]!, DE[5]!];

/** A TCP relay to `port` whose connections can all be cut at once (the coordinator sees them drop). */
async function relay(port: number): Promise<{ url: string; cut: () => number; close: () => Promise<void> }> {
  const open = new Set<Socket>();
  const server: Server = createServer((inbound) => {
    const outbound = createConnection({ host: '127.0.0.1', port });
    for (const s of [inbound, outbound]) {
      open.add(s);
      s.on('close', () => open.delete(s));
      s.on('error', () => {});
    }
    inbound.pipe(outbound).pipe(inbound);
    inbound.on('close', () => outbound.destroy());
    outbound.on('close', () => inbound.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('the relay has no port');
  return {
    url: `http://127.0.0.1:${address.port}`,
    cut: () => {
      const n = open.size;
      for (const s of open) s.destroy();
      return n;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

let coordinator: Coordinator;

beforeAll(async () => {
  await selectBackend('wasm');
  coordinator = await Coordinator.start();
});

afterAll(async () => {
  await coordinator.close();
});

describe('asynchronous runs across a dropped link', () => {
  it('co-distillation: every site completes every checkpoint after the links are cut mid-run', { timeout: 120_000 }, async () => {
    const reference = referenceWindows(REFERENCE, POSITIONS);
    const config: SessionConfig = {
      id: 'lm-async-links', algorithm: 'codistillation', rounds: 3, participants: ['en', 'de'].map((p) => ({ id: p, token: `secret-${p}-0123456789` })),
      minParticipants: 2, numClasses: BYTE_VOCAB, referenceSize: reference.count, referencePerRound: reference.count, temperature: 2, alpha: 0.5,
      uploadDtype: 'float32', roundTimeoutMs: 600_000, trainTimeoutMs: 600_000, onRoundFailure: 'stop', seed: 1, maxMessageBytes: 4 << 20,
      tokenizer: tokenizerIdentity(BYTE_TOKENIZER), positions: POSITIONS, async: { shards: 2, exchangeEvery: 2, burnInSteps: 0, stalenessMs: 600_000 },
    };
    const session = coordinator.createSession(config);
    const ended = new Promise<string>((resolve) => session.once('end', ({ reason }) => resolve(reason)));
    const link = await relay(Number(new URL(coordinator.url).port));
    let cut = 0;
    const logs: string[] = [];
    const sites = (['en', 'de'] as const).map((language, i): TextSite => ({
      model: createLanguageModel(`transformer:d=16,l=1,h=2,ctx=${POSITIONS}`, i + 1), tokenizer: BYTE_TOKENIZER,
      train: toSequences(language === 'en' ? EN.slice(0, 4) : DE.slice(0, 4), POSITIONS), reference, steps: 4, learningRate: 3e-3, seed: i + 1,
    }));
    try {
      const began = Date.now();
      const summaries = await Promise.all(sites.map((site, i) => runParticipant({
        url: link.url, session: config.id, token: `secret-${['en', 'de'][i]}-0123456789`, data: textParticipantData(site), epochs: 1, batchSize: 4,
        log: (line) => logs.push(`${['en', 'de'][i]}: ${line}`),
        // Once, after the first checkpoint report of either site: every connection through the relay drops.
        onRound: () => {
          if (cut === 0) cut = link.cut();
        },
      })));
      expect(cut).toBeGreaterThanOrEqual(4); // two sites, each link's two ends
      expect(logs.join('\n')).toMatch(/disconnected \(transport close\); reconnecting/);
      expect(logs.filter((l) => /joined lm-async-links as/.test(l)).length).toBeGreaterThanOrEqual(3); // a rejoin at least
      for (const summary of summaries) {
        expect(summary.endReason).toBe('completed 3 checkpoints');
        expect(summary.rounds.map((r) => r.round)).toEqual([1, 2, 3]);
        expect(summary.rounds.map((r) => r.train.steps)).toEqual([4, 4, 4]);
      }
      expect(await ended).toBe('completed 3 checkpoints');
      // The session ended by its checkpoints, not by the training deadline.
      expect(Date.now() - began).toBeLessThan(100_000);
      expect(session.history.map((r) => r.round)).toEqual([1, 2, 3]);
      // The last checkpoint heard from both sites.
      expect(Object.keys(session.history[2]!.reports).sort()).toEqual(['de', 'en']);
    } finally {
      for (const site of sites) site.model.dispose();
      await link.close();
    }
  });
});
