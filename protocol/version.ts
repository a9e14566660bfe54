/**
 * Bumped on any change to the wire that an older peer would misread. 2: a round's referenceIds may
 * travel as a bitmap (reference-ids.ts), which a version-1 participant would refuse as a schema error.
 * 3: a weight-averaging session's round may carry the global model to start from (`model`), which
 * a version-2 participant would drop unread and train from a stale model instead.
 */
export const PROTOCOL_VERSION = 3;
