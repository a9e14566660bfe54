/** Bumped on any change to the wire that an older peer would misread. */
export const PROTOCOL_VERSION = 1;
