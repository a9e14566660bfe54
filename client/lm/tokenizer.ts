/**
 * The byte-level tokenizer of codistill's language models: a text is its UTF-8 bytes (tokens
 * 0–255), each sequence starts with a BOS token (256). Any text, in any language, has a
 * tokenization, and bits per byte is the mean next-token cross-entropy in bits.
 *
 * A model's card records `ByteTokenizer.description`; two models, or a model and a session,
 * can exchange per-token knowledge only if their descriptions are equal (`checkSameTokenizer`).
 */
import { CodedError } from '../../protocol/errors.js';

export interface TokenizerDescription {
  kind: 'bytes';
  /** How text becomes bytes. */
  encoding: 'utf-8';
  /** 256 byte tokens + BOS. */
  vocabSize: number;
  /** The token each sequence starts from (never a target). */
  bos: number;
  /** Tokens 0–255 are the byte values themselves. */
  description: string;
}

export class TokenizerError extends CodedError<'E_TOKENIZER' | 'E_VOCAB'> {
  override readonly name = 'TokenizerError';
}

export const BYTE_VOCAB = 257;
export const BOS = 256;

export const BYTE_TOKENIZER: TokenizerDescription = {
  kind: 'bytes',
  encoding: 'utf-8',
  vocabSize: BYTE_VOCAB,
  bos: BOS,
  description: 'UTF-8 bytes as tokens 0-255; token 256 begins every sequence (BOS) and is never predicted',
};

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: false });

export function encodeText(text: string): Uint8Array {
  return encoder.encode(text);
}

/** Bytes back to text; an incomplete or invalid UTF-8 sequence (a sampled model may make one) becomes U+FFFD. */
export function decodeTokens(tokens: ArrayLike<number>): string {
  const bytes: number[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t === BOS) continue;
    if (!Number.isInteger(t) || t < 0 || t > 255) throw new TokenizerError('E_VOCAB', `token ${t} at position ${i} is outside the byte vocabulary (0–255, BOS 256)`);
    bytes.push(t);
  }
  return decoder.decode(Uint8Array.from(bytes));
}

/** Refuses, with both descriptions in the message, a tokenizer that is not the one expected. */
export function checkSameTokenizer(expected: TokenizerDescription, got: unknown, where: string): void {
  const same =
    typeof got === 'object' && got !== null &&
    (['kind', 'encoding', 'vocabSize', 'bos'] as const).every((k) => (got as Record<string, unknown>)[k] === expected[k]);
  if (!same) {
    const fields = (x: unknown) => (typeof x === 'object' && x !== null ? ['kind', 'encoding', 'vocabSize', 'bos'].map((k) => `${k}=${String((x as Record<string, unknown>)[k])}`).join(',') : String(x));
    throw new TokenizerError('E_TOKENIZER', `${where} uses the tokenizer {${fields(got)}}; expected {${fields(expected)}}: token ids would mean different things`);
  }
}
