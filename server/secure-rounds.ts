/**
 * Synchronous rounds under secure aggregation (Bonawitz et al. 2017, "Practical Secure
 * Aggregation for Privacy-Preserving Machine Learning", §4, the honest-but-curious protocol: no
 * signature round). The coordinator learns the sum of the members' knowledge and how many
 * contributed, never one member's vector; participants build their targets from the sum
 * (protocol/secure/fixed-point.ts). Reuses SyncRounds' round machinery — opening, the report
 * phase, failures, closing — and replaces its collecting phase with four steps:
 *
 *   keys    each member sends two fresh X25519 public keys             → U1, the roster (≥ quorum)
 *   shares  each member sends every other its encrypted Shamir shares  → U2, the senders
 *           of its mask private key and its self-mask seed; routed
 *   upload  each sender uploads x + self mask ± pairwise masks         → U3, the uploaders
 *   reveal  each uploader reveals seed shares of U3 and mask-key       → the sum: self masks of U3
 *           shares of U2 \ U3; any t of them rebuild the secrets          and the masks U3 shared
 *                                                                          with U2 \ U3 removed
 *
 * The coordinator never holds both secrets of one member: it asks for the self-mask seeds of the
 * members that uploaded and for the mask keys of those that did not — disjoint sets, and each
 * participant refuses on its own side to reveal both for one member (client/secure-round.ts).
 * With both, it could strip every mask from that member's upload; with one, the upload stays
 * hidden under the other (a seed: the pairwise masks; a mask key of a member that never uploaded:
 * nothing to unmask).
 *
 * Each step waits for every member still connected, or its deadline (roundTimeoutMs); it needs
 * the quorum — max(minParticipants, threshold) — or the round fails as a round without quorum does.
 * What the coordinator keeps is masked vectors until the sum is unmasked; SecureRounds.observe
 * lets a test see each of them.
 */
import { ErrorCode, ProtocolError, type ClientMessage, type KnowledgeExpectation, type KnowledgeKind } from '../protocol/index.js';
import {
  addMask,
  checkPublicKey,
  combineShares,
  importPrivateKey,
  KEY_BYTES,
  maskStream,
  meanFromSecureSum,
  NONCE_BYTES,
  pairMaskKey,
  pairSign,
  publicKeyOf,
  secureVectorLength,
  selfMaskKey,
  SHARE_CIPHERTEXT_BYTES,
  sumVectors,
  type SecretShare,
} from '../protocol/secure/index.js';
import { valuesDigest } from './session-config.js';
import type { PeerLink } from './wire.js';
import { SyncRounds, type OpenRound } from './sync-rounds.js';

type Step = 'keys' | 'shares' | 'upload' | 'reveal' | 'unmasking';

/** The secure messages a participant sends, by event. */
export type SecureEvent = 'secure-keys' | 'secure-shares' | 'secure-upload' | 'secure-reveal';

interface SecureRound {
  open: OpenRound;
  step: Step;
  kind: KnowledgeKind;
  /** Words of every vector of the round. */
  length: number;
  keys: Map<string, { cipherKey: Uint8Array; maskKey: Uint8Array }>;
  /** U1, sorted: a member's share x-coordinate is its index + 1. */
  roster: string[];
  /** U2: who sent its shares, with the ciphertexts by recipient. */
  shares: Map<string, Map<string, { nonce: Uint8Array; ciphertext: Uint8Array }>>;
  senders: string[];
  /** U3: masked uploads (uniformly random to the coordinator). */
  masked: Map<string, Uint32Array>;
  uploaded: string[];
  reveals: Map<string, { maskKeyShares: Map<string, Uint8Array>; seedShares: Map<string, Uint8Array> }>;
  /** Members that left during the round: no step waits for them again this round. */
  departed: Set<string>;
}

export class SecureRounds extends SyncRounds {
  /** Test hook: called with every vector this mode stores or computes, and what it is. Never set in production. */
  static observe: ((what: 'masked-upload' | 'masked-sum' | 'sum', vector: Uint32Array, participant?: string) => void) | undefined;

  private secure: SecureRound | undefined;

  private get threshold(): number {
    return this.session.config.secureAggregation!.threshold;
  }

  /** Members every step needs: the session's quorum and the sharing threshold. */
  private get needed(): number {
    return Math.max(this.session.config.minParticipants, this.threshold);
  }

  protected override openRound(round: number): void {
    super.openRound(round);
    const open = this.open;
    if (open === undefined || this.phase !== 'collecting') return;
    const kind = this.session.strategy.knowledge as KnowledgeKind;
    this.secure = {
      open, step: 'keys', kind, length: secureVectorLength(kind, open.referenceIds.length, this.session.config.numClasses),
      keys: new Map(), roster: [], shares: new Map(), senders: [], masked: new Map(), uploaded: [], reveals: new Map(), departed: new Set(),
    };
  }

  override joined(participant: string, link: PeerLink, returning: boolean): void {
    // Only while keys are taken can a (re)joining member take part: after the roster, the round's members are fixed.
    if (this.secure?.step === 'keys' || this.phase !== 'collecting') super.joined(participant, link, returning);
  }

  override left(participant: string): void {
    const secure = this.current();
    if (this.phase !== 'collecting' || secure === undefined) return super.left(participant);
    secure.departed.add(participant);
    if (secure.step === 'keys') secure.keys.delete(participant);
    this.advanceIfReady(secure);
  }

  override expectUpload(participant: string, round: number): KnowledgeExpectation | null {
    this.requireOpen(participant, round, 'upload');
    throw new ProtocolError(ErrorCode.Secure, `session ${this.session.config.id} runs secure aggregation: ${participant} sends its knowledge masked (secure-upload), never plain`);
  }

  override stop(): void {
    this.secure = undefined;
    super.stop();
  }

  /** The collecting deadline of the current step: go on with those who answered if they are a quorum, else the round fails. */
  protected override aggregate(): void {
    const secure = this.current();
    if (secure === undefined) return;
    const have = this.answered(secure).length;
    if (have >= this.needed && secure.step !== 'unmasking') this.advance(secure);
    else if (secure.step !== 'unmasking') this.fail(secure, `${have} of the members answered the ${secure.step} step before its deadline; it needs ${this.needed} (max of the quorum and the threshold)`);
  }

  /** One secure message of a member: checked against the round and step, then kept. */
  receive(participant: string, event: SecureEvent, message: ClientMessage<SecureEvent>, bytes: number): void {
    const open = this.requireOpen(participant, message.round, event);
    const secure = this.current();
    if (this.phase !== 'collecting' || secure === undefined || secure.open !== open) {
      throw new ProtocolError(ErrorCode.RoundClosed, `${event} from ${participant} refused: round ${message.round} is no longer collecting`);
    }
    const step = STEP_OF[event];
    if (secure.step !== step) {
      throw new ProtocolError(ErrorCode.Secure, `${event} from ${participant} refused: round ${message.round} is at its ${secure.step} step, not ${step}`);
    }
    const round = message.round;
    switch (event) {
      case 'secure-keys': {
        const m = message as ClientMessage<'secure-keys'>;
        if (!open.members.has(participant)) throw new ProtocolError(ErrorCode.Secure, `${participant} is not a member of round ${round}: it joined after the round opened, or contributes nothing`);
        requireBytes(m.cipherKey, KEY_BYTES, `${participant}'s share-encryption public key`);
        requireBytes(m.maskKey, KEY_BYTES, `${participant}'s mask public key`);
        // A key of small order would make every other member's agreement with it fail: refused here, before the roster carries it.
        checkPublicKey(m.cipherKey, `${participant}'s share-encryption public key`);
        checkPublicKey(m.maskKey, `${participant}'s mask public key`);
        if (!secure.keys.has(participant)) secure.keys.set(participant, { cipherKey: m.cipherKey.slice(), maskKey: m.maskKey.slice() });
        break;
      }
      case 'secure-shares': {
        const m = message as ClientMessage<'secure-shares'>;
        this.requireIn(secure.roster, participant, round, 'roster');
        if (secure.shares.has(participant)) break; // a retry: the first stands
        const byRecipient = new Map<string, { nonce: Uint8Array; ciphertext: Uint8Array }>();
        for (const share of m.shares) {
          if (share.to === participant) throw new ProtocolError(ErrorCode.Secure, `${participant} sent a share to itself; it keeps its own share and sends one to each other member`);
          this.requireIn(secure.roster, share.to, round, 'roster');
          if (byRecipient.has(share.to)) throw new ProtocolError(ErrorCode.Secure, `${participant} sent ${share.to} two shares in round ${round}`);
          requireBytes(share.nonce, NONCE_BYTES, `the nonce of ${participant}'s share for ${share.to}`);
          requireBytes(share.ciphertext, SHARE_CIPHERTEXT_BYTES, `${participant}'s encrypted share for ${share.to}`);
          byRecipient.set(share.to, { nonce: share.nonce.slice(), ciphertext: share.ciphertext.slice() });
        }
        if (byRecipient.size !== secure.roster.length - 1) {
          throw new ProtocolError(ErrorCode.Secure, `${participant} sent ${byRecipient.size} shares in round ${round}; the roster's ${secure.roster.length} members need one for each of the ${secure.roster.length - 1} others`);
        }
        secure.shares.set(participant, byRecipient);
        break;
      }
      case 'secure-upload': {
        const m = message as ClientMessage<'secure-upload'>;
        this.requireIn(secure.senders, participant, round, 'senders of shares');
        if (secure.masked.has(participant)) break;
        requireBytes(m.masked, 4 * secure.length, `${participant}'s masked upload (${secure.length} uint32 words of ${secure.kind})`);
        const view = new DataView(m.masked.buffer, m.masked.byteOffset, m.masked.byteLength);
        const vector = new Uint32Array(secure.length);
        for (let i = 0; i < vector.length; i++) vector[i] = view.getUint32(4 * i, true);
        SecureRounds.observe?.('masked-upload', vector, participant);
        secure.masked.set(participant, vector);
        break;
      }
      case 'secure-reveal': {
        const m = message as ClientMessage<'secure-reveal'>;
        this.requireIn(secure.uploaded, participant, round, 'uploaders');
        if (secure.reveals.has(participant)) break;
        const uploaded = new Set(secure.uploaded);
        const dropped = secure.senders.filter((p) => !uploaded.has(p));
        secure.reveals.set(participant, {
          // Exactly the disjoint sets asked for: never a seed share of a member whose mask key is asked, nor the reverse.
          maskKeyShares: revealed(participant, m.maskKeyShares, dropped, 'mask-key shares', 'the senders that did not upload'),
          seedShares: revealed(participant, m.seedShares, secure.uploaded, 'self-mask seed shares', 'the uploaders'),
        });
        break;
      }
    }
    open.record.bytesUp += bytes;
    this.advanceIfReady(secure);
  }

  private current(): SecureRound | undefined {
    const secure = this.secure;
    return secure !== undefined && secure.open === this.open ? secure : undefined;
  }

  private requireIn(list: readonly string[], participant: string, round: number, what: string): void {
    if (!list.includes(participant)) throw new ProtocolError(ErrorCode.Secure, `${participant} is not among round ${round}'s ${what}`);
  }

  /** Who has answered the current step. */
  private answered(secure: SecureRound): string[] {
    switch (secure.step) {
      case 'keys': return [...secure.keys.keys()];
      case 'shares': return [...secure.shares.keys()];
      case 'upload': return [...secure.masked.keys()];
      default: return [...secure.reveals.keys()];
    }
  }

  /** Who the current step waits for: its members still connected that have not left during the round. */
  private expected(secure: SecureRound): string[] {
    const members = secure.step === 'keys' ? [...secure.open.members] : secure.step === 'shares' ? secure.roster : secure.step === 'upload' ? secure.senders : secure.uploaded;
    return members.filter((p) => this.session.links.has(p) && !secure.departed.has(p));
  }

  private advanceIfReady(secure: SecureRound): void {
    if (secure.step === 'unmasking') return;
    const answered = this.answered(secure);
    if (answered.length < this.needed) return;
    const done = new Set(answered);
    if (this.expected(secure).every((p) => done.has(p))) this.advance(secure);
  }

  private advance(secure: SecureRound): void {
    const { config } = this.session;
    const { record } = secure.open;
    const header = { session: config.id, round: record.round };
    switch (secure.step) {
      case 'keys': {
        secure.roster = [...secure.keys.keys()].sort(byId);
        secure.step = 'shares';
        const members = secure.roster.map((participant) => ({ participant, ...secure.keys.get(participant)! }));
        const roster = { ...header, members };
        for (const p of secure.roster) record.bytesDown += this.session.links.get(p)?.send('secure-roster', roster) ?? 0;
        break;
      }
      case 'shares': {
        secure.senders = [...secure.shares.keys()].sort(byId);
        secure.step = 'upload';
        for (const v of secure.senders) {
          const shares = secure.senders.filter((u) => u !== v).map((u) => ({ from: u, ...secure.shares.get(u)!.get(v)! }));
          record.bytesDown += this.session.links.get(v)?.send('secure-routed', { ...header, senders: secure.senders, shares }) ?? 0;
        }
        secure.shares.clear(); // routed: ciphertexts the coordinator cannot read anyway, no longer needed
        break;
      }
      case 'upload': {
        secure.uploaded = [...secure.masked.keys()].sort(byId);
        secure.step = 'reveal';
        const request = { ...header, uploaded: secure.uploaded };
        for (const p of secure.uploaded) record.bytesDown += this.session.links.get(p)?.send('secure-unmask', request) ?? 0;
        break;
      }
      case 'reveal':
        secure.step = 'unmasking';
        this.unmask(secure).then(
          (sum) => this.deliver(secure, sum),
          (error: unknown) => this.fail(secure, `the sum could not be unmasked: ${error instanceof Error ? error.message : String(error)}`),
        );
        return;
      default:
        return;
    }
    this.arm(config.roundTimeoutMs, () => this.aggregate());
  }

  /**
   * Σ_{v∈U3} y_v = Σ x_v + Σ_{v∈U3} PRG(b_v) + Σ_{v∈U3, u∈U2\U3} σ(v, u)·PRG(s_{v,u}): the pairs
   * within U3 cancel; the rest comes off with the rebuilt seeds and mask keys.
   */
  private async unmask(secure: SecureRound): Promise<Uint32Array> {
    const context = { session: this.session.config.id, round: secure.open.record.round };
    const t = this.threshold;
    const sum = sumVectors(secure.masked.values(), secure.length);
    SecureRounds.observe?.('masked-sum', sum);
    const revealers = [...secure.reveals.keys()].sort(byId).slice(0, t);
    const sharesOf = (member: string, which: 'seedShares' | 'maskKeyShares'): SecretShare[] =>
      revealers.map((r) => ({ x: secure.roster.indexOf(r) + 1, y: secure.reveals.get(r)![which].get(member)! }));
    for (const u of secure.uploaded) addMask(sum, await maskStream(await selfMaskKey(combineShares(sharesOf(u, 'seedShares')), context), secure.length), -1);
    const uploaded = new Set(secure.uploaded);
    for (const u of secure.senders.filter((p) => !uploaded.has(p))) {
      const maskKey = await importPrivateKey(combineShares(sharesOf(u, 'maskKeyShares')));
      const announced = secure.keys.get(u)!.maskKey;
      if (!equalBytes(await publicKeyOf(maskKey), announced)) throw new Error(`the shares of ${u}'s mask key rebuild another key: some member revealed a wrong share`);
      for (const v of secure.uploaded) addMask(sum, await maskStream(await pairMaskKey(maskKey, secure.keys.get(v)!.maskKey, context), secure.length), pairSign(v, u) === 1 ? -1 : 1);
    }
    return sum;
  }

  /** The sum is plain: every contributor and distiller gets it and builds its own target; the report phase follows. */
  private deliver(secure: SecureRound, sum: Uint32Array): void {
    if (this.current() !== secure || secure.step !== 'unmasking') return; // the session stopped meanwhile
    SecureRounds.observe?.('sum', sum);
    const { config } = this.session;
    const open = secure.open;
    const { record } = open;
    record.contributors = secure.uploaded;
    const n = secure.uploaded.length;
    if (secure.kind !== 'class-logits') record.ensembleDigest = valuesDigest(meanFromSecureSum(secure.kind, sum, n).values);
    const bytes = new Uint8Array(sum.length * 4);
    const view = new DataView(bytes.buffer);
    for (let i = 0; i < sum.length; i++) view.setUint32(4 * i, sum[i]!, true);
    const message = { session: config.id, round: record.round, sum: bytes, contributors: n };
    this.secure = undefined; // masked vectors and revealed shares go with it
    this.phase = 'training';
    const receivers = [...this.session.learners(secure.uploaded), ...this.session.distillers().filter((d) => record.participants.includes(d))];
    for (const p of receivers) {
      const link = this.session.links.get(p);
      if (link === undefined) continue;
      open.owing.add(p);
      record.bytesDown += link.send('secure-sum', message);
    }
    if (open.owing.size === 0) this.closeRound();
    else this.arm(config.trainTimeoutMs, () => this.closeRound());
  }

  private fail(secure: SecureRound, why: string): void {
    if (this.current() !== secure) return;
    this.secure = undefined;
    this.failRound(new ProtocolError(ErrorCode.RoundClosed, `round ${secure.open.record.round} failed under secure aggregation: ${why}`).toWire());
  }
}

const STEP_OF: Record<SecureEvent, Step> = { 'secure-keys': 'keys', 'secure-shares': 'shares', 'secure-upload': 'upload', 'secure-reveal': 'reveal' };

function byId(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function requireBytes(bytes: Uint8Array, expected: number, what: string): void {
  if (bytes.byteLength !== expected) throw new ProtocolError(ErrorCode.Shape, `${what} has ${bytes.byteLength} bytes; the session expects ${expected}`);
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** A reveal's shares, checked to name exactly `members`, each once and of KEY_BYTES bytes. */
function revealed(participant: string, shares: ReadonlyArray<{ of: string; share: Uint8Array }>, members: readonly string[], what: string, whose: string): Map<string, Uint8Array> {
  const asked = new Set(members);
  const out = new Map<string, Uint8Array>();
  for (const { of, share } of shares) {
    if (!asked.has(of)) throw new ProtocolError(ErrorCode.Secure, `${participant} revealed ${what} of ${of}, who is not among ${whose} (${members.join(', ') || 'none'})`);
    if (out.has(of)) throw new ProtocolError(ErrorCode.Secure, `${participant} revealed two ${what} of ${of}`);
    requireBytes(share, KEY_BYTES, `${participant}'s share of ${of}'s secret`);
    out.set(of, share.slice());
  }
  if (out.size !== asked.size) throw new ProtocolError(ErrorCode.Secure, `${participant} revealed ${what} of ${out.size} members; the round asked for ${asked.size} (${whose})`);
  return out;
}
