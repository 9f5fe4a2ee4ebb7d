"""The analytic core against brute force, published tables and the reference derivations.

Sources: Leviathan et al. 2023 Table 1 (speedups at c -> 0); sdsl-math.md s.2-5 (closed form,
reference N* table, the paper's linear law and its refit).
"""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize_scalar
from scipy.special import lambertw

from sdsl_sim import analytic
from sdsl_sim.errors import InputError


def brute_force_speedup(alpha: float, ratio: float) -> float:
    """max over real gamma >= 0 of S(gamma), by a log-spaced scan and a bounded refinement."""
    c = 1 / ratio
    grid = np.concatenate([[0.0], np.geomspace(1e-3, 1e9, 6000)])
    s = analytic.leviathan_speedup(alpha, grid, c)
    i = int(np.argmax(s))
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)]
    res = minimize_scalar(lambda g: -analytic.leviathan_speedup(alpha, g, c), bounds=(lo, hi), method="bounded",
                          options={"xatol": 1e-12})
    return max(float(s[i]), -float(res.fun))


ALPHAS = [0.05, 0.2, 0.4, 0.5, 0.65, 0.8, 0.9, 0.95, 0.99, 0.995]
RATIOS = [2, 5, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7]


@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize("ratio", RATIOS)
def test_closed_form_equals_brute_force_maximum(alpha, ratio):
    target = 70e9
    closed = analytic.optimal_throughput_tokens_per_flop(alpha, target, target / ratio)
    brute = brute_force_speedup(alpha, ratio) / (2 * target)
    assert closed > 0
    assert closed == pytest.approx(brute, rel=1e-6)


@settings(max_examples=300, deadline=None)
@given(alpha=st.floats(0.05, 0.995), log10_ratio=st.floats(math.log10(2), 7))
def test_closed_form_is_the_maximum_over_gamma(alpha, log10_ratio):
    c = 10.0**-log10_ratio
    s_star = float(analytic.optimal_speedup(alpha, c))
    g = float(analytic.optimal_gamma(alpha, c))
    # No gamma beats S*, and S* is attained at gamma* (or is 1 at gamma = 0).
    probes = np.array([0.0, g, g * 0.9, g * 1.1 + 0.1, np.floor(g), np.ceil(g)])
    assert np.all(analytic.leviathan_speedup(alpha, probes, c) <= s_star * (1 + 1e-9))
    assert float(analytic.leviathan_speedup(alpha, g, c)) == pytest.approx(s_star, rel=1e-9)
    # The best integer gamma is at least as good as its neighbours.
    k = analytic.best_integer_gamma(alpha, c)
    s_k = analytic.leviathan_speedup(alpha, k, c)
    assert s_k >= analytic.leviathan_speedup(alpha, k + 1, c)
    assert k == 0 or s_k >= analytic.leviathan_speedup(alpha, k - 1, c)


@settings(max_examples=200, deadline=None)
@given(alpha=st.floats(0.05, 0.995), log10_ratio=st.floats(math.log10(2), 7))
def test_log_space_lambert_w_matches_scipy_where_scipy_is_accurate(alpha, log10_ratio):
    ratio = 10.0**log10_ratio
    delta = (ratio - 1) * -math.log(alpha)
    if not 1e-6 < delta < 600:  # scipy underflows above ~708 and loses digits at the branch point
        return
    w = lambertw(-math.exp(-(1 + delta)), -1).real
    assert 1 + analytic.neg_lambertw_m1_of_neg_exp(delta) == pytest.approx(-w, rel=1e-10)


def test_naive_closed_form_underflows_where_log_space_does_not():
    alpha, ratio = 0.65, 1e4  # (M/N - 1) ln(1/alpha) ~ 4300 > 708
    naive = lambertw(-(alpha ** (ratio - 1)) / math.e, -1).real
    assert naive == -math.inf  # the trap sdsl-math.md s.2 describes
    assert analytic.optimal_speedup(alpha, 1 / ratio) == pytest.approx(brute_force_speedup(alpha, ratio), rel=1e-6)


def test_reference_point_gamma_star():
    # sdsl-math.md s.2: alpha 0.65, M 70e9, N 277e6 -> gamma* = 9.998
    assert float(analytic.optimal_gamma(0.65, 277e6 / 70e9)) == pytest.approx(9.998, abs=5e-4)


def test_near_alpha_one_and_near_equal_sizes():
    for alpha, c in [(1 - 1e-9, 1e-3), (0.999999, 0.5), (0.5, 1 - 1e-9)]:
        s = float(analytic.optimal_speedup(alpha, c))
        assert np.isfinite(s) and s >= 1
        assert s == pytest.approx(brute_force_speedup(alpha, 1 / c), rel=1e-6)


def test_no_lookahead_helps_gives_gamma_zero_and_speedup_one():
    assert float(analytic.optimal_gamma(0.05, 0.5)) == 0.0
    assert float(analytic.optimal_speedup(0.05, 0.5)) == 1.0
    assert not analytic.speculation_helps(0.05, 0.5)
    assert analytic.best_integer_gamma(0.05, 0.5) == 0
    assert analytic.speculation_helps(0.65, 0.01)


@pytest.mark.parametrize(
    "alpha, gamma, expected",
    [(0.6, 2, 1.96), (0.7, 3, 2.53), (0.8, 2, 2.44), (0.8, 5, 3.69), (0.9, 2, 2.71), (0.9, 10, 6.86)],
)
def test_leviathan_table_1(alpha, gamma, expected):
    assert round(float(analytic.leviathan_speedup(alpha, gamma, 0.0)), 2) == expected


def test_prefix_probability_form_reduces_to_iid():
    alpha, gamma = 0.7, 6
    r = alpha ** np.arange(1, gamma + 1)
    assert analytic.expected_tokens_from_prefix_probs(r) == pytest.approx(
        float(analytic.expected_tokens_per_iteration(alpha, gamma)), rel=1e-12
    )


def test_throughput_at_gamma_is_speedup_over_two_m():
    m, n = 70e9, 277e6
    t = analytic.throughput_tokens_per_flop(0.65, 10, m, n)
    assert t == pytest.approx((1 - 0.65**11) / (0.35 * (2 * n * 10 + 2 * m)), rel=1e-12)


def test_invalid_alpha_and_cost_ratio_raise():
    for bad in (0.0, 1.0, -0.1, 1.5, float("nan")):
        with pytest.raises(InputError, match="outside"):
            analytic.optimal_speedup(bad, 0.01)
    with pytest.raises(InputError, match="cost ratio"):
        analytic.optimal_gamma(0.6, 1.2)


def test_alpha_law_at_the_reference_pair():
    # sdsl-math.md s.5: alpha at N* ~0.645-0.662; hand evaluation of Eq. 4/5 for 277M / 70B at 1e13.
    x = float(analytic.perplexity(277e6, 1e13))
    y = float(analytic.perplexity(70e9, 1e13))
    assert x == pytest.approx(math.exp(1.817 + 482 / 277e6**0.348 + 2085 / 1e13**0.366))
    alpha = float(analytic.alpha_from_sizes(277e6, 70e9, 1e13))
    assert alpha == pytest.approx(-0.0067 * x + 0.013 * y + 0.642)
    assert 0.645 < alpha < 0.662


def test_alpha_law_outside_unit_interval_is_an_error_not_a_clip():
    with pytest.raises(InputError, match=r"alpha law gives alpha = -"):
        analytic.alpha_from_sizes(1e5, 70e9, 1e13)


REFERENCE_N_STAR = {  # sdsl-math.md s.5, bounded optimiser over log N
    1e12: (111.3e6, 178.4e6, 292.4e6, 383.1e6),
    1e13: (107.5e6, 172.1e6, 282.0e6, 369.4e6),
    1e14: (105.9e6, 169.5e6, 277.7e6, 363.7e6),
}


@pytest.mark.parametrize("train_tokens", sorted(REFERENCE_N_STAR))
def test_numerical_n_star_matches_reference_table(train_tokens):
    for m, expected in zip((13e9, 30e9, 70e9, 110e9), REFERENCE_N_STAR[train_tokens]):
        assert analytic.n_star(m, train_tokens).n_star_params == pytest.approx(expected, abs=0.06e6)


def test_n_star_is_the_argmax():
    result = analytic.n_star(70e9, 1e13)
    for factor in (0.9, 1.1):
        n = result.n_star_params * factor
        alpha = float(analytic.alpha_from_sizes(n, 70e9, 1e13))
        assert analytic.optimal_speedup(alpha, n / 70e9) < result.speedup_at_n_star


def test_fit_reproduces_the_linear_law():
    fit = analytic.fit_n_star(1e13)
    assert fit.mu == pytest.approx(2.71e-3, rel=0.05)
    assert fit.m0_params == pytest.approx(87.1e6, rel=0.10)
    assert len(fit.target_params) == 13 and fit.r2 > 0.95


@pytest.mark.parametrize("delta", [1e-14, 1e-10, 1e-6, 1e-3, 0.5, 1.99, 2.01, 10, 1e3, 4e6])
def test_log_space_solution_solves_its_equation(delta):
    # t - ln(1 + t) = delta, checked with the cancellation-free series for small t, and near the
    # branch point against the W_{-1} series t = p + p^2/3 + p^3/36 - p^4/270, p = sqrt(2 delta).
    t = float(analytic.neg_lambertw_m1_of_neg_exp(delta))
    residual = t * t / 2 - t**3 / 3 + t**4 / 4 if t < 1e-4 else t - math.log1p(t)
    assert residual == pytest.approx(delta, rel=1e-12)
    if delta <= 1e-6:
        p = math.sqrt(2 * delta)
        assert t == pytest.approx(p + p * p / 3 + p**3 / 36 - p**4 / 270, rel=1e-12)
