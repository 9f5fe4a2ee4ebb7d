"""Metrics from records: latencies, intervals, parquet round trip."""

import numpy as np
import pandas as pd
import pytest
from conftest import fixed_workload, flat, stand_in_timer

from sdsl_sim.metrics import (
    max_concurrent,
    mean_ci,
    percentile_key,
    ratio_ci,
    request_frame,
    summarize,
    summary_keys,
    weighted_mean_ci,
    weighted_percentile,
    write_parquet,
)
from sdsl_sim.sim.acceptance import IidAcceptance
from sdsl_sim.sim.engine import Workload, simulate
from sdsl_sim.sim.policies import FixedGamma
from sdsl_sim.sim.records import REQUEST_COLUMNS, STEP_COLUMNS, STEP_KINDS, SimResult


def tiny_result():
    """One request: arrives 0, admitted 0.2, first token 1.0 (its prefill step), then deliveries of 2 tokens
    at 1.5 and 1 token at 2.5 (inter-token gaps 0.5 and 1.0)."""
    requests = pd.DataFrame({"request_id": [0], "arrived_at_s": [0.0], "admitted_at_s": [0.2],
                             "first_token_at_s": [1.0], "finished_at_s": [2.5], "prompt_tokens": [8],
                             "output_tokens": [4], "preemptions": [0], "alpha": [0.5]})
    emissions = pd.DataFrame({"request_id": [0, 0, 0], "at_s": [1.0, 1.5, 2.5], "tokens": [1, 2, 1]})
    steps = pd.DataFrame({"kind": pd.Categorical.from_codes([1, 0, 0], STEP_KINDS), "started_at_s": [0.2, 1.0, 1.5],
                          "ended_at_s": [1.0, 1.5, 2.5], "decoders": [0, 1, 1], "prefills": [1, 0, 0],
                          "decoding": [0, 1, 1], "gamma": [0, 2, 2], "draft_s": [0, 0.1, 0.2],
                          "verify_s": [0, 0.4, 0.8], "prefill_s": [0.8, 0, 0], "tokens": [0, 2, 1],
                          "prefill_tokens": [8, 0, 0], "first_tokens": [1, 0, 0], "resumed": [0, 0, 0],
                          "accepted": [0, 1, 0], "judged": [0, 2, 1], "drafts": [0, 1, 1],
                          "drafted": [0, 2, 2], "kv_tokens": [16, 16, 16]})
    itl = pd.DataFrame({"gap_s": [0.5, 1.0], "count": [1, 1]})
    assert tuple(requests.columns) == REQUEST_COLUMNS and tuple(steps.columns) == STEP_COLUMNS
    return SimResult(requests, steps, itl, emissions, np.array([1, 1, 0]), 4096.0, 0.0)


def test_request_latencies_by_definition():
    r = request_frame(tiny_result()).iloc[0]
    assert r.ttft_s == 1.0 and r.e2e_s == 2.5 and r.queue_s == pytest.approx(0.2)
    assert r.tpot_s == pytest.approx(1.5 / 3)


def test_summary_of_tiny_run():
    s = summarize(tiny_result())
    assert s["tpot_ms"] == pytest.approx(500.0)
    assert s["mean_tokens_per_iteration"] == pytest.approx(1.5)
    assert s["acceptance_rate"] == pytest.approx(1 / 3)
    assert s["spec_decode_acceptance_rate"] == pytest.approx(100 / 4)  # 1 accepted of 4 proposed, in percent
    assert s["spec_decode_acceptance_length"] == pytest.approx(1 + 1 / 2)  # 1 accepted over 2 drafts
    assert s["spec_decode_per_position_acceptance_rates"] == pytest.approx([1 / 2, 0.0])
    assert s["time_prefill_s"] == pytest.approx(0.8)
    assert s["iterations"] == 2  # the prefill step verifies nothing
    assert s["mean_queue_ms"] == pytest.approx(200.0) and s["mean_ttft_ms"] == pytest.approx(1000.0)
    # 4 output tokens (the first from the prefill) and 8 prompt tokens over the 2.5 s duration
    assert (s["completed"], s["failed"], s["duration"]) == (1, 0, pytest.approx(2.5))
    assert (s["total_input_tokens"], s["total_output_tokens"]) == (8, 4)
    assert s["output_throughput"] == pytest.approx(4 / 2.5) and s["request_throughput"] == pytest.approx(1 / 2.5)
    assert s["total_token_throughput"] == pytest.approx(12 / 2.5) and s["max_concurrent_requests"] == 1
    # the inter-token gaps 0.5 and 1.0 s
    assert s["mean_itl_ms"] == pytest.approx(750.0) and s["median_itl_ms"] == pytest.approx(750.0)
    assert s["std_itl_ms"] == pytest.approx(250.0)  # population standard deviation, as numpy's and vLLM's
    assert s["p99_itl_ms"] == pytest.approx(float(np.percentile([500.0, 1000.0], 99)))
    assert s["mean_tpot_ms"] == pytest.approx(500.0) and s["std_tpot_ms"] == 0.0
    assert s["kv_tokens_peak"] == 16 and s["kv_token_budget"] == 4096.0 and s["preemptions"] == 0
    assert np.isnan(s["request_goodput"]) and np.isnan(s["slo_attainment"])  # no [slo]


@pytest.mark.parametrize("slo,goodput", [
    ({"ttft_ms": 1000.0}, 1 / 2.5),  # TTFT 1.0 s meets 1000 ms (inclusive)
    ({"ttft_ms": 999.0}, 0.0),
    ({"tpot_ms": 500.0}, 1 / 2.5),  # TPOT 0.5 s
    ({"ttft_ms": 1000.0, "tpot_ms": 499.0}, 0.0),  # both must be met
    ({"ttft_ms": None, "tpot_ms": 600.0}, 1 / 2.5),
])
def test_goodput_counts_requests_meeting_every_slo(slo, goodput):
    s = summarize(tiny_result(), slo)
    assert s["request_goodput"] == pytest.approx(goodput)
    assert s["slo_attainment"] == pytest.approx(goodput * 2.5)


def test_summary_keys_are_what_summarize_returns():
    for percentiles in ((50, 90, 99), (99.9,), (0, 25, 100)):
        s = summarize(tiny_result(), percentiles=percentiles)
        keys = [key for key in s if not key.endswith("_ci95_note")]
        assert sorted(keys) == sorted(summary_keys(percentiles))
    assert "p99.9_e2el_ms" in summarize(tiny_result(), percentiles=(99.9,))


def test_latency_statistics_follow_vllm_bench_serve(rng=np.random.default_rng(11)):
    """vLLM's calculate_metrics (vllm/benchmarks/serve.py): TPOT_r = (latency - ttft) / (output_len - 1) over
    requests with output_len > 1, then np.mean, np.median, np.std and np.percentile, in ms; ITL over every
    gap of every request. Checked on a real run against those numpy calls on its own records."""
    workload = Workload(max_batch=8, prompt_tokens=np.full(60, 64), output_tokens=np.tile([1, 5, 40, 200], 15),
                        arrival="poisson", arrival_s=np.cumsum(rng.exponential(0.05, 60)))
    result = simulate(workload, stand_in_timer(flat(0.01), flat(0.002)), IidAcceptance(0.7), FixedGamma(3), rng=rng,
                      keep_emissions=True)
    s = summarize(result, percentiles=(50, 90, 99, 99.9))
    req = result.requests
    long = req[req.output_tokens > 1]
    tpot = 1e3 * (long.finished_at_s - long.first_token_at_s) / (long.output_tokens - 1)
    ttft = 1e3 * (req.first_token_at_s - req.arrived_at_s)
    e2el = 1e3 * (req.finished_at_s - req.arrived_at_s)
    itl = 1e3 * np.concatenate([np.diff(g.at_s.to_numpy()) for _, g in result.emissions.groupby("request_id")])
    for metric, values in (("tpot", tpot), ("ttft", ttft), ("e2el", e2el), ("itl", itl)):
        assert s[f"mean_{metric}_ms"] == pytest.approx(np.mean(values), rel=1e-9)
        assert s[f"median_{metric}_ms"] == pytest.approx(np.median(values), rel=1e-9)
        assert s[f"std_{metric}_ms"] == pytest.approx(np.std(values), rel=1e-9, abs=1e-9)
        for p in (90, 99, 99.9):
            assert s[percentile_key(p, metric)] == pytest.approx(np.percentile(values, p), rel=1e-9)
    duration = req.finished_at_s.max() - req.arrived_at_s.min()
    assert s["duration"] == pytest.approx(duration)
    assert s["output_throughput"] == pytest.approx(req.output_tokens.sum() / duration)
    assert s["total_token_throughput"] == pytest.approx((req.output_tokens.sum() + req.prompt_tokens.sum()) / duration)
    # in flight from arrival (queued ones included, as a client's sent requests) to finish; the most at an arrival
    arrived, finished = req.arrived_at_s.to_numpy(), req.finished_at_s.to_numpy()
    in_flight = [int(((arrived <= t) & (t < finished)).sum()) for t in arrived]
    assert s["max_concurrent_requests"] == max(in_flight) > 8  # more than the batch: some wait in the queue


def test_max_concurrent_requests_counts_overlapping_intervals():
    assert max_concurrent(np.array([0.0, 1.0, 2.0]), np.array([1.0, 3.0, 4.0])) == 2  # [0,1) ends as [1,3) starts
    assert max_concurrent(np.array([0.0, 0.0, 0.5]), np.array([2.0, 1.0, 0.7])) == 3
    assert max_concurrent(np.array([]), np.array([])) == 0


def test_weighted_statistics_equal_those_of_the_repeated_values():
    rng = np.random.default_rng(4)
    values, weights = rng.normal(10, 3, 40), rng.integers(0, 6, 40)
    repeated = np.repeat(values, weights)
    q = [0, 1, 25, 50, 90, 99, 100]
    np.testing.assert_allclose(weighted_percentile(values, weights, q), np.percentile(repeated, q), rtol=1e-12)
    np.testing.assert_allclose(weighted_mean_ci(values, weights), mean_ci(repeated), rtol=1e-12)
    assert np.isnan(weighted_percentile([1.0], [0], [50])).all()


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


@pytest.mark.parametrize("keep_emissions", [True, False])
def test_parquet_round_trip(tmp_path, keep_emissions):
    timer = stand_in_timer(flat(0.01), flat(0.001), max_context=1000)
    result = simulate(fixed_workload(3, 2, 8, 50), timer, IidAcceptance(0.7), FixedGamma(3),
                      rng=np.random.default_rng(0), keep_emissions=keep_emissions)
    paths = write_parquet(result, tmp_path)
    steps = pd.read_parquet(paths["steps"])
    assert len(steps) == len(result.steps)
    expected = {"requests", "steps", "itl", "accepted_hist"} | ({"emissions"} if keep_emissions else set())
    assert set(paths) == expected and {p.stem for p in tmp_path.iterdir()} == expected
    assert pd.read_parquet(paths["requests"]).tpot_s.notna().all()
    pd.testing.assert_frame_equal(pd.read_parquet(paths["itl"]), result.itl)
    if keep_emissions:
        assert pd.read_parquet(paths["emissions"]).tokens.sum() == 3 * 50


def _lock_step_run(gamma: int, seed: int):
    from sdsl_sim.scenario import scenario_from_dict
    from sdsl_sim.sim.run import run_scenario

    # A static batch at a long prompt: every step costs more than the last (KV reads grow with context).
    # Whole-prompt prefill with full reservation keeps the batch in lock-step (one prefill step, then all
    # four decode from the same instant; at gamma 0 they also finish together); chunked prefill would
    # stagger the requests' starts over mixed steps.
    scenario = scenario_from_dict({
        "model": {"target": "llama-3.1-8b", "draft": "llama-3.2-1b"}, "hardware": {"name": "a100-80gb-sxm", "tp": 1},
        "workload": {"requests": 4, "batch": 4, "prompt_tokens": 8000, "output_tokens": 1500},
        "decoding": {"gamma": gamma, "max_gamma": max(gamma, 1), "alpha": 0.7},
        "scheduler": {"chunked_prefill": False, "kv_allocation": "reserve"}})
    return run_scenario(scenario, seed)


def test_deterministic_run_has_a_near_zero_tpot_interval_despite_the_drift():
    from sdsl_sim.metrics import tpot_ci

    base = _lock_step_run(0, seed=0).spec  # gamma 0: plain decoding, nothing random
    tpot, lo, hi = tpot_ci(base)
    steps = base.steps[base.steps.kind == "decode"]
    assert (steps.decoders == 4).all()  # lock-step
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
