/**
 * Heterogeneous participants: an experiment's `participants` is a count (every participant a
 * learner with the experiment's `model`) or a list of groups, each with its count, model and role
 * — `[{ count: 5, model: cnn }, { count: 5, model: "mlp:100" }, { count: 1, role: teacher }]`.
 * The roster lays the groups out as the run's members: learners first (p0…), in the order of
 * their groups, then teachers, so that a round row's columns are the learners' and index n (the
 * learner count) onwards are the members that report no rounds.
 */
import type { ModelName } from '../client/models.js';
import { STRATEGIES } from '../server/strategies/index.js';

/** The roles a group can take: the distiller stays the experiment's own field (`distiller`). */
export const GROUP_ROLES = ['participant', 'teacher'] as const;
export type GroupRole = (typeof GROUP_ROLES)[number];

export interface ParticipantGroup {
  count: number;
  /** The experiment's `model` when omitted. */
  model?: ModelName;
  /** participant (contributes and learns) when omitted; a teacher contributes and never learns. */
  role?: GroupRole;
}

/** One member of a run: who it is, what it runs, and which group of the config it came from. */
export interface Member {
  /** Its position in the run: learners 0…n−1, then teachers; also the index of its private shard. */
  index: number;
  id: string;
  model: ModelName;
  role: GroupRole;
  /** Its group's position in the config's list (0 for a plain count). */
  group: number;
}

interface Participation {
  participants: number | readonly ParticipantGroup[];
  model: ModelName;
}

/** The groups a config's `participants` stands for: a count is one group of learners with the experiment's model. */
export function participantGroups(options: Participation): Required<ParticipantGroup>[] {
  const groups = typeof options.participants === 'number' ? [{ count: options.participants }] : options.participants;
  return groups.map((g) => ({ count: g.count, model: g.model ?? options.model, role: g.role ?? 'participant' }));
}

/** Every member, learners first then teachers (module comment), ids p0, p1, … in that order. */
export function roster(options: Participation): Member[] {
  const groups = participantGroups(options).map((g, group) => ({ ...g, group }));
  const ordered = [...groups.filter((g) => g.role === 'participant'), ...groups.filter((g) => g.role === 'teacher')];
  const members: Member[] = [];
  for (const g of ordered) {
    for (let k = 0; k < g.count; k++) members.push({ index: members.length, id: `p${members.length}`, model: g.model, role: g.role, group: g.group });
  }
  return members;
}

/** Members holding a private shard: learners and teachers (the distiller holds none). */
export function participantCount(options: Participation): number {
  return participantGroups(options).reduce((a, g) => a + g.count, 0);
}

/** Members that learn and report every round: the columns of a round row. */
export function learnerCount(options: Participation): number {
  return participantGroups(options).filter((g) => g.role === 'participant').reduce((a, g) => a + g.count, 0);
}

/** The one model every learner and teacher runs, or undefined when they differ. */
export function commonModel(options: Participation): ModelName | undefined {
  const models = new Set(participantGroups(options).map((g) => g.model));
  return models.size === 1 ? [...models][0] : undefined;
}

/**
 * Passes a teacher makes over its own shard before round 1: as many as a learner makes over the
 * whole run (rounds × epochs), so that it starts as trained as a local-only learner ends. A teacher
 * never learns during the run (protocol ROLES), so without this it would share an untrained
 * model's predictions.
 */
export function teacherEpochs(options: { rounds: number; epochs: number }): number {
  return options.rounds * options.epochs;
}

/**
 * Why these groups cannot run `algorithm`, each as [field, sentence]; empty when they can. The
 * algorithm itself is checked by name elsewhere; `centralized` names the pooled baseline.
 */
export function groupRefusals(options: Participation & { algorithm: string }, centralized: string): Array<[string, string]> {
  const problems: Array<[string, string]> = [];
  const groups = participantGroups(options);
  // A role the schema refused is reported on its field; counting learners past it would only add noise.
  if (groups.length === 0 || groups.some((g) => !(GROUP_ROLES as readonly string[]).includes(g.role))) return problems;
  const learners = learnerCount(options);
  const teachers = groups.some((g) => g.role === 'teacher');
  const mixed = commonModel(options) === undefined;
  if (learners < 2) problems.push(['participants', `needs at least 2 learners (role participant); the groups hold ${learners}`]);
  if (options.algorithm === centralized) {
    if (mixed) problems.push(['participants', 'centralized trains one model on the pooled shards: every group needs the same model']);
    if (teachers) problems.push(['participants', 'centralized pools every shard into one learner: it has no teachers']);
    return problems;
  }
  const descriptor = Object.hasOwn(STRATEGIES, options.algorithm) ? STRATEGIES[options.algorithm]! : undefined;
  if (descriptor === undefined) return problems; // refused by name
  if (descriptor.knowledge === 'weights' && mixed) {
    problems.push(['participants', `FedAvg averages weights: every participant needs the same model (the groups have ${[...new Set(groups.map((g) => g.model))].join(', ')})`]);
  }
  if (teachers) {
    if (descriptor.knowledge === 'none') problems.push(['participants', `${options.algorithm} exchanges nothing: a teacher has nothing to contribute`]);
    else if (descriptor.knowledge === 'weights') problems.push(['participants', `${options.algorithm} averages the weights of participants that learn: a teacher's never change, so it would only hold the average back`]);
    else if (descriptor.mode === 'async') problems.push(['participants', `${options.algorithm} runs asynchronously, where every member trains at its own pace: it takes no teachers`]);
  }
  return problems;
}
