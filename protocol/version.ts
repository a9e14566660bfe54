/**
 * Bumped on any change to the wire that an older peer would misread. 2: a round's referenceIds may
 * travel as a bitmap (reference-ids.ts), which a version-1 participant would refuse as a schema error.
 */
export const PROTOCOL_VERSION = 2;
