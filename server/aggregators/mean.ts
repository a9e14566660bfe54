/**
 * Mean of probabilities: p̄ = (1/n) Σ_k p_k, per reference sample and class.
 *
 * The peer ensemble of deep mutual learning (Zhang et al. 2018, eq. 10 for K > 2 networks,
 * there over the *other* networks: see aggregateExcluding and leaveOneOutAggregates, which use
 * one float64 sum for all n targets). A mean of distributions is a distribution, so rows stay
 * on the simplex without renormalising.
 */
import { meanOf } from '../aggregate.js';
import { checkContributions, type Aggregator } from './aggregator.js';

export const mean: Aggregator = (contributions, options) => meanOf(checkContributions('mean', contributions, options));
