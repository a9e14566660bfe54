/**
 * Secure aggregation over real sockets (server/secure-rounds.ts with client/secure-round.ts and
 * real WebCrypto): targets equal the plain strategy's within the fixed-point step; the coordinator
 * keeps, journals and logs no member's vector, only masked ones and the unmasked sum; rounds
 * complete when one or two members drop at any step; bad configs and bad messages are refused
 * with a code and a sentence, and the coordinator goes on.
 */
import { readFileSync, existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeEnvelope, PROTOCOL_VERSION, readReply, replyMessages, type Contribution } from '../../protocol/index.js';
import { encodeKnowledge, generateKeyPair, implausibleSecureTarget, LOGIT_SCALE, PROBABILITY_SCALE } from '../../protocol/secure/index.js';
import { meanOf } from '../../server/aggregators/sums.js';
import { Coordinator } from '../../server/coordinator.js';
import { SecureRounds } from '../../server/secure-rounds.js';
import { checkSessionConfig, type SessionConfig } from '../../server/session-config.js';
import { createStrategy } from '../../server/strategies/index.js';
import { C, config, predictions, RawParticipant, REFERENCE, until } from './raw-participant.js';
import { SecureRawParticipant, type DropPoint } from './secure-participant.js';

const ids = (n: number) => Array.from({ length: n }, (_, i) => String.fromCharCode(97 + i));
const secureConfig = (members: string[], overrides: Partial<SessionConfig> = {}): SessionConfig =>
  config({
    participants: members.map((id) => ({ id, token: `secret-${id}` })), minParticipants: 3, secureAggregation: { threshold: 3 }, ...overrides,
  });

/** FD's knowledge of member `seed`: per-class mean logits, and label counts with a class it lacks. */
function classLogits(seed: number): { values: Float32Array; labelCounts: number[] } {
  const values = Float32Array.from({ length: C * C }, (_, i) => Math.sin(seed * 7 + i) * 4);
  const labelCounts = Array.from({ length: C }, (_, c) => (c === seed % C ? 0 : 10 + seed + c));
  return { values, labelCounts };
}

function maxDifference(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}

/** Bytes of a uint32 vector as it would be stored (little-endian). */
function wordBytes(words: Uint32Array): Buffer {
  const out = Buffer.alloc(words.length * 4);
  words.forEach((w, i) => out.writeUInt32LE(w, 4 * i));
  return out;
}

let coordinator: Coordinator | undefined;
const sockets: RawParticipant[] = [];
const observed: Array<{ what: string; vector: Uint32Array; participant?: string }> = [];
afterEach(async () => {
  SecureRounds.observe = undefined;
  observed.length = 0;
  for (const s of sockets.splice(0)) s.close();
  await coordinator?.close();
  coordinator = undefined;
});

async function start(options: { journal?: string; log?: (line: string) => void } = {}): Promise<Coordinator> {
  coordinator = await Coordinator.start({ maxMessageBytes: 64 * 1024, ...options });
  SecureRounds.observe = (what, vector, participant) => observed.push({ what, vector: vector.slice(), participant });
  return coordinator;
}

function member(id: string, knowledge: (round: number) => { values: Float32Array; labelCounts?: number[] }, options: ConstructorParameters<typeof SecureRawParticipant>[3] = {}) {
  const p = new SecureRawParticipant(coordinator!.url, id, knowledge, options);
  sockets.push(p);
  return p;
}

const probabilitiesOf = (id: string) => predictions(id.charCodeAt(0) - 96);

describe('secure aggregation: what the coordinator learns', () => {
  it('DML: every target is the plain leave-one-out mean within the step; journal, logs and the mode hold no member\'s vector', async () => {
    const journal = join(mkdtempSync(join(tmpdir(), 'codistill-secure-')), 'journal.db');
    const logs: string[] = [];
    await start({ journal, log: (line) => logs.push(line) });
    const members = ids(4);
    const session = coordinator!.createSession(secureConfig(members, { rounds: 2 }));
    const ps = members.map((id) => member(id, () => ({ values: probabilitiesOf(id) })));
    await Promise.all(ps.map((p) => p.join()));
    await until(() => session.history.length === 2, 'two secure rounds', 20_000);
    expect(ps.map((p) => p.errors.map(String))).toEqual(ps.map(() => []));
    expect(session.history.map((r) => r.contributors)).toEqual([members, members]);
    expect(ps[0]!.info!.secure).toEqual({ threshold: 3, targets: 'others' });

    const contributions: Contribution[] = members.map((id) => ({ participant: id, values: probabilitiesOf(id) }));
    const plain = createStrategy('dml', { ...secureConfig(members) }).aggregate(contributions, members, REFERENCE).targets;
    for (const p of ps) {
      for (const target of p.secureTargets) {
        expect(maxDifference(target!.values, plain.get(p.id)!.values)).toBeLessThanOrEqual(1 / PROBABILITY_SCALE);
      }
    }

    // The mode kept masked uploads and their masked sum, then the plain sum — never one member's vector.
    const encodings = members.map((id) => encodeKnowledge('reference-predictions', probabilitiesOf(id), C));
    const sumOfAll = encodings.reduce((s, e) => s.map((w, i) => (w + e[i]!) >>> 0));
    expect(observed.filter((o) => o.what === 'masked-upload')).toHaveLength(8);
    for (const { what, vector } of observed) {
      for (const e of encodings) {
        const same = vector.filter((w, i) => w === e[i]).length;
        expect(same, `${what} shares ${same} words with a member's encoding`).toBeLessThan(2);
      }
      if (what === 'sum') expect(vector).toEqual(sumOfAll);
    }
    expect(observed.filter((o) => o.what === 'sum')).toHaveLength(2);

    // Neither the journal (database and WAL) nor the logs hold a member's float32 or fixed-point values.
    await coordinator!.close();
    coordinator = undefined;
    const stored = Buffer.concat([journal, `${journal}-wal`].filter(existsSync).map((f) => readFileSync(f)));
    expect(stored.length).toBeGreaterThan(1000);
    members.forEach((id, k) => {
      const floats = Buffer.from(probabilitiesOf(id).buffer);
      for (const bytes of [floats, wordBytes(encodings[k]!)]) {
        expect(stored.indexOf(bytes.subarray(0, 12))).toBe(-1); // not even its first row
      }
    });
    const text = logs.join('\n');
    for (const id of members) for (const v of probabilitiesOf(id).slice(0, 3)) expect(text).not.toContain(String(v).slice(0, 8));
  });

  it('FD: per-class teachers and counts are the plain FD targets\' (within the logit step), classes a member lacks left out', async () => {
    await start();
    const members = ids(4);
    const session = coordinator!.createSession(secureConfig(members, { algorithm: 'fd', referenceSize: 0, referencePerRound: 0 }));
    const ps = members.map((id, k) => member(id, () => classLogits(k)));
    await Promise.all(ps.map((p) => p.join()));
    await until(() => session.history.length === 1, 'a secure FD round', 20_000);
    const contributions: Contribution[] = members.map((id, k) => ({ participant: id, ...classLogits(k) }));
    const plain = createStrategy('fd', secureConfig(members, { algorithm: 'fd' })).aggregate(contributions, members, 0).targets;
    for (const p of ps) {
      const target = p.secureTargets[0]!;
      expect(target.counts).toEqual(plain.get(p.id)!.counts);
      expect(maxDifference(target.values, plain.get(p.id)!.values)).toBeLessThanOrEqual(1 / LOGIT_SCALE);
    }
  });

  it('FedMD: every member learns the plain mean of the logits, its own included, within the logit step', async () => {
    await start();
    const members = ids(3);
    const logitsOf = (id: string) => probabilitiesOf(id).map((p, i) => Math.log(p) * 3 + (i % 2 === 0 ? -40 : 17));
    const session = coordinator!.createSession(secureConfig(members, { algorithm: 'fedmd', aggregator: 'mean-logits' }));
    const ps = members.map((id) => member(id, () => ({ values: logitsOf(id) })));
    await Promise.all(ps.map((p) => p.join()));
    await until(() => session.history.length === 1, 'a secure FedMD round', 20_000);
    expect(ps[0]!.info!.secure!.targets).toBe('all');
    const contributions: Contribution[] = members.map((id) => ({ participant: id, values: logitsOf(id) }));
    const plain = createStrategy('fedmd', secureConfig(members, { algorithm: 'fedmd', aggregator: 'mean-logits' })).aggregate(contributions, members, REFERENCE).targets;
    for (const p of ps) expect(maxDifference(p.secureTargets[0]!.values, plain.get(p.id)!.values)).toBeLessThanOrEqual(1 / LOGIT_SCALE);
  });

  it('a distiller gets the sum and learns the mean of every contribution, within the step', async () => {
    await start();
    const members = ids(3);
    const cfg = secureConfig([...members, 'z'], { minParticipants: 3 });
    cfg.participants[3] = { id: 'z', token: 'secret-z', role: 'distiller' };
    const session = coordinator!.createSession(cfg);
    const ps = members.map((id) => member(id, () => ({ values: probabilitiesOf(id) })));
    const distiller = member('z', () => ({ values: new Float32Array() }), { distiller: true });
    await Promise.all([...ps, distiller].map((p) => p.join()));
    await until(() => session.history.length === 1, 'a secure round with a distiller', 20_000);
    expect(Object.keys(session.history[0]!.reports).sort()).toEqual(['a', 'b', 'c', 'z']);
    const mean = meanOf(members.map(probabilitiesOf));
    expect(maxDifference(distiller.secureTargets[0]!.values, mean)).toBeLessThanOrEqual(1 / PROBABILITY_SCALE);
  });
});

describe('secure aggregation: members dropping mid-round', () => {
  const cases: Array<{ drop: DropPoint; who: string[] }> = [
    { drop: 'before-shares', who: ['b'] },
    { drop: 'before-upload', who: ['c'] },
    { drop: 'before-upload', who: ['a', 'd'] },
    { drop: 'before-reveal', who: ['e'] },
    { drop: 'before-reveal', who: ['b', 'c'] },
  ];
  for (const { drop, who } of cases) {
    it(`${who.length} dropping ${drop}: the round completes with the survivors' sum, targets as a plain round over them`, async () => {
      await start();
      const members = ids(5);
      const session = coordinator!.createSession(secureConfig(members));
      const ps = members.map((id) => member(id, () => ({ values: probabilitiesOf(id) }), who.includes(id) ? { dropAt: drop } : {}));
      await Promise.all(ps.map((p) => p.join()));
      await until(() => session.history.length === 1, 'the round to complete', 20_000);
      const record = session.history[0]!;
      expect(record.failure).toBeUndefined();
      // Who uploaded is in the sum: those that dropped before revealing had uploaded.
      const contributors = drop === 'before-reveal' ? members : members.filter((id) => !who.includes(id));
      expect(record.contributors).toEqual(contributors);
      const plain = createStrategy('dml', secureConfig(members)).aggregate(
        contributors.map((id) => ({ participant: id, values: probabilitiesOf(id) })), contributors, REFERENCE,
      ).targets;
      const survivors = ps.filter((p) => !who.includes(p.id));
      for (const p of survivors) {
        expect(p.errors).toEqual([]);
        expect(p.sums[0]!.contributors).toBe(contributors.length);
        expect(maxDifference(p.secureTargets[0]!.values, plain.get(p.id)!.values)).toBeLessThanOrEqual(1 / PROBABILITY_SCALE);
      }
      for (const p of ps.filter((q) => who.includes(q.id))) expect(p.sums).toEqual([]);
    });
  }

  it('fails the round, as a round without quorum does, when fewer than the threshold are left to reveal', async () => {
    await start();
    const members = ids(4);
    const session = coordinator!.createSession(secureConfig(members, { secureAggregation: { threshold: 3 }, roundTimeoutMs: 1_000 }));
    const ps = members.map((id) => member(id, () => ({ values: probabilitiesOf(id) }), id === 'a' || id === 'b' ? { dropAt: 'before-reveal' } : {}));
    await Promise.all(ps.map((p) => p.join()));
    await until(() => session.history.length === 1, 'the round to fail', 20_000);
    expect(session.history[0]!.failure?.code).toBe('E_ROUND_CLOSED');
    expect(session.history[0]!.failure?.message).toMatch(/2 of the members answered the reveal step before its deadline; it needs 3/);
    await until(() => ps[2]!.failures.length === 1, 'the survivors told the round failed');
  });
});

describe('secure aggregation: a hostile member the coordinator cannot see', () => {
  it('honest members refuse a target no honest sum could give (rows of 1s, within the encoder\'s clamp), naming it, instead of learning from it', async () => {
    await start();
    const members = ids(4);
    coordinator!.createSession(secureConfig(members));
    const ones = new Float32Array(REFERENCE * C).fill(1);
    const ps = members.map((id) => member(id, () => ({ values: id === 'd' ? ones : probabilitiesOf(id) })));
    await Promise.all(ps.map((p) => p.join()));
    await until(() => ps.slice(0, 3).every((p) => p.errors.length === 1), 'the honest members to refuse their targets', 20_000);
    for (const p of ps.slice(0, 3)) {
      expect(String(p.errors[0])).toMatch(/E_VALUE: the secure sum of round 1 gives a target no honest members could have made \(row 0 sums to [0-9.]+; a row of probabilities sums to 1 \(±0\.0010\)\)/);
      expect(p.secureTargets).toEqual([]);
    }
    // The coordinator could not tell (it sees masked words only) and took every upload.
    expect(observed.filter((o) => o.what === 'masked-upload')).toHaveLength(4);
  });

  it('checks every kind against the bounds of honest knowledge', () => {
    const rows = (v: number[]) => ({ values: Float32Array.from(v) });
    expect(implausibleSecureTarget('reference-predictions', rows([0.25, 0.75, 0.5, 0.5]), 2, 3)).toBeUndefined();
    expect(implausibleSecureTarget('reference-predictions', rows([0.25, 0.75, 1, 1]), 2, 3)).toBe('row 1 sums to 2.000000; a row of probabilities sums to 1 (±0.0010)');
    expect(implausibleSecureTarget('reference-predictions', rows([-0.5, 1.5]), 2, 3)).toBe('row 0, class 0 is -0.5; a probability lies in [0, 1] (±0.0010)');
    expect(implausibleSecureTarget('reference-logits', rows([127.9, -128, 3]), 3, 3)).toBeUndefined();
    expect(implausibleSecureTarget('reference-logits', rows([200, 0, 0]), 3, 3)).toMatch(/value 0 is 200/);
    expect(implausibleSecureTarget('class-logits', { values: Float32Array.of(1, 2, 3, 4), counts: [3, 2 * 2 ** 24 + 1] }, 2, 2)).toMatch(/class 1 has a count/);
  });
});

describe('secure aggregation with participant sampling', () => {
  it('each round masks among the sampled members only: targets as a plain round over the sample, nothing for the others', async () => {
    await start();
    const members = ids(5);
    const session = coordinator!.createSession(secureConfig(members, { rounds: 3, minParticipants: 3, sampling: { count: 3 } }));
    const ps = members.map((id) => member(id, () => ({ values: probabilitiesOf(id) })));
    await Promise.all(ps.map((p) => p.join()));
    await until(() => session.history.length === 3, 'three sampled secure rounds', 20_000);
    expect(ps.map((p) => p.errors.map(String))).toEqual(ps.map(() => []));
    const samples = session.history.map((r) => r.sampled!);
    expect(new Set(samples.map((s) => s.join())).size, 'the sample changes across rounds').toBeGreaterThan(1);
    samples.forEach((sample, r) => {
      expect(sample).toHaveLength(3);
      expect(session.history[r]!.contributors).toEqual(sample);
      const plain = createStrategy('dml', secureConfig(members)).aggregate(
        sample.map((id) => ({ participant: id, values: probabilitiesOf(id) })), sample, REFERENCE,
      ).targets;
      for (const p of ps) {
        const sum = p.sums.find((m) => m.round === r + 1);
        if (!sample.includes(p.id)) {
          expect(sum, `${p.id} sat round ${r + 1} out`).toBeUndefined();
          continue;
        }
        expect(sum!.contributors).toBe(3);
        const target = p.secureTargets[p.sums.indexOf(sum!)]!;
        expect(maxDifference(target.values, plain.get(p.id)!.values)).toBeLessThanOrEqual(1 / PROBABILITY_SCALE);
      }
    });
  });

  it('refuses a threshold above the sample: every round would fail', () => {
    expect(() => checkSessionConfig(secureConfig(ids(6), { sampling: { count: 3 }, secureAggregation: { threshold: 4 } }))).toThrow(
      /secureAggregation\.threshold \(4\) exceeds the 3 participants sampled each round/,
    );
    expect(() => checkSessionConfig(secureConfig(ids(6), { sampling: { count: 3 }, secureAggregation: { threshold: 3 } }))).not.toThrow();
  });
});

describe('secure aggregation: refusals', () => {
  it('refuses configs it cannot run, naming why', () => {
    const members = ids(4);
    const problems = (overrides: Partial<SessionConfig>) => {
      try {
        checkSessionConfig(secureConfig(members, overrides));
        return '';
      } catch (error) {
        return (error as Error).message;
      }
    };
    expect(problems({})).toBe('');
    expect(problems({ aggregator: 'median' })).toMatch(/aggregator "median" needs every participant's individual values.*use mean/);
    expect(problems({ aggregator: 'trimmed-mean' })).toMatch(/aggregator "trimmed-mean" needs every participant's individual values/);
    expect(problems({ aggregator: 'entropy-weighted' })).toMatch(/aggregator "entropy-weighted" needs every participant's individual values/);
    expect(problems({ algorithm: 'dsfl' })).toMatch(/aggregator "era" weights or reshapes each contribution .*\(it is dsfl's default\)/);
    expect(problems({ algorithm: 'dsfl', aggregator: 'mean' })).toBe('');
    expect(problems({ algorithm: 'fedavg' })).toMatch(/cannot run fedavg: it does not build its targets from a sum of weights/);
    expect(problems({ algorithm: 'codistillation' })).toMatch(/cannot run codistillation/);
    expect(problems({ secureAggregation: { threshold: 1 } })).toMatch(/secureAggregation.threshold must be an integer in \[2, 4\] .*got 1/);
    expect(problems({ secureAggregation: { threshold: 5 } })).toMatch(/secureAggregation.threshold must be an integer in \[2, 4\] .*got 5/);
  });

  it('refuses malformed secure messages with a code and a sentence, and the coordinator goes on', async () => {
    await start();
    const session = coordinator!.createSession(secureConfig(['p', 'q', 'r'], { roundTimeoutMs: 3_000 }));
    const [p, q] = ['p', 'q'].map((id) => member(id, () => ({ values: probabilitiesOf('a') }))) as [SecureRawParticipant, SecureRawParticipant];
    // r is driven by hand, so that the test can break its messages; p and q run the protocol.
    const r = new RawParticipant(coordinator!.url, 'r', 'secret-r');
    sockets.push(r);
    const send = async (event: string, fields: Record<string, unknown>, from: RawParticipant = r, sessionId = 'test') => {
      const reply = await from.socket.timeout(5000).emitWithAck(event as 'upload', encodeEnvelope({ v: PROTOCOL_VERSION, session: sessionId, round: 1, participant: from.id, ...fields }));
      try {
        readReply(replyMessages.ack, reply);
        return 'ok';
      } catch (error) {
        return (error as Error).message;
      }
    };
    await Promise.all([p.join(), q.join(), r.join()]);
    await until(() => r.rounds.length === 1, 'round 1');
    const key = new Uint8Array(32).fill(9);
    expect(await send('secure-keys', { cipherKey: new Uint8Array(31), maskKey: key })).toMatch(/^E_SHAPE: r's share-encryption public key has 31 bytes; the session expects 32/);
    expect(await send('secure-shares', { shares: [] })).toMatch(/^E_SECURE: secure-shares from r refused: round 1 is at its keys step, not shares/);
    expect(await send('upload', { kind: 'reference-predictions', values: { dtype: 'float32', shape: [REFERENCE, C], data: new Uint8Array(REFERENCE * C * 4) } }))
      .toMatch(/^E_SECURE: session test runs secure aggregation: r sends its knowledge masked \(secure-upload\), never plain/);
    expect(await send('secure-keys', { cipherKey: key, maskKey: key, participant: 'p' })).toMatch(/^E_AUTH/);
    // Good keys from r, so the roster forms; then its shares, broken in every way.
    const rosterArrived = new Promise<void>((resolve) => r.socket.once('secure-roster', () => resolve()));
    const [cipher, mask] = [await generateKeyPair(), await generateKeyPair()];
    expect(await send('secure-keys', { cipherKey: cipher.publicKey, maskKey: mask.publicKey })).toBe('ok');
    await rosterArrived;
    const share = (to: string, bytes = 80) => ({ to, nonce: new Uint8Array(12), ciphertext: new Uint8Array(bytes) });
    expect(await send('secure-shares', { shares: [share('p'), share('r')] })).toMatch(/^E_SECURE: r sent a share to itself/);
    expect(await send('secure-shares', { shares: [share('p'), share('x')] })).toMatch(/^E_SECURE: x is not among round 1's roster/);
    expect(await send('secure-shares', { shares: [share('p'), share('q', 79)] })).toMatch(/^E_SHAPE: r's encrypted share for q has 79 bytes; the session expects 80/);
    expect(await send('secure-shares', { shares: [share('p')] })).toMatch(/^E_SECURE: r sent 1 shares in round 1; the roster's 3 members need one for each of the 2 others/);
    expect(await send('secure-shares', { shares: [share('p'), share('p')] })).toMatch(/^E_SECURE: r sent p two shares/);
    expect(await send('secure-upload', { masked: new Uint8Array(REFERENCE * C * 4) })).toMatch(/^E_SECURE: secure-upload from r refused: round 1 is at its shares step, not upload/);
    // A plain session refuses secure steps.
    coordinator!.createSession({ ...config(), id: 'plain', participants: [{ id: 's', token: 'secret-s' }], minParticipants: 1 });
    const s = new RawParticipant(coordinator!.url, 's', 'secret-s');
    sockets.push(s);
    await s.join('plain');
    expect(await send('secure-keys', { cipherKey: key, maskKey: key }, s, 'plain')).toMatch(/^E_SECURE: session plain does not run secure aggregation/);
    // r never sends good shares and leaves: the shares step waits for its deadline, then the round
    // fails cleanly, short of the quorum of 3; the coordinator goes on to the next round.
    r.close();
    await until(() => session.history.length === 1, 'the round to end', 10_000);
    expect(session.history[0]!.failure?.message).toMatch(/round 1 failed under secure aggregation: 2 of the members answered the shares step before its deadline; it needs 3/);
    await until(() => p.failures.length === 1, 'p told the round failed');
    expect(p.errors).toEqual([]);
  });
});
