/**
 * TLS: a coordinator with certificate files speaks wss:// only; a participant that trusts the
 * certificate authority joins, one that does not is told so at once.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { io } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientMessages, encodeMessage, PROTOCOL_VERSION, readReply, replyMessages } from '../../protocol/index.js';
import { createModel } from '../../client/models.js';
import { runParticipant } from '../../client/participant.js';
import { Student } from '../../client/student.js';
import { Coordinator } from '../../server/coordinator.js';

describe('TLS', () => {
  const dir = mkdtempSync(join(tmpdir(), 'codistill-tls-'));
  let coordinator: Coordinator;
  let ca: string;

  beforeAll(async () => {
    // A self-signed certificate for 127.0.0.1, made by Debian's openssl.
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
      '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
    ], { stdio: 'ignore' });
    ca = readFileSync(join(dir, 'cert.pem'), 'utf8');
    coordinator = await Coordinator.start({ tls: { cert: readFileSync(join(dir, 'cert.pem')), key: readFileSync(join(dir, 'key.pem')) } });
    coordinator.createSession({
      id: 'tls', algorithm: 'fd', rounds: 1, participants: [{ id: 'a', token: 'a-token-for-tls-test' }, { id: 'b', token: 'b-token-for-tls-test' }],
      minParticipants: 2, numClasses: 10, referenceSize: 0, referencePerRound: 0, temperature: 1, alpha: 0.5, uploadDtype: 'float32',
      roundTimeoutMs: 10_000, trainTimeoutMs: 10_000, onRoundFailure: 'stop', seed: 1, maxMessageBytes: 1 << 20,
    });
  });
  afterAll(async () => coordinator.close());

  it('serves https, and a participant that trusts its certificate joins over wss', async () => {
    expect(coordinator.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const socket = io(coordinator.url, { transports: ['websocket'], auth: { v: PROTOCOL_VERSION, token: 'a-token-for-tls-test' }, ca, reconnection: false });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('connect_error', reject);
    });
    const reply = await socket.timeout(5000).emitWithAck('join', encodeMessage(clientMessages.join, { v: PROTOCOL_VERSION, session: 'tls', role: 'participant' }));
    expect(readReply(replyMessages.joined, reply).participant).toBe('a');
    socket.close();
  });

  it('refuses to trust an unknown certificate, with the reason', async () => {
    const socket = io(coordinator.url, { transports: ['websocket'], auth: { v: PROTOCOL_VERSION, token: 'b-token-for-tls-test' }, reconnection: false });
    const error = await new Promise<Error & { description?: { message?: string } }>((resolve) => socket.once('connect_error', resolve));
    expect(error.description?.message).toMatch(/self[- ]signed certificate/);
    socket.close();
    // The participant turns that into one clear, final error instead of retrying.
    const student = new Student(createModel({ name: 'mlp', inputShape: [4], numClasses: 10, seed: 1 }), { sampleShape: [4], numClasses: 10, learningRate: 1e-3, seed: 1 });
    const train = { x: new Float32Array(4), y: new Int32Array(1), sampleShape: [4], numClasses: 10 };
    await expect(runParticipant({ url: coordinator.url, session: 'tls', token: 'b-token-for-tls-test', student, data: { train }, epochs: 1, batchSize: 1 }))
      .rejects.toThrow(/^TLS: the coordinator at https:\/\/127\.0\.0\.1:\d+ presented a certificate this participant does not trust \(self[- ]signed certificate\); pass its certificate authority \(--ca FILE\)$/);
    student.dispose();
  });

  it('tells a certificate for another name, and a coordinator without TLS, from an untrusted certificate', async () => {
    const student = new Student(createModel({ name: 'mlp', inputShape: [4], numClasses: 10, seed: 1 }), { sampleShape: [4], numClasses: 10, learningRate: 1e-3, seed: 1 });
    const train = { x: new Float32Array(4), y: new Int32Array(1), sampleShape: [4], numClasses: 10 };
    const join = (url: string, withCa: boolean) => runParticipant({ url, session: 'tls', token: 'b-token-for-tls-test', student, data: { train }, epochs: 1, batchSize: 1, reconnect: { attempts: 1 }, ...(withCa ? { ca } : {}) });
    try {
      // The certificate names 127.0.0.1; "localhost" reaches the same coordinator under another name.
      await expect(join(coordinator.url.replace('127.0.0.1', 'localhost'), true)).rejects.toThrow(/^TLS: the coordinator at https:\/\/localhost:\d+ presented a certificate for another name \(.*\); connect by a name the certificate carries/);
      const plain = await Coordinator.start();
      try {
        await expect(join(plain.url.replace('http:', 'https:'), true)).rejects.toThrow(/^TLS: the coordinator at https:\/\/127\.0\.0\.1:\d+ does not speak TLS \(.*\): it was started without --tls-cert/);
      } finally {
        await plain.close();
      }
    } finally {
      student.dispose();
    }
  });
});

