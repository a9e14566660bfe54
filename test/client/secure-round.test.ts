/**
 * The participant's side of secure aggregation (client/secure-round.ts) against a coordinator the
 * test plays by hand: what it sends at each step, and what it refuses whatever the coordinator
 * asks — above all, revealing both secrets of one member.
 */
import { describe, expect, it } from 'vitest';
import { SecureParticipant } from '../../client/secure-round.js';
import { PROTOCOL_VERSION, type ServerMessage, type SessionInfo } from '../../protocol/index.js';

const info: SessionInfo = {
  session: 's', algorithm: 'dml', knowledge: 'reference-predictions', rounds: 3, numClasses: 2, referenceSize: 2, temperature: 1, alpha: 0.5,
  uploadDtype: 'float32', maxMessageBytes: 1 << 20, secure: { threshold: 2, targets: 'others' },
};
const round: ServerMessage<'round'> = { v: PROTOCOL_VERSION, session: 's', round: 1, knowledge: 'reference-predictions', referenceIds: [0, 1], temperature: 1, deadline: 0 };
const header = { v: PROTOCOL_VERSION, session: 's', round: 1 } as const;

/** Three members up to their masked uploads, each step's messages kept by sender. */
async function threeMembers() {
  const sent = new Map<string, Array<{ event: string; message: Record<string, unknown> }>>();
  const ids = ['a', 'b', 'c'];
  const members = new Map(ids.map((id) => {
    sent.set(id, []);
    return [id, new SecureParticipant(id, info, async (event, message) => void sent.get(id)!.push({ event, message: message as Record<string, unknown> }))];
  }));
  const last = (id: string) => sent.get(id)!.at(-1)!.message as never;
  for (const m of members.values()) await m.begin(round, { values: new Float32Array([0.25, 0.75, 0.5, 0.5]), shape: [2, 2] });
  const rosterMembers = ids.map((id) => ({ participant: id, ...(last(id) as { cipherKey: Uint8Array; maskKey: Uint8Array }) }));
  const roster: ServerMessage<'secure-roster'> = { ...header, members: rosterMembers };
  for (const m of members.values()) await m.roster(roster);
  const shares = new Map(ids.map((id) => [id, (last(id) as { shares: Array<{ to: string; nonce: Uint8Array; ciphertext: Uint8Array }> }).shares]));
  for (const [v, m] of members) {
    const routed = ids.filter((u) => u !== v).map((u) => {
      const { nonce, ciphertext } = shares.get(u)!.find((s) => s.to === v)!;
      return { from: u, nonce, ciphertext };
    });
    await m.routed({ ...header, senders: ids, shares: routed });
  }
  return { members, sent, roster, last };
}

describe('a secure member', () => {
  it('reveals seed shares of the uploaders and mask-key shares of the others, and never both for one member', async () => {
    const { members, last } = await threeMembers();
    const a = members.get('a')!;
    await a.unmask({ ...header, uploaded: ['a', 'b'] });
    const reveal = last('a') as { seedShares: Array<{ of: string; share: Uint8Array }>; maskKeyShares: Array<{ of: string; share: Uint8Array }> };
    expect(reveal.seedShares.map((s) => s.of)).toEqual(['a', 'b']);
    expect(reveal.maskKeyShares.map((s) => s.of)).toEqual(['c']);
    for (const s of [...reveal.seedShares, ...reveal.maskKeyShares]) expect(s.share).toHaveLength(32);
    // Asked again with c among the uploaders: it would hand over c's seed share after its mask-key share.
    await expect(a.unmask({ ...header, uploaded: ['a', 'b', 'c'] })).rejects.toThrow(/^E_SECURE: round 1's survivors were already named as a,b; this member reveals for one set only/);
    // The same request again is answered the same way.
    await a.unmask({ ...header, uploaded: ['b', 'a'] });
  });

  it('refuses a roster, routing or unmask request that does not fit the round', async () => {
    const { members, roster } = await threeMembers();
    const b = members.get('b')!;
    await expect(b.unmask({ ...header, uploaded: ['a', 'c'] })).rejects.toThrow(/^E_SECURE: the uploaders of round 1 must be distinct senders of shares, this one among them/);
    await expect(b.unmask({ ...header, uploaded: ['a', 'b', 'x'] })).rejects.toThrow(/^E_SECURE: the uploaders/);
    const fresh = new SecureParticipant('d', info, async () => {});
    await fresh.begin(round, { values: new Float32Array(4), shape: [2, 2] });
    await expect(fresh.roster(roster)).rejects.toThrow(/^E_SECURE: the roster of round 1 leaves this member out/);
    const impostor = { ...roster, members: [...roster.members.slice(0, 2), { ...roster.members[2]!, participant: 'd' }] };
    await expect(fresh.roster(impostor)).rejects.toThrow(/^E_SECURE: the roster of round 1 gives this member keys it did not send/);
    await expect(fresh.routed({ ...header, senders: ['a', 'd'], shares: [] })).rejects.toThrow(/^E_SECURE: shares routed for round 1 before its roster/);
  });
});
