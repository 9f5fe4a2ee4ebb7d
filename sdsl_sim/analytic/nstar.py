"""The throughput-optimal draft size N*(M, D) (sdsl-math.md s.5).

Composes the perplexity law, the alpha law and the Lambert-W optimum: for fixed target size M and
training tokens D, T*(N) is unimodal in N; N* is its argmax. The paper summarises N* with a line
(blog Equation 11) fitted over its 13 target sizes.
"""

from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from .laws import ALPHA_LAW, alpha_from_perplexity, perplexity
from .optimum import optimal_gamma, optimal_speedup

# Blog Equation 11: N* = mu M + M0.
LINEAR_LAW_MU = 2.71e-3
LINEAR_LAW_M0_PARAMS = 87.1e6

# The paper's 13 target sizes (sdsl-math.md s.5): OPT, Qwen1.5, Qwen2.5 families and Seed-OSS-36B.
PAPER_TARGET_PARAMS = (13e9, 30e9, 66e9, 70e9, 70e9, 14e9, 32e9, 72e9, 110e9, 14e9, 32e9, 72e9, 36e9)

# Search N over [M / 1e5, M / 2]: N* sits near M / 100 to M / 400 for every M the law covers.
SEARCH_LOW_FRACTION = 1e-5
SEARCH_HIGH_FRACTION = 0.5
SEARCH_GRID_POINTS = 241  # the log-spaced scan that brackets the optimum
SEARCH_XATOL = 1e-9  # the bounded search's tolerance in log N


def n_star_linear(target_params, mu: float = LINEAR_LAW_MU, m0_params: float = LINEAR_LAW_M0_PARAMS):
    """The paper's linear law N*(M) = mu M + M0 (blog Equation 11)."""
    return mu * np.asarray(target_params, dtype=float) + m0_params


def _speedup_of_draft(log_draft_params, target_params, target_ppl, train_tokens):
    """S*(N) for the law's alpha; 0 where the law's alpha leaves (0, 1) (no valid draft there)."""
    draft_params = np.exp(log_draft_params)
    alpha = alpha_from_perplexity(perplexity(draft_params, train_tokens), target_ppl)
    valid = (alpha > 0) & (alpha < 1)
    safe_alpha = np.where(valid, alpha, 0.5)
    return np.where(valid, optimal_speedup(safe_alpha, draft_params / target_params), 0.0)


@dataclass(frozen=True)
class NStar:
    target_params: float
    train_tokens: float
    n_star_params: float
    alpha_at_n_star: float
    gamma_opt_at_n_star: float
    speedup_at_n_star: float
    draft_perplexity: float
    target_perplexity: float


def n_star(target_params: float, train_tokens: float) -> NStar:
    """Numerical argmax over draft size of the Lambert-W throughput T*(alpha(ppl(N, D), ppl(M, D)), M, N).

    A log-spaced scan brackets the maximum (T* is flat and zero where the law's alpha is invalid,
    which would stall a bracketing optimiser), then a bounded scalar search refines it in log N.
    """
    if not target_params > 0 or not train_tokens > 0:
        raise InputError(f"target params {target_params:g} and train tokens {train_tokens:g} must be positive")
    target_ppl = perplexity(target_params, train_tokens)
    grid = np.linspace(np.log(target_params * SEARCH_LOW_FRACTION), np.log(target_params * SEARCH_HIGH_FRACTION),
                       SEARCH_GRID_POINTS)
    speedups = _speedup_of_draft(grid, target_params, target_ppl, train_tokens)
    i = int(np.argmax(speedups))
    if speedups[i] <= 1.0:
        raise InputError(
            f"no draft size helps target params {target_params:g} at train tokens {train_tokens:g}: "
            "the alpha law gives no draft with speedup > 1"
        )
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)]
    from scipy.optimize import minimize_scalar  # late: scipy.optimize costs ~0.2 s to import

    result = minimize_scalar(
        lambda x: -_speedup_of_draft(x, target_params, target_ppl, train_tokens),
        bounds=(lo, hi),
        method="bounded",
        options={"xatol": SEARCH_XATOL},
    )
    draft_params = float(np.exp(result.x))
    draft_ppl = float(perplexity(draft_params, train_tokens))
    alpha = float(alpha_from_perplexity(draft_ppl, target_ppl, ALPHA_LAW))
    c = draft_params / target_params
    return NStar(
        target_params=float(target_params),
        train_tokens=float(train_tokens),
        n_star_params=draft_params,
        alpha_at_n_star=alpha,
        gamma_opt_at_n_star=float(optimal_gamma(alpha, c)),
        speedup_at_n_star=float(optimal_speedup(alpha, c)),
        draft_perplexity=draft_ppl,
        target_perplexity=float(target_ppl),
    )


@dataclass(frozen=True)
class LinearFit:
    mu: float
    m0_params: float
    r2: float
    target_params: tuple
    n_star_params: tuple


def fit_n_star(train_tokens: float, target_params=PAPER_TARGET_PARAMS) -> LinearFit:
    """Least-squares line N* = mu M + M0 through the numerical N* of each target size."""
    targets = np.asarray(target_params, dtype=float)
    if targets.ndim != 1 or np.unique(targets).size < 2:
        raise InputError(f"fitting a line needs at least 2 distinct target sizes, got "
                         f"{', '.join(f'{m:g}' for m in np.ravel(targets)) or 'none'}")
    optima = np.array([n_star(m, train_tokens).n_star_params for m in targets])
    mu, m0 = np.polyfit(targets, optima, 1)
    residual = optima - (mu * targets + m0)
    total = np.sum((optima - optima.mean()) ** 2)
    r2 = 1 - np.sum(residual**2) / total if total > 0 else float("nan")
    return LinearFit(float(mu), float(m0), float(r2), tuple(targets.tolist()), tuple(optima.tolist()))
