/**
 * The participant's side of secure aggregation (Bonawitz et al. 2017, §4; the coordinator's side
 * and the steps are in server/secure-rounds.ts). Per round: fresh keys, Shamir shares of the mask
 * key and the self-mask seed encrypted to every other member, the masked fixed-point upload, the
 * shares the coordinator asks for to unmask the sum, and the target built from the sum. WebCrypto
 * only (protocol/secure): the browser participant runs this same module.
 *
 * What a participant refuses to do, whatever the coordinator asks: reveal both the self-mask seed
 * share and the mask-key share of one member (the coordinator could then unmask that member's
 * upload), or reveal for a second, different set of survivors in one round.
 */
import { ErrorCode, ProtocolError, type ClientMessage, type KnowledgeKind, type ServerMessage, type SessionInfo } from '../protocol/index.js';
import {
  addMask,
  addPairMask,
  checkPublicKey,
  decryptShare,
  encodeKnowledge,
  encryptShare,
  generateKeyPair,
  implausibleSecureTarget,
  KEY_BYTES,
  maskStream,
  meanFromSecureSum,
  othersFromSecureSum,
  randomSeed,
  secureVectorLength,
  selfMaskKey,
  shareEncryptionKey,
  SHARE_PLAINTEXT_BYTES,
  splitSecret,
  type CryptoKey,
  type KeyPair,
  type SecretShare,
} from '../protocol/secure/index.js';
import type { Share, Target } from './procedures/index.js';

export type SecureEvent = 'secure-keys' | 'secure-shares' | 'secure-upload' | 'secure-reveal';

/** Sends one secure step to the coordinator and waits for its ack (the participant's request path). */
export type SecureSend = <E extends SecureEvent>(event: E, message: Omit<ClientMessage<E>, 'v' | 'session' | 'round' | 'participant'>, round: number) => Promise<void>;

interface RoundState {
  round: number;
  context: { session: string; round: number };
  cipher: KeyPair;
  mask: KeyPair;
  seed: Uint8Array;
  /** This member's own upload, fixed point: what it subtracts from the sum for a leave-one-out target. */
  own: Uint32Array;
  roster?: ServerMessage<'secure-roster'>['members'];
  /** Its own shares (x = its roster index + 1), kept rather than sent. */
  ownShares?: { maskKey: SecretShare; seed: SecretShare };
  received: Map<string, { maskKey: Uint8Array; seed: Uint8Array }>;
  /** The AES-GCM key shared with each other member, agreed once (X25519 is the costly step) for sending and for receiving. */
  shareKeys: Map<string, CryptoKey>;
  senders?: string[];
  /** The survivors of the first reveal: a second request must name the same. */
  revealedFor?: string;
}

export class SecureParticipant {
  private state: RoundState | undefined;

  constructor(
    private readonly participant: string,
    private readonly info: SessionInfo,
    private readonly send: SecureSend,
  ) {
    if (info.secure === undefined) throw new Error(`session ${info.session} does not run secure aggregation`);
  }

  private get threshold(): number {
    return this.info.secure!.threshold;
  }

  /** The round opened: this member's share, fixed point, and its two fresh public keys sent. */
  async begin(round: ServerMessage<'round'>, share: Share): Promise<void> {
    const kind = round.knowledge as KnowledgeKind;
    const own = encodeKnowledge(kind, share.values, this.info.numClasses, share.labelCounts);
    const expected = secureVectorLength(kind, round.referenceIds.length, this.info.numClasses);
    if (own.length !== expected) throw new Error(`secure round ${round.round}: the share encodes to ${own.length} words; the round sums ${expected}`);
    const state: RoundState = {
      round: round.round, context: { session: round.session, round: round.round },
      cipher: await generateKeyPair(), mask: await generateKeyPair(), seed: randomSeed(), own, received: new Map(), shareKeys: new Map(),
    };
    this.state = state;
    await this.send('secure-keys', { cipherKey: state.cipher.publicKey, maskKey: state.mask.publicKey }, round.round);
  }

  /** The roster: shares of this member's mask key and seed, one pair encrypted to each other member. */
  async roster(message: ServerMessage<'secure-roster'>): Promise<void> {
    const state = this.stateFor(message.round, 'secure-roster');
    if (state === undefined) return;
    const { members } = message;
    const ids = members.map((m) => m.participant);
    const index = ids.indexOf(this.participant);
    if (index < 0) throw this.refuse(`the roster of round ${message.round} leaves this member out`);
    if (new Set(ids).size !== ids.length) throw this.refuse(`the roster of round ${message.round} names a member twice`);
    if (members.length < this.threshold) throw this.refuse(`the roster of round ${message.round} has ${members.length} members; the threshold is ${this.threshold}`);
    for (const m of members) {
      if (m.cipherKey.length !== KEY_BYTES || m.maskKey.length !== KEY_BYTES) throw this.refuse(`${m.participant}'s public keys in round ${message.round} are not ${KEY_BYTES} bytes each`);
      checkPublicKey(m.cipherKey, `${m.participant}'s share-encryption public key in the roster of round ${message.round}`);
      checkPublicKey(m.maskKey, `${m.participant}'s mask public key in the roster of round ${message.round}`);
    }
    if (!equalBytes(members[index]!.maskKey, state.mask.publicKey) || !equalBytes(members[index]!.cipherKey, state.cipher.publicKey)) {
      throw this.refuse(`the roster of round ${message.round} gives this member keys it did not send`);
    }
    state.roster = members;
    const maskShares = splitSecret(state.mask.privateBytes, members.length, this.threshold);
    const seedShares = splitSecret(state.seed, members.length, this.threshold);
    state.ownShares = { maskKey: maskShares[index]!, seed: seedShares[index]! };
    const shares: ClientMessage<'secure-shares'>['shares'] = [];
    for (let j = 0; j < members.length; j++) {
      if (j === index) continue;
      const to = members[j]!;
      const plaintext = new Uint8Array(SHARE_PLAINTEXT_BYTES);
      plaintext.set(maskShares[j]!.y, 0);
      plaintext.set(seedShares[j]!.y, KEY_BYTES);
      const key = await shareEncryptionKey(state.cipher.privateKey, to.cipherKey, state.context);
      state.shareKeys.set(to.participant, key);
      const { nonce, ciphertext } = await encryptShare(key, plaintext, state.context, this.participant, to.participant);
      shares.push({ to: to.participant, nonce, ciphertext });
    }
    await this.send('secure-shares', { shares }, message.round);
  }

  /**
   * The shares routed to this member and who sent theirs (U2): the upload, masked with its self
   * mask and, for every other sender u, σ(self, u)·PRG(s_{self,u}) — the pairs cancel in the sum.
   */
  async routed(message: ServerMessage<'secure-routed'>): Promise<void> {
    const state = this.stateFor(message.round, 'secure-routed');
    if (state === undefined) return;
    const roster = state.roster;
    if (roster === undefined) throw this.refuse(`shares routed for round ${message.round} before its roster`);
    const byId = new Map(roster.map((m) => [m.participant, m]));
    const senders = message.senders;
    if (!senders.includes(this.participant) || senders.some((s) => !byId.has(s)) || new Set(senders).size !== senders.length) {
      throw this.refuse(`the senders of round ${message.round} must be distinct roster members, this one among them`);
    }
    if (senders.length < this.threshold) throw this.refuse(`round ${message.round} has ${senders.length} senders of shares; the threshold is ${this.threshold}`);
    const from = new Set(message.shares.map((s) => s.from));
    if (from.size !== message.shares.length || from.size !== senders.length - 1 || senders.some((s) => s !== this.participant && !from.has(s))) {
      throw this.refuse(`round ${message.round} routed shares from ${[...from].join(', ')}; the other senders are ${senders.filter((s) => s !== this.participant).join(', ')}`);
    }
    for (const share of message.shares) {
      const key = state.shareKeys.get(share.from) ?? (await shareEncryptionKey(state.cipher.privateKey, byId.get(share.from)!.cipherKey, state.context));
      const plaintext = await decryptShare(key, share.nonce, share.ciphertext, state.context, share.from, this.participant);
      if (plaintext.length !== SHARE_PLAINTEXT_BYTES) throw this.refuse(`${share.from}'s share for round ${message.round} has ${plaintext.length} bytes`);
      state.received.set(share.from, { maskKey: plaintext.slice(0, KEY_BYTES), seed: plaintext.slice(KEY_BYTES) });
    }
    state.senders = senders;
    const masked = state.own.slice();
    addMask(masked, await maskStream(await selfMaskKey(state.seed, state.context), masked.length));
    for (const u of senders) {
      if (u !== this.participant) await addPairMask(masked, this.participant, state.mask.privateKey, u, byId.get(u)!.maskKey, state.context);
    }
    const bytes = new Uint8Array(masked.length * 4);
    const view = new DataView(bytes.buffer);
    for (let i = 0; i < masked.length; i++) view.setUint32(4 * i, masked[i]!, true);
    await this.send('secure-upload', { masked: bytes }, message.round);
  }

  /** The survivors (U3): seed shares of each of them, mask-key shares of the senders that did not upload — never both for one member. */
  async unmask(message: ServerMessage<'secure-unmask'>): Promise<void> {
    const state = this.stateFor(message.round, 'secure-unmask');
    if (state === undefined) return;
    const senders = state.senders;
    if (senders === undefined || state.ownShares === undefined) throw this.refuse(`asked to unmask round ${message.round} before its shares were routed`);
    const uploaded = new Set(message.uploaded);
    if (!uploaded.has(this.participant) || message.uploaded.some((u) => !senders.includes(u)) || uploaded.size !== message.uploaded.length) {
      throw this.refuse(`the uploaders of round ${message.round} must be distinct senders of shares, this one among them`);
    }
    if (uploaded.size < this.threshold) throw this.refuse(`round ${message.round} has ${uploaded.size} uploaders; the threshold is ${this.threshold}`);
    const survivors = [...uploaded].sort().join(',');
    if (state.revealedFor !== undefined && state.revealedFor !== survivors) {
      // A second, different set of survivors would reveal a seed share after a mask-key share of one member (or the reverse).
      throw this.refuse(`round ${message.round}'s survivors were already named as ${state.revealedFor}; this member reveals for one set only`);
    }
    state.revealedFor = survivors;
    const shareOf = (u: string, which: 'maskKey' | 'seed') => (u === this.participant ? state.ownShares![which].y : state.received.get(u)![which]);
    const seedShares = message.uploaded.map((u) => ({ of: u, share: shareOf(u, 'seed') }));
    const maskKeyShares = senders.filter((u) => !uploaded.has(u)).map((u) => ({ of: u, share: shareOf(u, 'maskKey') }));
    await this.send('secure-reveal', { maskKeyShares, seedShares }, message.round);
  }

  /**
   * What this participant learns from, built from the round's sum over `contributors` members:
   * its leave-one-out (S − own)/(n − 1) or the mean S/n, as the session says; a distiller, which
   * uploaded nothing, takes the mean. null when no other member contributed.
   */
  target(message: ServerMessage<'secure-sum'>, kind: KnowledgeKind, rows: number, distiller: boolean): Target | null {
    const length = secureVectorLength(kind, rows, this.info.numClasses);
    if (message.sum.length !== 4 * length) throw this.refuse(`the sum of round ${message.round} has ${message.sum.length} bytes; the round sums ${length} uint32 words`);
    if (message.contributors < 1) throw this.refuse(`the sum of round ${message.round} has no contributors`);
    const view = new DataView(message.sum.buffer, message.sum.byteOffset, message.sum.byteLength);
    const sum = new Uint32Array(length);
    for (let i = 0; i < length; i++) sum[i] = view.getUint32(4 * i, true);
    if (distiller || this.info.secure!.targets === 'all') return this.plausible(kind, meanFromSecureSum(kind, sum, message.contributors), message.contributors, message.round);
    const state = this.state;
    if (state === undefined || state.round !== message.round) throw this.refuse(`the sum of round ${message.round} came to a member that did not upload to it`);
    this.state = undefined;
    const others = othersFromSecureSum(kind, sum, state.own, message.contributors, this.info.numClasses);
    return others === null ? null : this.plausible(kind, others, message.contributors - 1, message.round);
  }

  /** The target, or E_VALUE when no honest members could have summed to it (a hostile upload the coordinator could not see). */
  private plausible(kind: KnowledgeKind, target: Target, others: number, round: number): Target {
    const problem = implausibleSecureTarget(kind, target, this.info.numClasses, others);
    if (problem !== undefined) {
      throw new ProtocolError(ErrorCode.Value, `the secure sum of round ${round} gives a target no honest members could have made (${problem}): some member uploaded values outside the protocol`);
    }
    return target;
  }

  /** The state of `round`, or undefined (with nothing done) for a message of a round this member did not begin here. */
  private stateFor(round: number, event: string): RoundState | undefined {
    const state = this.state;
    if (state === undefined || state.round !== round) {
      if (state !== undefined && round < state.round) return undefined; // an old round's straggler
      throw new ProtocolError(ErrorCode.RoundClosed, `${event} for round ${round}: this member holds no keys for it (it began round ${state?.round ?? 'none'}); waiting for the next round`);
    }
    return state;
  }

  private refuse(message: string): ProtocolError {
    return new ProtocolError(ErrorCode.Secure, message);
  }
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
