"""Acceptance processes and gamma policies against their definitions (fixed seeds, tolerance from CIs)."""

import numpy as np
import pytest
from conftest import flat, stand_in_timer

from sdsl_sim.analytic import best_integer_gamma, expected_tokens_per_iteration
from sdsl_sim.errors import InputError
from sdsl_sim.sim.acceptance import BetaAcceptance, IidAcceptance, ProfileAcceptance
from sdsl_sim.sim.policies import AdaptiveGamma, AutoGamma


def within(sample, expected, z=4.0):
    sample = np.asarray(sample, float)
    return abs(sample.mean() - expected) <= z * sample.std(ddof=1) / np.sqrt(sample.size)


@pytest.mark.parametrize("alpha,gamma", [(0.5, 3), (0.8, 8), (0.95, 2)])
def test_iid_tokens_match_leviathan(alpha, gamma):
    rng = np.random.default_rng(0)
    a = IidAcceptance(alpha).draw(rng, np.full(50, alpha), gamma, 2000)
    assert a.min() >= 0 and a.max() <= gamma
    assert within(a + 1, expected_tokens_per_iteration(alpha, gamma))


def test_profile_prefix_probabilities():
    r = (0.9, 0.7, 0.4, 0.2)
    acc = ProfileAcceptance(r)
    a = acc.draw(np.random.default_rng(1), np.zeros(100), 4, 2000)
    for i, ri in enumerate(r, start=1):
        assert within(a >= i, ri)
    assert within(a + 1, float(acc.expected_tokens(4)))
    assert acc.prefix(6)[-1] == pytest.approx(0.2 * 0.5**2)  # geometric tail with ratio r4 / r3


def test_profile_rejects_increasing_list():
    with pytest.raises(InputError, match="non-increasing"):
        ProfileAcceptance((0.5, 0.6))


def test_beta_population_expected_tokens():
    acc = BetaAcceptance(0.7, 10.0)
    rng = np.random.default_rng(2)
    alphas = acc.request_alphas(rng, 20000)
    assert within(alphas, 0.7)
    assert within(expected_tokens_per_iteration(alphas, 5), float(acc.expected_tokens(5)))


def test_alpha_outside_unit_interval_is_an_input_error():
    with pytest.raises(InputError, match="alpha"):
        IidAcceptance(1.2)


def constant_timer(c):
    return stand_in_timer(flat(1.0), flat(c), max_context=1000)


@pytest.mark.parametrize("alpha,c", [(0.6, 0.05), (0.8, 0.01), (0.9, 0.001), (0.3, 0.5)])
def test_auto_gamma_is_best_integer_gamma_when_verify_cost_is_flat(alpha, c):
    policy = AutoGamma(constant_timer(c), IidAcceptance(alpha), max_gamma=64)
    assert policy.choose(1, 10.0) == best_integer_gamma(alpha, c)


def test_auto_gamma_shrinks_when_verification_turns_compute_bound():
    # verification grows with the pass's new tokens (batch x (gamma + 1) rows)
    timer = stand_in_timer(lambda w: 0.01 + 1e-5 * np.asarray(w.rows, float), flat(0.0005), max_context=1000)
    policy = AutoGamma(timer, IidAcceptance(0.7), max_gamma=16)
    assert policy.choose(1, 0.0) > policy.choose(256, 0.0)


def test_adaptive_gamma_tracks_observed_acceptance():
    policy = AdaptiveGamma(constant_timer(0.01), prior_alpha=0.5, max_gamma=32, weight=0.2)
    rng = np.random.default_rng(3)
    acc = IidAcceptance(0.9)
    for _ in range(100):
        g = policy.choose(1, 0.0)
        a = acc.draw(rng, np.full(1, 0.9), g, 16)
        policy.observe(int(a.sum()), int((a + (a < g)).sum()))
    assert abs(policy.alpha - 0.9) < 0.05
    assert policy.choose(1, 0.0) == best_integer_gamma(policy.alpha, 0.01)
