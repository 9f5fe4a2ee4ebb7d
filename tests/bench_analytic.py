"""Cost of one analytic evaluation, as a ratio to scipy's lambertw in the same run.

Run: .venv/bin/python -m pytest tests/bench_analytic.py -m benchmark -s -q
Reports microseconds per call of the log-space Lambert-W optimum (scalar, the CLI's path), of a
vectorised call per element, and of N*(M, D); the baseline is the naive closed form via
scipy.special.lambertw (which underflows for large M/N, so it is timed where it still works).
"""

import math
import timeit

import numpy as np
import pytest
from scipy.special import lambertw

from sdsl_sim import analytic

pytestmark = pytest.mark.benchmark


def per_call_s(fn, repeat=5, number=2000):
    return min(timeit.repeat(fn, repeat=repeat, number=number)) / number


def naive_speedup(alpha, c):
    w = lambertw(-(alpha ** (1 / c - 1)) / math.e, -1).real
    return (1 / c) * -math.log(alpha) / ((1 - alpha) * -w)


def test_analytic_evaluation_cost():
    alpha, c = 0.65, 1 / 250
    assert float(analytic.optimal_speedup(alpha, c)) == pytest.approx(naive_speedup(alpha, c), rel=1e-9)
    baseline_s = per_call_s(lambda: naive_speedup(alpha, c))
    scalar_s = per_call_s(lambda: analytic.optimal_speedup(alpha, c))
    alphas = np.linspace(0.05, 0.995, 10_000)
    vector_s = per_call_s(lambda: analytic.optimal_speedup(alphas, c), number=20) / alphas.size
    n_star_s = per_call_s(lambda: analytic.n_star(70e9, 1e13), repeat=3, number=20)
    print(
        f"\nscipy lambertw closed form (baseline): {baseline_s * 1e6:8.2f} us/eval"
        f"\noptimal_speedup, scalar:               {scalar_s * 1e6:8.2f} us/eval  ({scalar_s / baseline_s:.1f}x baseline)"
        f"\noptimal_speedup, 10k-vector:           {vector_s * 1e6:8.3f} us/eval  ({vector_s / baseline_s:.3f}x baseline)"
        f"\nn_star(70B, 1e13):                     {n_star_s * 1e3:8.2f} ms/call  ({n_star_s / baseline_s:.0f}x baseline)"
    )
