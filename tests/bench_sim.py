"""Simulator speed against a bare simpy loop, side by side in one run (report, never assert wall time).

Workload: batch 1, gamma 8, alpha 0.65, 1,000,000 output tokens (1000 requests x 1000 tokens) on
h100-sxm tp 4 with llama-3.1-70b + llama-3.2-1b, with its autoregressive baseline run (1M iterations).
The bare loop yields one env.timeout per iteration of both runs. Run:
    .venv/bin/python -m pytest tests/bench_sim.py -m benchmark -s -q
"""

import time

import pytest
import simpy

from sdsl_sim.scenario import scenario_from_dict
from sdsl_sim.sim.run import run_scenario

SCENARIO = {
    "model": {"target": "llama-3.1-70b", "draft": "llama-3.2-1b"},
    "hardware": {"name": "h100-sxm", "tp": 4},
    "workload": {"arrival": "static", "requests": 1000, "batch": 1, "prompt_tokens": 128, "output_tokens": 1000},
    "decoding": {"gamma": 8, "alpha": 0.65},
}


def bare_simpy(iterations: int, duration_s: float = 0.01) -> float:
    env = simpy.Environment()

    def loop(env):
        for _ in range(iterations):
            yield env.timeout(duration_s)

    env.process(loop(env))
    start = time.perf_counter()
    env.run()
    return time.perf_counter() - start


@pytest.mark.benchmark
def test_simulator_vs_bare_simpy_loop():
    scenario = scenario_from_dict(SCENARIO, "bench")
    rows = {}
    for mode in ("block", "per-step"):
        start = time.perf_counter()
        out = run_scenario(scenario, seed=0, step_events=(mode == "per-step"))
        rows[mode] = (time.perf_counter() - start, out)
    out = rows["block"][1]
    iterations = out.summary["iterations"] + out.summary["baseline_iterations"]
    bare = bare_simpy(iterations)
    tokens = out.summary["output_tokens"] * 2  # speculative run + baseline
    print(f"\niterations simulated (spec + baseline): {iterations:,}; bare simpy loop: {bare:.2f} s")
    for mode, (wall, o) in rows.items():
        print(f"{mode:>8} clock: {wall:.2f} s wall, ratio to bare loop {wall / bare:.2f}x, "
              f"{tokens / wall:,.0f} simulated tokens/s, speedup {o.summary['speedup_vs_autoregressive']:.3f}")
    assert rows["block"][1].summary["tpot_ms"] == pytest.approx(rows["per-step"][1].summary["tpot_ms"], rel=1e-9)
