/**
 * The participant's link to the coordinator at its two fragile moments, with a real coordinator
 * on 127.0.0.1, real socket.io clients and real tfjs training:
 *  - the coordinator killed mid-round and started again on its journal within a second: a
 *    participant still training when its link comes back must rejoin before it sends anything
 *    (its report first got E_NOT_JOINED, and it exited);
 *  - the end of a session over TLS, where the coordinator closes right after its end message
 *    (as `codistill server` does): every participant must end cleanly, not retry for minutes.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../client/backend.js';
import { subset, type LabeledDataset } from '../../client/data/dataset.js';
import { loadMnist, splitDataset } from '../../client/data/mnist.js';
import { createModel } from '../../client/models.js';
import { runParticipant, type ParticipantOptions } from '../../client/participant.js';
import { Student, type TrainingSources, type TrainOptions, type TrainResult } from '../../client/student.js';
import { Coordinator } from '../../server/coordinator.js';
import type { SessionConfig } from '../../server/session.js';

const split = splitDataset(loadMnist(), { test: 100, reference: 100 }, 21);
const trainSets: LabeledDataset[] = [0, 1].map((k) => subset(split.pool, Array.from({ length: 128 }, (_, i) => k * 128 + i)));

const tokenOf = (config: SessionConfig, k: number) => `${config.id}-token-${k}-0123456789`;

function sessionConfig(id: string, rounds: number): SessionConfig {
  return {
    id, algorithm: 'dml', rounds, participants: [0, 1].map((k) => ({ id: `p${k}`, token: `${id}-token-${k}-0123456789` })), minParticipants: 2,
    numClasses: 10, referenceSize: 100, referencePerRound: 50, temperature: 3, alpha: 0.5, aggregator: 'mean', uploadDtype: 'float32',
    roundTimeoutMs: 30_000, trainTimeoutMs: 30_000, onRoundFailure: 'stop', seed: 2, maxMessageBytes: 1 << 20,
  };
}

/** A student whose training waits, once, until the test opens the gate: the coordinator can then be restarted mid-training. */
class GatedStudent extends Student {
  static waiting = 0;
  static open: () => void = () => {};
  static gate = new Promise<void>((resolve) => (GatedStudent.open = resolve));
  private passed = false;

  override async train(sources: TrainingSources, options: TrainOptions): Promise<TrainResult> {
    if (!this.passed) {
      this.passed = true;
      GatedStudent.waiting++;
      await GatedStudent.gate;
    }
    return super.train(sources, options);
  }
}

function participant(config: SessionConfig, k: number, url: string, student: Student, extra: Partial<ParticipantOptions> = {}): ParticipantOptions {
  return {
    url, session: config.id, token: tokenOf(config, k), student, data: { train: trainSets[k]!, reference: split.reference.x },
    evaluation: split.test, epochs: 1, batchSize: 32, reconnect: { attempts: 20, delayMs: 100, maxDelayMs: 200 }, ...extra,
  };
}

const newStudent = (k: number, Kind: typeof Student = Student) =>
  new Kind(createModel({ name: 'mlp', inputShape: [28, 28, 1], numClasses: 10, seed: 30 + k }), { sampleShape: [28, 28, 1], numClasses: 10, learningRate: 1e-3, seed: k });

const until = async (condition: () => boolean, what: string, ms = 20_000) => {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
};

describe('participant links', () => {
  beforeAll(async () => {
    await selectBackend();
  });

  it('rejoins first: the coordinator restarted on its journal while participants train; they rejoin, the round runs again, the session completes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'codistill-rejoin-'));
    const journal = join(dir, 'journal.db');
    const config = sessionConfig('rejoin-first', 2);
    const first = await Coordinator.start({ journal });
    first.createSession(config);
    const port = Number(new URL(first.url).port);
    const logs: string[][] = [[], []];
    const students = [0, 1].map((k) => newStudent(k, GatedStudent));
    const running = [0, 1].map((k) => runParticipant(participant(config, k, first.url, students[k]!, { log: (line) => logs[k]!.push(line) })));

    // Both hold round 1's target and train; the coordinator goes away and comes back on its journal.
    await until(() => GatedStudent.waiting === 2, 'both participants to start training');
    await first.close();
    const second = await Coordinator.start({ journal, port });
    try {
      // Their links come back while they still train (reconnection after 0.1–0.2 s).
      await until(() => logs.every((l) => l.filter((line) => line.startsWith('joined ')).length === 2), 'both participants to rejoin', 5_000)
        .catch(() => new Promise((resolve) => setTimeout(resolve, 1_000)));
      GatedStudent.open();
      const summaries = await Promise.all(running);
      for (const s of summaries) {
        expect(s.endReason).toBe('completed 2 rounds');
        expect(s.rounds.map((r) => r.round)).toEqual([1, 2]);
      }
      for (const l of logs) expect(l.join('\n')).not.toMatch(/E_NOT_JOINED/);
    } finally {
      await second.close();
      for (const st of students) st.dispose();
    }
  });

  it('ends cleanly over TLS when the coordinator closes right after its end message', { timeout: 30_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'codistill-tls-end-'));
    // A self-signed certificate for 127.0.0.1, as in test/server/tls.test.ts.
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
      '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
    ], { stdio: 'ignore' });
    const ca = readFileSync(join(dir, 'cert.pem'), 'utf8');
    const coordinator = await Coordinator.start({ tls: { cert: readFileSync(join(dir, 'cert.pem')), key: readFileSync(join(dir, 'key.pem')) } });
    const config = sessionConfig('tls-end', 2);
    const session = coordinator.createSession(config);
    // What `codistill server` does once its session has ended (server/cli.ts): close and exit.
    const closed = new Promise<void>((resolve) => session.once('end', () => void coordinator.close().then(resolve)));
    const students = [0, 1].map((k) => newStudent(k));
    const logs: string[][] = [[], []];
    const started = Date.now();
    try {
      // The default reconnection (about two minutes of attempts), as a deployed client has.
      const summaries = await Promise.all([0, 1].map((k) => runParticipant(participant(config, k, coordinator.url, students[k]!, { ca, reconnect: undefined, log: (line) => logs[k]!.push(line) }))));
      for (const s of summaries) {
        expect(s.endReason).toMatch(/^completed 2 rounds/);
        expect(s.rounds.map((r) => r.round)).toEqual([1, 2]);
      }
      // Not after minutes of retries: two small rounds, then at most LAST_ROUND_GRACE_MS.
      expect(Date.now() - started).toBeLessThan(15_000);
      for (const l of logs) expect(l.join('\n')).not.toMatch(/could not reach/);
    } finally {
      await closed;
      for (const st of students) st.dispose();
    }
  });

  it('a participant whose token connects again elsewhere is told E_REPLACED and stops, instead of waiting for rounds that go to the other', async () => {
    const coordinator = await Coordinator.start();
    const config = { ...sessionConfig('replaced', 2), minToStart: 2 };
    const session = coordinator.createSession(config);
    const students = [newStudent(0), newStudent(0)];
    try {
      const joined: string[] = [];
      const first = runParticipant(participant(config, 0, coordinator.url, students[0]!, { onJoined: (p) => joined.push(p) }));
      await until(() => joined.length === 1, 'the first connection to join');
      const second = runParticipant(participant(config, 0, coordinator.url, students[1]!, { onJoined: (p) => joined.push(p) }));
      await expect(first).rejects.toThrow(/^E_REPLACED: p0 connected again from another connection/);
      await until(() => joined.length === 2, 'the second connection to join');
      session.stop('the test');
      expect((await second).endReason).toBe('stopped by the test');
    } finally {
      await coordinator.close();
      for (const st of students) st.dispose();
    }
  });
});
