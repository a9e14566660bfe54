/** Secure aggregation's network-free pieces, shared by the coordinator and participants (WebCrypto only: no node: imports). */
export * from './fixed-point.js';
export * from './keys.js';
export * from './masks.js';
export * from './shamir.js';
