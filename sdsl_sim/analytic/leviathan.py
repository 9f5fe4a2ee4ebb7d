"""Speculative decoding in expectation (Leviathan, Kalman & Matias 2023, arXiv:2211.17192).

One iteration: gamma draft passes, one target pass; tokens emitted = accepted + 1.
"""

import numpy as np


def expected_tokens_per_iteration(alpha, gamma):
    """E[tokens per iteration] = (1 - alpha^(gamma+1)) / (1 - alpha)  (Leviathan eq. 1), i.i.d. acceptance."""
    alpha = np.asarray(alpha, dtype=float)
    gamma = np.asarray(gamma, dtype=float)
    # -expm1(x log a) keeps precision as alpha -> 1, where 1 - alpha^(g+1) cancels.
    return -np.expm1((gamma + 1) * np.log(alpha)) / (1 - alpha)


def expected_tokens_from_prefix_probs(prefix_probs):
    """E[tokens per iteration] = 1 + sum_i r_i for a general acceptance process (sdsl-math.md s.6).

    r_i = P(the first i drafted tokens are all accepted), i = 1..gamma; the last axis runs over i.
    """
    return 1.0 + np.sum(np.asarray(prefix_probs, dtype=float), axis=-1)


def leviathan_speedup(alpha, gamma, cost_ratio):
    """Walltime improvement S = E[tokens] / (gamma c + 1), c = draft pass time / target pass time.

    Leviathan's Theorem 3.8; the target pass is assumed to cost the same for 1 and gamma+1 tokens.
    """
    gamma = np.asarray(gamma, dtype=float)
    return expected_tokens_per_iteration(alpha, gamma) / (gamma * np.asarray(cost_ratio, dtype=float) + 1)
