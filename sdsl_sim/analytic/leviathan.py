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


def alpha_from_expected_tokens(tokens: float, gamma: int) -> float:
    """The i.i.d. alpha at which a chain of gamma drafts yields `tokens` per iteration (eq. 1 inverted;
    it rises monotonically in alpha, so bisection to double precision). InputError unless
    1 < tokens < gamma + 1 (alpha in (0, 1))."""
    from ..errors import InputError

    if not (gamma >= 1 and 1.0 < tokens < gamma + 1):
        raise InputError(f"acceptance length {tokens!r} at {gamma} draft tokens: expected a value strictly "
                         f"between 1 and {gamma + 1} (every iteration yields the bonus token, at most all drafts)")
    lo, hi = 0.0, 1.0
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if expected_tokens_per_iteration(mid, gamma) < tokens else (lo, mid)
    return 0.5 * (lo + hi)
