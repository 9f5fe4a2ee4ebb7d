"""Metrics from records: latencies, intervals, parquet round trip."""

import numpy as np
import pandas as pd
import pytest

from sdsl_sim.metrics import itl_s, mean_ci, ratio_ci, request_frame, summarize, write_parquet
from sdsl_sim.sim.acceptance import IidAcceptance
from sdsl_sim.sim.engine import Workload, simulate
from sdsl_sim.sim.policies import FixedGamma
from sdsl_sim.sim.records import SimResult
from sdsl_sim.sim.timing import PassTimer


def tiny_result():
    """One request: arrives 0, first token 1.0, then deliveries of 2 tokens at 1.5 and 1 token at 2.5."""
    requests = pd.DataFrame({"request_id": [0], "arrived_at_s": [0.0], "admitted_at_s": [0.2],
                             "first_token_at_s": [1.0], "finished_at_s": [2.5], "prompt_tokens": [8],
                             "output_tokens": [4], "alpha": [0.5]})
    emissions = pd.DataFrame({"request_id": [0, 0, 0], "at_s": [1.0, 1.5, 2.5], "tokens": [1, 2, 1]})
    steps = pd.DataFrame({"kind": pd.Categorical(["prefill", "decode", "decode"]), "started_at_s": [0.2, 1.0, 1.5],
                          "ended_at_s": [1.0, 1.5, 2.5], "batch": [1, 1, 1], "decoding": [0, 1, 1],
                          "gamma": [0, 2, 2], "draft_s": [0, 0.1, 0.2], "verify_s": [0, 0.4, 0.8],
                          "prefill_s": [0.8, 0, 0], "tokens": [1, 2, 1], "accepted": [0, 1, 0], "judged": [0, 2, 1]})
    return SimResult(requests, steps, emissions, np.array([1, 1, 0]), 0.0)


def test_request_latencies_by_definition():
    r = request_frame(tiny_result()).iloc[0]
    assert r.ttft_s == 1.0 and r.e2e_s == 2.5 and r.queue_s == pytest.approx(0.2)
    assert r.tpot_s == pytest.approx(1.5 / 3)
    np.testing.assert_allclose(itl_s(tiny_result()), [0.5, 1.0])


def test_summary_of_tiny_run():
    s = summarize(tiny_result())
    assert s["tpot_ms"] == pytest.approx(500.0)
    assert s["mean_tokens_per_iteration"] == pytest.approx(1.5)
    assert s["acceptance_rate"] == pytest.approx(1 / 3)
    assert s["draft_acceptance_rate"] == pytest.approx(1 / 4)
    assert s["time_prefill_s"] == pytest.approx(0.8)


def test_ratio_ci_covers_true_ratio_at_nominal_rate():
    rng = np.random.default_rng(0)
    covered = 0
    for _ in range(200):
        x = rng.integers(1, 6, 600)
        y = 2.0 * x + rng.normal(0, 1, 600)
        _, lo, hi = ratio_ci(y, x, level=0.95)
        covered += lo <= 2.0 <= hi
    assert 0.90 <= covered / 200 <= 0.99


def test_mean_ci_degenerate_inputs():
    assert np.isnan(mean_ci([1.0])[1])


def test_parquet_round_trip(tmp_path):
    timer = PassTimer(lambda b, t, c: 0.01 + 0 * np.asarray(c, float), lambda b, t, c: 0.001 + 0 * np.asarray(c, float),
                      max_context=1000)
    result = simulate(Workload(requests=3, max_batch=2, prompt_tokens=8, output_tokens=50), timer,
                      IidAcceptance(0.7), FixedGamma(3), rng=np.random.default_rng(0))
    paths = write_parquet(result, tmp_path)
    steps = pd.read_parquet(paths["steps"])
    assert len(steps) == len(result.steps) and set(paths) == {"requests", "steps", "emissions", "accepted_hist"}
    assert pd.read_parquet(paths["requests"]).tpot_s.notna().all()


def _lock_step_run(gamma: int, seed: int):
    from sdsl_sim.scenario import scenario_from_dict
    from sdsl_sim.sim.run import run_scenario

    # A static batch at a long prompt: every step costs more than the last (KV reads grow with context).
    scenario = scenario_from_dict({
        "model": {"target": "llama-3.1-8b", "draft": "llama-3.2-1b"}, "hardware": {"name": "a100-80gb-sxm", "tp": 1},
        "workload": {"requests": 4, "batch": 4, "prompt_tokens": 8000, "output_tokens": 1500},
        "decoding": {"gamma": gamma, "max_gamma": max(gamma, 1), "alpha": 0.7}})
    return run_scenario(scenario, seed)


def test_deterministic_run_has_a_near_zero_tpot_interval_despite_the_drift():
    from sdsl_sim.metrics import tpot_ci

    base = _lock_step_run(0, seed=0).spec  # gamma 0: plain decoding, nothing random
    tpot, lo, hi = tpot_ci(base)
    steps = base.steps[base.steps.kind == "decode"]
    durations = (steps.ended_at_s - steps.started_at_s).to_numpy()
    assert durations[-1] > 1.02 * durations[0]  # the drift is there
    assert (hi - lo) / tpot < 1e-3  # and is not counted as sampling error


@pytest.mark.slow
def test_tpot_interval_coverage_under_context_drift():
    from sdsl_sim.metrics import tpot_ci

    runs = np.array([tpot_ci(_lock_step_run(3, seed).spec) for seed in range(200)])
    truth = runs[:, 0].mean()  # the estimator's mean, to the runs' combined precision (~0.07%)
    covered = np.mean((runs[:, 1] <= truth) & (truth <= runs[:, 2]))
    half_99 = 2.576 * np.sqrt(0.95 * 0.05 / len(runs))  # binomial 99% half-width around the nominal 95%
    assert 0.95 - half_99 <= covered <= 0.95 + half_99
