"""The throughput-optimal lookahead and the SDSL closed form with Lambert W (sdsl-math.md s.2).

Cost model of the paper: a pass of P params costs 2P FLOPs, an iteration gamma 2N + 2M, so with
c = N / M everything depends on alpha and c alone:

    S(gamma) = (1 - alpha^(gamma+1)) / ((1 - alpha)(c gamma + 1))       speedup over plain decoding
    T(gamma) = S(gamma) / (2 M)                                          tokens per FLOP (blog Eq. 4)

dS/dgamma = 0 gives T* = -ln(alpha) / (2 N (alpha - 1) W_{-1}(-alpha^(M/N - 1) / e)).
With v = -W_{-1}(...) >= 1: alpha^(gamma*+1) = 1/v and S* = (M/N) ln(1/alpha) / ((1 - alpha) v).

The same functions serve measured pass times: pass any c = draft time / target time.
"""

import numpy as np

from ..errors import InputError
from .leviathan import leviathan_speedup


def check_alpha(alpha):
    """Raise InputError unless every alpha lies in the open interval (0, 1)."""
    alpha = np.asarray(alpha, dtype=float)
    bad = ~((alpha > 0) & (alpha < 1))
    if np.any(bad):
        raise InputError(f"alpha {np.ravel(alpha)[np.flatnonzero(np.ravel(bad))[0]]:g} is outside (0, 1)")
    return alpha


def check_cost_ratio(cost_ratio):
    """Raise InputError unless 0 < c < 1 (a draft pass must be cheaper than a target pass)."""
    c = np.asarray(cost_ratio, dtype=float)
    bad = ~((c > 0) & (c < 1))
    if np.any(bad):
        raise InputError(
            f"cost ratio (draft/target) {np.ravel(c)[np.flatnonzero(np.ravel(bad))[0]]:g} is outside (0, 1); "
            "the draft must be smaller than the target"
        )
    return c


def _t_minus_log1p(t):
    """g(t) = t - ln(1 + t) without the cancellation that the direct form suffers for small t."""
    small = t < 1e-3
    ts = np.where(small, t, 0.0)
    series = ts * ts * (0.5 - ts * (1 / 3 - ts * (0.25 - ts * (0.2 - ts / 6))))
    return np.where(small, series, t - np.log1p(np.where(small, 0.0, t)))


def neg_lambertw_m1_of_neg_exp(delta):
    """t = v - 1 where v = -W_{-1}(-e^{-(1 + delta)}), for delta >= 0, evaluated in log space.

    v solves v - ln v = 1 + delta; with t = v - 1, g(t) = t - ln(1 + t) = delta. This stays exact where
    the direct argument -alpha^(M/N - 1)/e underflows to -0.0 (delta > ~708, where scipy's lambertw
    returns -inf) and near the branch point -1/e (delta -> 0: alpha -> 1 or N -> M), where returning
    t rather than v keeps the small quantity that gamma* depends on.
    Start: the branch-point series t = p + p^2/3 (p = sqrt(2 delta)) below delta = 2, the asymptotic
    v = u + ln(u + ln u) above; both within 5%. Newton's relative error squares with a constant
    <= 1/2 each step (g is convex, g''/2g' = 1/(2t(1+t))), so five steps reach machine precision.
    """
    delta = np.asarray(delta, dtype=float)
    u = 1 + delta
    t = np.where(delta < 2, np.sqrt(2 * delta) + 2 * delta / 3, u + np.log(u + np.log(u)) - 1)
    t = np.maximum(t, 1e-300)  # delta = 0 has root t = 0; keep Newton's division defined
    for _ in range(4):
        t = t - (t - np.log1p(t) - delta) * (1 + t) / t
    return t - (_t_minus_log1p(t) - delta) * (1 + t) / t  # last step free of cancellation for small t


def _lambert_solution(alpha, cost_ratio):
    """(t, ln(1/alpha)) for the stationary point of S(gamma); see neg_lambertw_m1_of_neg_exp."""
    alpha = check_alpha(alpha)
    c = check_cost_ratio(cost_ratio)
    log_inv_alpha = -np.log(alpha)
    delta = (1 / c - 1) * log_inv_alpha  # u - 1 with u = 1 + (M/N - 1) ln(1/alpha)
    return neg_lambertw_m1_of_neg_exp(delta), log_inv_alpha


def optimal_gamma(alpha, cost_ratio):
    """Real-valued throughput-optimal lookahead gamma* = ln(v) / ln(1/alpha) - 1, or 0 where it is < 0.

    gamma* < 0 means no lookahead helps: S(gamma) then decreases from S(0) = 1 on gamma >= 0.
    """
    t, log_inv_alpha = _lambert_solution(alpha, cost_ratio)
    return np.maximum(np.log1p(t) / log_inv_alpha - 1, 0.0)


def speculation_helps(alpha, cost_ratio):
    """True where some integer lookahead gamma >= 1 beats plain decoding: where `best_integer_gamma` > 0.

    A lookahead is a whole number of draft tokens, so this follows the integer optimum, not the real one:
    a real optimum gamma* in (0, 1) can have S(gamma*) > 1 while S(1) <= S(0) = 1, and then no lookahead
    a decoder can run helps (gamma* > 0 is necessary, not sufficient)."""
    best = best_integer_gamma(alpha, cost_ratio)
    return np.asarray(best) > 0 if np.ndim(best) else bool(best > 0)


def optimal_speedup(alpha, cost_ratio):
    """Lambert-W speedup S* = 2 M T* = (1/c) ln(1/alpha) / ((1 - alpha) v); exactly 1 where no gamma helps."""
    alpha = np.asarray(alpha, dtype=float)
    t, log_inv_alpha = _lambert_solution(alpha, cost_ratio)
    s = log_inv_alpha / (np.asarray(cost_ratio, dtype=float) * (1 - alpha) * (1 + t))
    return np.where(np.log1p(t) / log_inv_alpha - 1 > 0, s, 1.0)


def optimal_throughput_tokens_per_flop(alpha, target_params, draft_params):
    """T* in tokens per FLOP (blog Eq. 4 maximised over real gamma >= 0): S* / (2 M)."""
    target_params = np.asarray(target_params, dtype=float)
    c = np.asarray(draft_params, dtype=float) / target_params
    return optimal_speedup(alpha, c) / (2 * target_params)


def throughput_tokens_per_flop(alpha, gamma, target_params, draft_params):
    """T(gamma) = (1 - alpha^(gamma+1)) / ((1 - alpha)(2 N gamma + 2 M))  (blog Eq. 4)."""
    target_params = np.asarray(target_params, dtype=float)
    c = np.asarray(draft_params, dtype=float) / target_params
    return leviathan_speedup(alpha, gamma, c) / (2 * target_params)


def best_integer_gamma(alpha, cost_ratio):
    """The integer gamma >= 0 maximising S(gamma): floor or ceil of gamma*, S being unimodal in gamma."""
    g = optimal_gamma(alpha, cost_ratio)
    lo, hi = np.floor(g), np.ceil(g)
    pick_hi = leviathan_speedup(alpha, hi, cost_ratio) > leviathan_speedup(alpha, lo, cost_ratio)
    best = np.where(pick_hi, hi, lo).astype(np.int64)
    return best if best.ndim else int(best)
