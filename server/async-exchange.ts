/**
 * The store behind asynchronous sessions (co-distillation): each participant's latest
 * predictions per reference shard, with when they arrived. It holds at most one entry per
 * (participant, shard) — bounded by participants × reference set — and forgets a participant
 * entirely when it leaves.
 */
import { ErrorCode, ProtocolError, shardIds, type Contribution } from '../protocol/index.js';
import type { AsyncSettings } from './session-config.js';
import type { Strategy } from './strategies/index.js';

interface Entry {
  contribution: Contribution;
  step: number;
  at: number;
}

export type { AsyncSettings };

export interface Ensemble {
  values: Float32Array;
  contributors: number;
  oldestMs: number;
}

export class AsyncExchange {
  private readonly latest = new Map<number, Map<string, Entry>>();

  constructor(
    private readonly strategy: Strategy,
    private readonly settings: AsyncSettings,
    private readonly referenceSize: number,
  ) {}

  rows(shard: number): number {
    return shardIds(this.referenceSize, this.settings.shards, shard).length;
  }

  /** Stores a participant's predictions on a shard (decoded and checked by the coordinator), replacing its older ones. */
  push(participant: string, shard: number, step: number, contribution: Contribution, now = Date.now()): void {
    const entries = this.latest.get(shard) ?? new Map<string, Entry>();
    const previous = entries.get(participant);
    if (previous !== undefined && previous.step > step) {
      throw new ProtocolError(ErrorCode.RoundClosed, `${participant} already pushed shard ${shard} at step ${previous.step}; step ${step} is older`);
    }
    entries.set(participant, { contribution, step, at: now });
    this.latest.set(shard, entries);
  }

  /** The ensemble of the others' predictions on a shard that are younger than the staleness bound, or null. */
  ensembleFor(participant: string, shard: number, now = Date.now()): Ensemble | null {
    const rows = this.rows(shard);
    const fresh = [...(this.latest.get(shard)?.values() ?? [])].filter(
      (e) => e.contribution.participant !== participant && now - e.at <= this.settings.stalenessMs,
    );
    if (fresh.length === 0) return null;
    const { targets } = this.strategy.aggregate(fresh.map((e) => e.contribution), [participant], rows);
    return {
      values: targets.get(participant)!.values,
      contributors: fresh.length,
      oldestMs: Math.max(...fresh.map((e) => now - e.at)),
    };
  }

  forget(participant: string): void {
    for (const entries of this.latest.values()) entries.delete(participant);
  }

  /** Entries held, for tests of the memory bound. */
  get size(): number {
    let n = 0;
    for (const entries of this.latest.values()) n += entries.size;
    return n;
  }
}
