/**
 * Tokens are kept only as their sha256: the coordinator's tables, the journal and a resumed
 * session's config all name a token by its hash, so that nothing stored lets anyone in.
 */
import { createHash } from 'node:crypto';
import type { ParticipantEntry, SessionConfig } from './session-config.js';

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** The hash of a participant's token, whether the entry holds the token or already its hash. */
export function entryTokenHash(entry: ParticipantEntry): string {
  return 'token' in entry ? hashToken(entry.token) : entry.tokenHash;
}

/** The config with every participant's token replaced by its hash (what the journal keeps). */
export function withTokenHashes(config: SessionConfig): SessionConfig {
  return { ...config, participants: config.participants.map((p) => ({ id: p.id, role: p.role, tokenHash: entryTokenHash(p) })) };
}
