export * from './codec.js';
export * from './errors.js';
export * from './knowledge.js';
export * from './messages.js';
export * from './tensor.js';
export * from './version.js';
export * from './sha256.js';
export * from './sparse.js';
