/** Which messages encodeMessage sends through z.safeEncode: every one with a codec field, however deep, and no other. */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { carriesCodec, clientMessages, replyMessages, roundMessage, serverMessages } from '../../protocol/messages.js';

describe('carriesCodec', () => {
  it('finds the round message\'s reference-id codec, in the general and the per-session schema', () => {
    expect(carriesCodec(serverMessages.round)).toBe(true);
    expect(carriesCodec(roundMessage(1000))).toBe(true);
  });

  it('finds a codec nested in optional, array, union, record and extended objects', () => {
    const codec = z.codec(z.string(), z.number(), { decode: Number, encode: String });
    expect(carriesCodec(z.object({ a: z.array(z.union([z.boolean(), codec.optional()])) }))).toBe(true);
    expect(carriesCodec(z.object({ a: z.record(z.string(), codec.nullable()) }))).toBe(true);
    expect(carriesCodec(z.object({ a: z.number() }).extend({ b: z.tuple([z.string(), codec]) }))).toBe(true);
    expect(carriesCodec(z.lazy(() => z.string()))).toBe(true); // cannot be walked: encoded the safe way
    expect(carriesCodec(z.object({ a: z.array(z.union([z.boolean(), z.string().optional()])) }))).toBe(false);
  });

  it('sends no other protocol message through the encoder: each one\'s wire form is its value', () => {
    const sides = { client: clientMessages, reply: replyMessages, server: serverMessages } as Record<string, Record<string, z.ZodType>>;
    const withCodec = Object.entries(sides).flatMap(([side, schemas]) =>
      Object.entries(schemas).filter(([, schema]) => carriesCodec(schema)).map(([name]) => `${side}.${name}`));
    expect(withCodec).toEqual(['server.round']);
  });
});
