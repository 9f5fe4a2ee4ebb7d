"""Speed of the pass-latency model: evaluations per second, as a ratio against a bare numpy baseline
measured in the same run (the figure is reported, never asserted). Run:
    .venv/bin/python -m pytest tests/bench_costs.py -m benchmark -s -q
"""

import time

import numpy as np
import pytest

from sdsl_sim.costs import pass_latency_s
from sdsl_sim.hardware import load_gpu
from sdsl_sim.models import load_model


def _rate(fn, n: int) -> float:
    fn()  # warm caches (plan, runtime) outside the timing
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return n / (time.perf_counter() - start)


@pytest.mark.benchmark
def test_pass_latency_evaluations_per_second():
    model, gpu = load_model("llama-2-7b"), load_gpu("a100-80gb-sxm")
    x = np.float64(3.0)
    # Baseline: one small numpy scalar expression (a roofline max of two quotients), the unit of work
    # any vectorisable cost function pays at least once per call.
    baseline = _rate(lambda: np.maximum(x / 2.0, x / 3.0) * 4.0, 50_000)
    scalar = _rate(lambda: pass_latency_s(model, gpu, batch=8, tokens=5, context=1024), 20_000)
    context = np.arange(32_768, dtype=float)
    vector_calls = _rate(lambda: pass_latency_s(model, gpu, batch=8, tokens=5, context=context), 50)
    vector_points = vector_calls * context.size
    bare = _rate(lambda: np.maximum(context / 2.0, context / 3.0) * 4.0, 200) * context.size
    print(f"\nbaseline numpy scalar expression: {baseline:,.0f}/s")
    print(f"pass_latency_s scalar: {scalar:,.0f} evaluations/s (ratio to baseline {scalar / baseline:.3f}; aim >= 20,000/s)")
    print(f"pass_latency_s vectorised over 32k contexts: {vector_points:,.0f} points/s "
          f"(ratio to a bare 32k-element numpy expression {vector_points / bare:.3f})")
    assert scalar > 0 and vector_points > 0
