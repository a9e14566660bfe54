/**
 * The round journal: every session, every aggregated round's contributions and target digests,
 * and every completed round, in an embedded SQLite database (better-sqlite3), so that a
 * coordinator killed at any instant — kill -9 included — restarts from its last completed
 * round, and anyone can recompute a round's aggregate from what was journalled.
 *
 * Durability: WAL mode; every write is one transaction, committed before the coordinator acts on
 * it (before the targets of an aggregated round go out, before the next round opens). A process
 * crash loses nothing committed; `synchronous = NORMAL` trades the last transactions before a
 * power cut for speed, which FULL would not (set `durability: 'full'` where that matters).
 *
 * What is kept: the session config with tokens replaced by their sha256 (a journal that leaks
 * lets no one in), round records, and the contributions behind each aggregate (the knowledge
 * participants chose to share; never their data). Contributions of a round that was aggregated
 * but never completed are discarded when the round is run again.
 */
import Database from 'better-sqlite3';
import type { Contribution, KnowledgeKind } from '../protocol/index.js';
import type { RoundRecord, SessionConfig } from './session-config.js';

export { valuesDigest } from './session-config.js';

const SCHEMA_VERSION = 1;

/** A session as journalled: its config without tokens, and how far it got. */
export interface StoredSession {
  config: SessionConfig;
  /** Completed rounds (checkpoints for asynchronous sessions), in order. */
  history: RoundRecord[];
  endedAt: number | null;
  endReason: string | null;
}

/** What a session tells its journal, in the order it happens. */
export interface SessionJournal {
  /** A round's aggregate is computed: its contributions (in aggregation order) and what each learner will receive. */
  aggregated(round: number, kind: KnowledgeKind, contributions: readonly Contribution[], targetDigests: ReadonlyMap<string, string | null>): void;
  /** A round is over (completed or failed): the session goes on from here after a restart. */
  completed(record: RoundRecord): void;
  ended(reason: string): void;
  /** What `aggregated` recorded for a round, in aggregation order (a resumed weight-averaging session recomputes its global model from it). */
  contributions(round: number): Contribution[];
}

export interface JournalOptions {
  durability?: 'normal' | 'full';
}

interface ContributionRow {
  participant: string;
  data: Buffer;
  sample_count: number | null;
  label_counts: string | null;
}

export class Journal {
  readonly path: string;
  private readonly db: Database.Database;

  constructor(path: string, options: JournalOptions = {}) {
    this.path = path;
    try {
      this.db = new Database(path);
    } catch (error) {
      throw new Error(`cannot open the journal ${path}: ${(error as Error).message}`);
    }
    this.db.pragma('journal_mode = WAL');
    this.db.pragma(`synchronous = ${options.durability === 'full' ? 'FULL' : 'NORMAL'}`);
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS sessions (
        id TEXT PRIMARY KEY, config TEXT NOT NULL, created_at INTEGER NOT NULL, ended_at INTEGER, end_reason TEXT);
      CREATE TABLE IF NOT EXISTS rounds (
        session TEXT NOT NULL, round INTEGER NOT NULL, record TEXT NOT NULL, PRIMARY KEY (session, round));
      CREATE TABLE IF NOT EXISTS contributions (
        session TEXT NOT NULL, round INTEGER NOT NULL, seq INTEGER NOT NULL, participant TEXT NOT NULL, kind TEXT NOT NULL,
        data BLOB NOT NULL, sample_count INTEGER, label_counts TEXT, PRIMARY KEY (session, round, seq));
      CREATE TABLE IF NOT EXISTS targets (
        session TEXT NOT NULL, round INTEGER NOT NULL, participant TEXT NOT NULL, digest TEXT, PRIMARY KEY (session, round, participant));
    `);
    const version = this.db.prepare<[], { value: string }>(`SELECT value FROM meta WHERE key = 'schema'`).get();
    if (version === undefined) this.db.prepare(`INSERT INTO meta (key, value) VALUES ('schema', ?)`).run(String(SCHEMA_VERSION));
    else if (Number(version.value) !== SCHEMA_VERSION) {
      throw new Error(`the journal ${path} has schema version ${version.value}; this coordinator reads version ${SCHEMA_VERSION}`);
    }
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  /** Sessions that have not ended, for a restarted coordinator to resume. */
  unfinished(): StoredSession[] {
    const rows = this.db.prepare<[], { id: string }>(`SELECT id FROM sessions WHERE ended_at IS NULL ORDER BY created_at, id`).all();
    return rows.map((r) => this.session(r.id)!);
  }

  session(id: string): StoredSession | undefined {
    const row = this.db
      .prepare<[string], { config: string; ended_at: number | null; end_reason: string | null }>(`SELECT config, ended_at, end_reason FROM sessions WHERE id = ?`)
      .get(id);
    if (row === undefined) return undefined;
    const history = this.db
      .prepare<[string], { record: string }>(`SELECT record FROM rounds WHERE session = ? ORDER BY round`)
      .all(id)
      .map((r) => JSON.parse(r.record) as RoundRecord);
    return { config: JSON.parse(row.config) as SessionConfig, history, endedAt: row.ended_at, endReason: row.end_reason };
  }

  /** Records a new session; its config must already carry token hashes, never tokens. */
  createSession(config: SessionConfig): void {
    if (config.participants.some((p) => 'token' in p)) throw new Error('journal: a session config must carry token hashes, not tokens');
    const existing = this.db.prepare<[string], { ended_at: number | null }>(`SELECT ended_at FROM sessions WHERE id = ?`).get(config.id);
    if (existing !== undefined) {
      throw new Error(
        existing.ended_at === null
          ? `the journal ${this.path} already holds session "${config.id}": resume it rather than creating it again`
          : `session "${config.id}" has already run to its end in the journal ${this.path}: pick a new session id or another journal`,
      );
    }
    this.db.prepare(`INSERT INTO sessions (id, config, created_at) VALUES (?, ?, ?)`).run(config.id, JSON.stringify(config), Date.now());
  }

  /** The writer a running session uses. */
  forSession(id: string): SessionJournal {
    const db = this.db;
    const deleteContributions = db.prepare(`DELETE FROM contributions WHERE session = ? AND round = ?`);
    const deleteTargets = db.prepare(`DELETE FROM targets WHERE session = ? AND round = ?`);
    const insertContribution = db.prepare(
      `INSERT INTO contributions (session, round, seq, participant, kind, data, sample_count, label_counts) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    const insertTarget = db.prepare(`INSERT INTO targets (session, round, participant, digest) VALUES (?, ?, ?, ?)`);
    const aggregated = db.transaction((round: number, kind: KnowledgeKind, contributions: readonly Contribution[], digests: ReadonlyMap<string, string | null>) => {
      // A round run again (after a restart) replaces its first aggregate.
      deleteContributions.run(id, round);
      deleteTargets.run(id, round);
      contributions.forEach((c, seq) => {
        const bytes = Buffer.from(c.values.buffer, c.values.byteOffset, c.values.byteLength);
        insertContribution.run(id, round, seq, c.participant, kind, bytes, c.sampleCount ?? null, c.labelCounts === undefined ? null : JSON.stringify(c.labelCounts));
      });
      for (const [participant, digest] of digests) insertTarget.run(id, round, participant, digest);
    });
    const completed = db.prepare(`INSERT OR REPLACE INTO rounds (session, round, record) VALUES (?, ?, ?)`);
    const ended = db.prepare(`UPDATE sessions SET ended_at = ?, end_reason = ? WHERE id = ?`);
    return {
      aggregated: (round, kind, contributions, digests) => aggregated(round, kind, contributions, digests),
      completed: (record) => completed.run(id, record.round, JSON.stringify(record)),
      ended: (reason) => ended.run(Date.now(), reason, id),
      contributions: (round) => this.contributions(id, round),
    };
  }

  /** The contributions behind a round's aggregate, in the order the strategy received them. */
  contributions(session: string, round: number): Contribution[] {
    const rows = this.db
      .prepare<[string, number], ContributionRow>(
        `SELECT participant, data, sample_count, label_counts FROM contributions WHERE session = ? AND round = ? ORDER BY seq`,
      )
      .all(session, round);
    return rows.map((r) => {
      // Copied into a buffer of its own: SQLite's may sit at an offset a Float32Array cannot view.
      const values = new Float32Array(new Uint8Array(r.data).buffer);
      const c: Contribution = { participant: r.participant, values };
      if (r.sample_count !== null) c.sampleCount = r.sample_count;
      if (r.label_counts !== null) c.labelCounts = JSON.parse(r.label_counts) as number[];
      return c;
    });
  }

  /** sha256 of each learner's target in a round (null: it had no peers to learn from). */
  targetDigests(session: string, round: number): Map<string, string | null> {
    const rows = this.db
      .prepare<[string, number], { participant: string; digest: string | null }>(`SELECT participant, digest FROM targets WHERE session = ? AND round = ?`)
      .all(session, round);
    return new Map(rows.map((r) => [r.participant, r.digest]));
  }
}
