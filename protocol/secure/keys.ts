/**
 * The key material of secure aggregation (Bonawitz et al. 2017, "Practical Secure Aggregation
 * for Privacy-Preserving Machine Learning", §4), all from the platform's WebCrypto
 * (`globalThis.crypto.subtle`, in Node 20 and in browsers alike): X25519 key agreement, HKDF-SHA-256
 * to turn an agreed secret or a seed into a key, AES-256-CTR for mask streams (masks.ts) and
 * AES-256-GCM for the secret shares one member sends another through the coordinator. Nothing
 * here is a home-made cipher.
 *
 * Every member makes two X25519 key pairs per round: one (c) to agree share-encryption keys with
 * each other member, one (s) to agree pairwise mask keys. Keys are fresh every round, so a mask key
 * the coordinator reconstructs for a member that dropped unmasks nothing of another round.
 */

// Type-only (erased from the build): the platform's WebCrypto types as @types/node names them.
import type { webcrypto } from 'node:crypto';
import { ErrorCode, ProtocolError } from '../errors.js';

type CryptoKey = webcrypto.CryptoKey;
type KeyUsage = webcrypto.KeyUsage;
const subtle = (): webcrypto.SubtleCrypto => globalThis.crypto.subtle as webcrypto.SubtleCrypto;

/** Bytes of an X25519 key (public or private) and of a self-mask seed. */
export const KEY_BYTES = 32;
/** AES-GCM nonce bytes (the recommended 96 bits; random per message, one message per key). */
export const NONCE_BYTES = 12;
/** What one member sends another: its share of the mask private key and of the self-mask seed, 32 bytes each. */
export const SHARE_PLAINTEXT_BYTES = 2 * KEY_BYTES;
/** The ciphertext of those 64 bytes with its 16-byte GCM tag. */
export const SHARE_CIPHERTEXT_BYTES = SHARE_PLAINTEXT_BYTES + 16;

/** PKCS#8 header of a raw X25519 private key (RFC 8410): WebCrypto imports private keys only this way. */
const PKCS8_X25519_PREFIX = new Uint8Array([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20]);

export type { CryptoKey };

export interface KeyPair {
  privateKey: CryptoKey;
  /** The raw 32 bytes sent to the coordinator. */
  publicKey: Uint8Array;
  /** The raw 32 private bytes: what is secret-shared (the mask key pair's only). */
  privateBytes: Uint8Array;
}

/** Where a key is used: binds every derived key to one session, round and purpose. */
export interface RoundContext {
  session: string;
  round: number;
}

/**
 * The X25519 public keys of small order, as RFC 7748 decodes them (the top bit of the last byte
 * ignored): 0, 1, the two points of order 8, and p − 1, p, p + 1 (libsodium's blocklist, its
 * `has_small_order`). Agreeing with one gives the all-zero secret, which WebCrypto refuses with an
 * OperationError: a member announcing one would break every other member's share encryption and
 * pairwise masks, so such a key is refused where it arrives.
 */
const SMALL_ORDER_KEYS: readonly string[] = [
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000000',
  'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800',
  '5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
];

/** Refuses (E_SECURE, naming `whose`) a public key that is not KEY_BYTES bytes or is of small order: no agreement with it yields a key. */
export function checkPublicKey(key: Uint8Array, whose: string): void {
  if (key.length !== KEY_BYTES) throw new ProtocolError(ErrorCode.Secure, `${whose} has ${key.length} bytes; an X25519 public key has ${KEY_BYTES}`);
  let hex = '';
  for (let i = 0; i < KEY_BYTES; i++) hex += (i === KEY_BYTES - 1 ? key[i]! & 0x7f : key[i]!).toString(16).padStart(2, '0');
  if (SMALL_ORDER_KEYS.includes(hex)) {
    throw new ProtocolError(ErrorCode.Secure, `${whose} ${hex === SMALL_ORDER_KEYS[0] ? 'is all zeros' : 'is a point of small order'}: no key can be agreed with it`);
  }
}

export async function generateKeyPair(): Promise<KeyPair> {
  const pair = (await subtle().generateKey({ name: 'X25519' }, true, ['deriveBits'])) as webcrypto.CryptoKeyPair;
  const publicKey = new Uint8Array(await subtle().exportKey('raw', pair.publicKey));
  const pkcs8 = new Uint8Array(await subtle().exportKey('pkcs8', pair.privateKey));
  return { privateKey: pair.privateKey, publicKey, privateBytes: pkcs8.slice(pkcs8.length - KEY_BYTES) };
}

/** A private key from its raw 32 bytes (one the coordinator reconstructed from shares). */
export async function importPrivateKey(bytes: Uint8Array): Promise<CryptoKey> {
  if (bytes.length !== KEY_BYTES) throw new RangeError(`an X25519 private key has ${KEY_BYTES} bytes, not ${bytes.length}`);
  const pkcs8 = new Uint8Array(PKCS8_X25519_PREFIX.length + KEY_BYTES);
  pkcs8.set(PKCS8_X25519_PREFIX);
  pkcs8.set(bytes, PKCS8_X25519_PREFIX.length);
  return subtle().importKey('pkcs8', pkcs8, { name: 'X25519' }, true, ['deriveBits']);
}

/** The public half of a private key: how a reconstructed key is checked against the one its member announced. */
export async function publicKeyOf(privateKey: CryptoKey): Promise<Uint8Array> {
  const jwk = await subtle().exportKey('jwk', privateKey);
  return base64UrlBytes(jwk.x ?? '');
}

/** The X25519 shared secret of a private key and another member's raw public key. */
export async function agree(privateKey: CryptoKey, publicKey: Uint8Array): Promise<Uint8Array> {
  const peer = await subtle().importKey('raw', publicKey, { name: 'X25519' }, false, []);
  return new Uint8Array(await subtle().deriveBits({ name: 'X25519', public: peer } as never, privateKey, 8 * KEY_BYTES));
}

type Purpose = 'pair-mask' | 'self-mask' | 'share-encryption';

/** HKDF-SHA-256 (RFC 5869) from a secret to an AES-256 key, salted with the session and round, its info naming the purpose. */
async function deriveKey(secret: Uint8Array, context: RoundContext, purpose: Purpose, algorithm: 'AES-CTR' | 'AES-GCM'): Promise<CryptoKey> {
  const base = await subtle().importKey('raw', secret, 'HKDF', false, ['deriveKey']);
  const salt = utf8(`codistill/secure-aggregation/v1|${context.session}|${context.round}`);
  const usages: KeyUsage[] = algorithm === 'AES-CTR' ? ['encrypt'] : ['encrypt', 'decrypt'];
  return subtle().deriveKey({ name: 'HKDF', hash: 'SHA-256', salt, info: utf8(purpose) }, base, { name: algorithm, length: 256 }, false, usages);
}

/** The AES-CTR key of the mask two members share: from the X25519 agreement of their mask keys. */
export async function pairMaskKey(ownMaskKey: CryptoKey, peerMaskPublic: Uint8Array, context: RoundContext): Promise<CryptoKey> {
  return deriveKey(await agree(ownMaskKey, peerMaskPublic), context, 'pair-mask', 'AES-CTR');
}

/** The AES-CTR key of a member's self mask: from its 32-byte seed. */
export function selfMaskKey(seed: Uint8Array, context: RoundContext): Promise<CryptoKey> {
  return deriveKey(seed, context, 'self-mask', 'AES-CTR');
}

/** The AES-GCM key two members encrypt shares to each other with: from the agreement of their share-encryption keys. */
export async function shareEncryptionKey(ownCipherKey: CryptoKey, peerCipherPublic: Uint8Array, context: RoundContext): Promise<CryptoKey> {
  return deriveKey(await agree(ownCipherKey, peerCipherPublic), context, 'share-encryption', 'AES-GCM');
}

/** Binds a ciphertext to its sender, recipient, session and round: the coordinator cannot move it to another. */
function shareAad(context: RoundContext, from: string, to: string): Uint8Array {
  return utf8(`${context.session}|${context.round}|${from}|${to}`);
}

export async function encryptShare(key: CryptoKey, plaintext: Uint8Array, context: RoundContext, from: string, to: string): Promise<{ nonce: Uint8Array; ciphertext: Uint8Array }> {
  const nonce = globalThis.crypto.getRandomValues(new Uint8Array(NONCE_BYTES));
  const ciphertext = new Uint8Array(await subtle().encrypt({ name: 'AES-GCM', iv: nonce, additionalData: shareAad(context, from, to) }, key, plaintext));
  return { nonce, ciphertext };
}

/** The plaintext, or an error when the ciphertext, nonce or binding was altered (GCM's tag fails). */
export async function decryptShare(key: CryptoKey, nonce: Uint8Array, ciphertext: Uint8Array, context: RoundContext, from: string, to: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await subtle().decrypt({ name: 'AES-GCM', iv: nonce, additionalData: shareAad(context, from, to) }, key, ciphertext));
  } catch {
    throw new ProtocolError(ErrorCode.Secure, `the share ${from} sent ${to} for round ${context.round} does not decrypt: it was altered or is not for this round`);
  }
}

export function randomSeed(): Uint8Array {
  return globalThis.crypto.getRandomValues(new Uint8Array(KEY_BYTES));
}

function utf8(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

function base64UrlBytes(text: string): Uint8Array {
  const base64 = text.replace(/-/g, '+').replace(/_/g, '/');
  const binary = atob(base64 + '='.repeat((4 - (base64.length % 4)) % 4));
  return Uint8Array.from(binary, (ch) => ch.charCodeAt(0));
}
