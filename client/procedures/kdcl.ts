/**
 * KDCL across nodes (Guo et al. 2020): a participant shares softmax(z/T) on the round's reference
 * samples and learns from its target exactly as in deep mutual learning; only the target differs
 * (the server sends the ensemble of all, the participant's own prediction included).
 */
export { dml as kdcl } from './dml.js';
