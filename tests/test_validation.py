"""The validation data (sdsl_sim/data/validation_measurements.toml) and how its rows are priced."""

import dataclasses
import json
import re

import numpy as np
import pytest

from sdsl_sim.analytic import expected_tokens_per_iteration
from sdsl_sim.errors import InputError


@pytest.mark.parametrize("alpha, gamma", [(0.3, 2), (0.7, 4), (0.9, 7)])
def test_stated_acceptances_convert_to_the_per_token_alpha(alpha, gamma):
    from sdsl_sim.validation import per_token_alpha

    tau = float(expected_tokens_per_iteration(alpha, gamma))
    assert per_token_alpha("mean_accepted_tokens", tau, gamma) == pytest.approx(alpha, abs=1e-9)
    assert per_token_alpha("draft_acceptance_rate", (tau - 1) / gamma, gamma) == pytest.approx(alpha, abs=1e-9)
    assert per_token_alpha("per_token_alpha", alpha, gamma) == alpha
    with pytest.raises(InputError, match="tokens per iteration"):
        per_token_alpha("mean_accepted_tokens", gamma + 1.5, gamma)


def test_every_validation_row_names_its_source_and_prices_or_says_why_not():
    from sdsl_sim.validation import load_measurements, predict_row

    rows = load_measurements()
    assert len({row["id"] for row in rows}) == len(rows)
    for row in rows:
        assert row["source"].strip() and row["engine"].strip()
        priced = predict_row(row)
        assert priced["skipped"] or (np.isfinite(priced["predicted"]) and priced["predicted"] > 0), row["id"]


def test_head_rows_price_the_head_built_from_their_target():
    from sdsl_sim.validation import load_measurements, predict_row, scenario_data

    rows = {row["id"]: row for row in load_measurements()}
    eagle3 = rows["vllm-v1-i20780-l31-8b-eagle3-k4"]
    data = scenario_data(eagle3, 0.75)
    assert data["decoding"]["method"] == "eagle" and data["decoding"]["draft_vocab"] == 32000
    assert "draft" not in data["model"]  # no checkpoint: the head is built from the target
    priced = predict_row(eagle3)
    assert priced["skipped"] == "" and priced["alpha_origin"] == "stated"
    # the stated acceptance length 3.08 at gamma 4 is what the priced alpha gives
    assert expected_tokens_per_iteration(priced["alpha"], 4) == pytest.approx(3.08, rel=1e-9)
    full_vocab = predict_row({**eagle3, "draft_vocab": 0})["predicted"]
    assert full_vocab > priced["predicted"]  # a 128k-token head LM head costs more per draft pass than 32k
    assert "dynamic eagle tree" in predict_row(rows["sglang-pr4716-l33-70b-eagle3"])["skipped"]
    assert "needs a stated gamma and acceptance" in predict_row(rows["vllm-v1-pr16937-l31-8b-eagle1-k2"])["skipped"]


def test_a_whole_generate_row_pays_its_context_phase():
    """gptSessionBenchmark times one generate() of the static batch: the prompts' prefill (one pass of
    batch x prompt tokens) is part of the time its throughput divides by."""
    from sdsl_sim.costs import PassWork
    from sdsl_sim.scenario import scenario_from_dict
    from sdsl_sim.sim.run import evaluate
    from sdsl_sim.sim.setup import setup
    from sdsl_sim.validation import load_measurements, predict_row, scenario_data

    row = {r["id"]: r for r in load_measurements()}["trtllm061-h100-l2-7b-bs768"]
    assert row["includes_prefill"] is True
    whole, decode_only = predict_row(row)["predicted"], predict_row({**row, "includes_prefill": False})["predicted"]
    scenario = scenario_from_dict(scenario_data(row, None))
    tpot_s = evaluate(scenario, 0)["tpot_ms"] / 1e3
    assert decode_only == pytest.approx(768 / tpot_s)
    prefill_s = float(setup(scenario).base_timer.step(0, 0, 0.0, PassWork.group(768, 128, 0.0, prefill=True)).total_s)
    assert 768 * 128 / whole == pytest.approx(prefill_s + 127 * tpot_s, rel=1e-12)
    assert 0.05 < prefill_s / (127 * tpot_s) < 1  # a 98k-token prefill: a real share of the session, not all of it


def test_a_static_batch_the_models_kv_pool_cannot_hold_is_priced_at_the_batch_it_holds():
    """A100 fp16, 60 x 2176 tokens: TensorRT-LLM's KV pool (0.9 of what the weights leave) holds 57 whole
    requests, so the plain arm runs 57 at a time and its throughput is 57 over their TPOT, not 60 over it."""
    from sdsl_sim.scenario import scenario_from_dict
    from sdsl_sim.sim.run import evaluate
    from sdsl_sim.sim.setup import setup
    from sdsl_sim.validation import load_measurements, predict_row, scenario_data

    row = {r["id"]: r for r in load_measurements()}["trtllm061-a100-l2-7b-bs60"]
    row = {**row, "includes_prefill": False}
    scenario = scenario_from_dict(scenario_data(row, None))
    holds = int(setup(scenario).base_kv_token_budget // (128 + 2048))
    priced = predict_row(row)
    assert priced["running_batch"] == holds < row["batch"]
    assert priced["predicted"] == pytest.approx(holds / (evaluate(scenario, 0)["baseline_tpot_ms"] / 1e3), rel=1e-12)


def test_a_serving_row_simulates_the_stream_its_benchmark_sent():
    """trtllm-bench at infinite rate: every request queued at once, the batch capped by the engine's
    heuristic, the KV cache holding kv_free_fraction of what the weights leave free."""
    from sdsl_sim.costs import kv_token_capacity
    from sdsl_sim.hardware import load_gpu
    from sdsl_sim.models import load_model
    from sdsl_sim.scenario import scenario_from_dict
    from sdsl_sim.sim.run import run_scenario
    from sdsl_sim.validation import load_measurements, predict_row, scenario_data

    row = {r["id"]: r for r in load_measurements()}["trtllm10-h100-l31-8b-128-2048"]
    data = scenario_data(row, None)
    wl = data["workload"]
    assert data["run"]["method"] == "simulated"
    assert (wl["arrival"], wl["concurrency"], wl["requests"], wl["batch"]) == ("closed", 3000, 3000, 640)
    assert data["scheduler"] == {"max_num_batched_tokens": 2048}
    gpu, model = load_gpu("h100-sxm"), load_model("llama-3.1-8b")
    reserved = dataclasses.replace(gpu, memory_reserve_fraction=data["hardware"]["memory_reserve_fraction"])
    slots = kv_token_capacity([model], reserved, weight_dtype="fp8", kv_dtype="fp8")
    free_after_weights = kv_token_capacity([model], dataclasses.replace(gpu, memory_reserve_fraction=0.0),
                                           weight_dtype="fp8", kv_dtype="fp8")
    assert slots == pytest.approx(0.95 * free_after_weights, rel=1e-12)
    summary = run_scenario(scenario_from_dict(data), 0).summary
    assert predict_row(row)["predicted"] == summary["output_throughput"]
    assert summary["completed"] == 3000 and summary["total_output_tokens"] == 3000 * 2048
    # the KV cache, not the batch cap, bounds the running batch: its full reserve fits fewer than 640
    assert 0.8 * slots / (128 + 2048) < summary["mean_batch"] <= slots / (128 + 2048) < 640


@pytest.mark.parametrize("ratio, low", [(0.0, 1), (0.5, 4096), (1.0, 8192)])
def test_sglang_random_lengths_follow_its_range_ratio(ratio, low):
    from sdsl_sim.validation import load_measurements, scenario_data

    row = {r["id"]: r for r in load_measurements()}["amd-vllm-l31-405b-draft-1b-rate0.2"]
    wl = scenario_data({**row, "length_range_ratio": ratio}, None)["workload"]
    assert wl["prompt_tokens"] == {"dist": "uniform", "low": low, "high": 8192}
    assert wl["output_tokens"] == {"dist": "uniform", "low": max(int(256 * ratio), 1), "high": 256}
    assert (wl["arrival"], wl["rate_per_s"], wl["requests"], wl["batch"]) == ("poisson", 0.2, 500, 300)


def test_an_e2e_speedup_is_the_ratio_of_the_streams_mean_latencies_and_its_implied_alpha_round_trips():
    from sdsl_sim.scenario import scenario_from_dict
    from sdsl_sim.sim.run import run_scenario
    from sdsl_sim.validation import load_measurements, predict_row, scenario_data

    row = {r["id"]: r for r in load_measurements()}["amd-vllm-l31-70b-draft-1b"]
    priced = predict_row(row)
    summary = run_scenario(scenario_from_dict(scenario_data(row, None)), 0).summary
    assert priced["predicted"] == pytest.approx(summary["baseline_mean_e2el_ms"] / summary["mean_e2el_ms"], rel=1e-12)
    assert priced["predicted_baseline_e2e_ms"] == summary["baseline_mean_e2el_ms"]
    # one request at a time the decode-speedup reading recovers the run's own alpha (to its approximation:
    # the analytic model prices one sequence at the mean lengths, the stream each request's own)
    again = predict_row({**row, "value": priced["predicted"]})
    assert again["implied_alpha"] == pytest.approx(priced["alpha"], abs=0.02)
    # a measured speedup that leaves no decode time once the TTFT is paid has no alpha
    assert np.isnan(predict_row({**row, "value": 50.0})["implied_alpha"])


def test_rate_and_end_to_end_rows_need_their_request_count():
    from sdsl_sim.validation import load_measurements, skip_reason

    row = {r["id"]: r for r in load_measurements()}["amd-vllm-l31-405b-draft-1b-rate0.2"]
    assert skip_reason(row) is None
    assert "number of requests" in skip_reason({k: v for k, v in row.items() if k != "requests"})
    assert "not a quantity of the simulated stream" in skip_reason({**row, "metric": "tpot_ms"})


def _trtllm_bench_settings(row):
    """trtllm-bench's engine settings heuristic (tensorrt_llm/bench/build/tuning.py, calc_engine_setting and
    finetune_setting): KV requests that fit kv_free_fraction of the memory (NVML GiB) left by the weights,
    rounded up to the batch and token steps it uses."""
    import math

    from sdsl_sim.hardware import load_gpu
    from sdsl_sim.models import dtype_bytes, load_model

    model, gpu, tp = load_model(row["target_catalog"]), load_gpu(row["gpu"]), row["tp"]
    per_token_gib = 2 * model.n_layers * max(tp, model.n_kv_heads) * model.head_dim * dtype_bytes(row["kv_dtype"]) / 2**30
    free_gib = gpu.memory_bytes * tp / 2**30 - model.params * dtype_bytes(row["weight_dtype"]) / 2**30
    isl, osl = row["prompt_tokens"], row["output_tokens"]
    raw_bs = min(free_gib * row["kv_free_fraction"] / (per_token_gib * (isl + osl)), 4096)
    raw_tokens = min(raw_bs * (1 + isl / osl), 32768)
    if raw_bs < 256:
        batch = max(64, 32 * math.ceil(raw_bs / 32))
    else:
        batch = (128 if raw_bs < 1024 else 256) * math.ceil(raw_bs / (128 if raw_bs < 1024 else 256))
    if raw_tokens < 4096:
        tokens = max(2048, 256 * math.ceil(raw_tokens / 256))
    else:
        tokens = (512 if raw_tokens < 8192 else 1024) * math.ceil(raw_tokens / (512 if raw_tokens < 8192 else 1024))
    return batch, tokens


def test_trtllm_bench_rows_carry_the_settings_its_heuristic_gives():
    from sdsl_sim.validation import load_measurements

    rows = [r for r in load_measurements() if r["engine"] == "trtllm" and r.get("requests")]
    assert len(rows) >= 40
    for row in rows:
        assert (row["max_batch_size"], row["max_num_tokens"]) == _trtllm_bench_settings(row), row["id"]


@pytest.mark.parametrize("key, value, expected", [
    ("requests", 0, "an integer >= 1"), ("requests", 2.5, "an integer >= 1"),
    ("kv_free_fraction", 0.0, "a finite number in (0, 1]"), ("kv_free_fraction", 1.5, "a finite number in (0, 1]"),
    ("length_range_ratio", -0.1, "a finite number in [0, 1]"), ("baseline_e2e_ms", float("inf"), "a finite number > 0"),
    ("chunked_prefill", "no", "true or false"), ("gamma_schedule", "auto", "one of 'heuristic'"),
    ("max_num_tokens", True, "an integer >= 1"),
])
def test_a_bad_serving_key_in_the_measurements_is_one_error_naming_row_and_key(tmp_path, key, value, expected):
    from sdsl_sim.validation import load_measurements

    row = next(r for r in load_measurements() if r["id"] == "trtllm10-h100-l31-8b-128-2048")
    lines = [f"{k} = {json.dumps(v)}" for k, v in {**row, key: value}.items()]
    (tmp_path / "rows.toml").write_text("[[row]]\n" + "\n".join(lines).replace("Infinity", "inf") + "\n")
    with pytest.raises(InputError, match=rf"trtllm10-h100-l31-8b-128-2048.*{key} .*expected {re.escape(expected)}"):
        load_measurements(tmp_path / "rows.toml")
