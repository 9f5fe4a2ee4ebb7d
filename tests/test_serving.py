"""Serving under load on real profiles: Little's law, the low-load limits, trace replay, chunked-prefill
inter-token latency in a closed loop, and one-line errors for every new scenario key."""

from pathlib import Path

import numpy as np
import pytest

from sdsl_sim.cli import main
from sdsl_sim.costs import PassWork
from sdsl_sim.metrics import mean_ci, request_frame
from sdsl_sim.scenario import load_scenario, scenario_from_dict, scenarios_dir
from sdsl_sim.sim.run import predict, run_scenario
from sdsl_sim.sim.setup import setup
from sdsl_sim.workload import SHAREGPT_LIKE, load_trace

PAIR = {"model": {"target": "llama-3.1-70b", "draft": "llama-3.2-1b"}, "hardware": {"name": "h100-sxm", "tp": 4}}


def scenario(workload, decoding=None, **tables):
    return scenario_from_dict({**PAIR, "workload": workload, "decoding": decoding or {"alpha": 0.7}, **tables},
                              source="test")


def test_littles_law_on_a_poisson_run():
    rate = 3.0
    s = scenario({"arrival": "poisson", "rate_per_s": rate, "requests": 1500, "batch": 32,
                  **SHAREGPT_LIKE})
    out = run_scenario(s, seed=4)
    for result in (out.spec, out.base):
        req = request_frame(result)
        span = req.finished_at_s.max() - req.arrived_at_s.min()
        in_system = req.e2e_s.sum() / span  # time-averaged requests in system: integral of N(t) dt / span
        mean_e2e, lo, hi = mean_ci(req.e2e_s)
        # The interval of rate x mean E2E: the E2E mean's, and the Poisson count's 1/sqrt(n) around n / span.
        rel = np.hypot((hi - lo) / 2 / mean_e2e, 1.96 / np.sqrt(len(req)))
        assert in_system == pytest.approx(rate * mean_e2e, rel=rel)


@pytest.mark.parametrize("gamma", [0, "auto"])
def test_low_load_ttft_is_one_prefill_and_tpot_the_batch_one_tpot(gamma):
    s = scenario({"arrival": "poisson", "rate_per_s": 0.002, "requests": 100, "batch": 8,
                  "prompt_tokens": 1024, "output_tokens": 256}, {"alpha": 0.7, "gamma": gamma})
    out = run_scenario(s, seed=2)
    st = setup(s)
    timer = st.base_timer if gamma == 0 else st.timer
    prefill_ms = 1e3 * float(timer.step(0, 0, 0.0, PassWork.group(1, 1024, 0.0, prefill=True)).total_s)
    assert out.summary["mean_ttft_ms"] == pytest.approx(prefill_ms, rel=0.02)
    batch_one = predict(setup(scenario({"requests": 1, "batch": 1, "prompt_tokens": 1024, "output_tokens": 256},
                                       {"alpha": 0.7, "gamma": gamma})))
    assert out.summary["tpot_ms"] == pytest.approx(1e3 * batch_one["tpot_s"], rel=0.02)


def test_trace_replay_takes_instants_and_lengths_from_the_trace():
    path = scenarios_dir() / "traces" / "example-trace.csv"
    trace = load_trace(path, "test")
    s = scenario({"arrival": "trace", "trace": str(path), "batch": 16})
    out = run_scenario(s, seed=0)
    for result in (out.spec, out.base):
        req = result.requests
        assert len(req) == len(trace)
        np.testing.assert_array_equal(req.arrived_at_s, trace.arrival_s)
        np.testing.assert_array_equal(req.prompt_tokens, trace.prompt_tokens)
        np.testing.assert_array_equal(req.output_tokens, trace.output_tokens)
    fewer = run_scenario(scenario({"arrival": "trace", "trace": str(path), "requests": 20, "batch": 4}), 0)
    np.testing.assert_array_equal(fewer.spec.requests.arrived_at_s, trace.arrival_s[:20])


@pytest.mark.parametrize("concurrency", [5, 25, 50])
def test_closed_loop_itl_against_the_steady_state_estimate(concurrency):
    """Each request's 499 decode steps share the replica with the (c - 1) other requests' prefills of 5000
    tokens. The additive estimate decode(c) + (c - 1) prefill(5000) / 499 treats a prefill chunk as extra
    time on top of a decode step; in a mixed step the decoders ride in the same weight-reading GEMMs as
    the chunk (compute-bound at ~2k rows), so the run's ITL is lower, by up to the decode step's weight
    reads per mixed step. The marginal estimate prices a prompt's chunks (budget 2048 less the c - 1
    decoders' tokens) on top of the decode steps they join. A prompt's last chunk either runs alone with
    the decoders (the `unpacked` estimate: its partial GEMM row tile costs a whole one) or shares its step
    with the next prompt's first chunk (the `packed` estimate: every chunk fills the budget), so the steady
    state (requests after the first waves and before the last; plain decoding delivers one token at a
    time, so a request's TPOT is its mean ITL) lies between the two, to 1%."""
    c, prompt, output = concurrency, 5000, 500
    s = scenario_from_dict({
        "model": {"target": "llama-3.1-70b", "draft": "llama-3.2-1b", "weight_dtype": "fp8", "kv_dtype": "fp8"},
        "hardware": {"name": "h100-sxm", "tp": 2},
        "workload": {"arrival": "closed", "concurrency": c, "batch": c, "requests": 20 * c,
                     "prompt_tokens": prompt, "output_tokens": output},
        "decoding": {"gamma": 0}}, source="test")
    out = run_scenario(s, seed=0)
    assert out.summary["preemptions"] == 0
    resolved = setup(s)
    timer = resolved.base_timer
    context = prompt + output / 2
    decode_s = timer.decode_s(c, 0, context)
    prefill_s = float(timer.step(0, 0, 0.0, PassWork.group(1, prompt, 0.0, prefill=True)).total_s)
    additive_ms = 1e3 * (decode_s + (c - 1) * prefill_s / (output - 1))
    itl_ms = out.summary["mean_itl_ms"]
    assert 1e3 * decode_s < itl_ms <= additive_ms
    assert itl_ms == pytest.approx(additive_ms, rel=0.10)
    budget = resolved.scheduler.max_num_batched_tokens - (c - 1)
    chunks = [PassWork.group(1, float(min(budget, prompt - a)), float(a), prefill=True) for a in range(0, prompt, budget)]
    extra_s = sum(float(timer.step(c - 1, 0, context, w).total_s) - timer.decode_s(c - 1, 0, context)
                  for w in chunks)
    unpacked_ms = 1e3 * (decode_s + (c - 1) * extra_s / (output - 1))
    full = PassWork.group(1, float(budget), (prompt - budget) / 2, prefill=True)  # the chunks' mean prefix
    full_extra_s = float(timer.step(c - 1, 0, context, full).total_s) - timer.decode_s(c - 1, 0, context)
    packed_ms = 1e3 * (decode_s + (c - 1) * full_extra_s * prompt / budget / (output - 1))
    steady_ms = 1e3 * request_frame(out.spec).iloc[2 * c: -2 * c].tpot_s.mean()
    assert 0.99 * min(packed_ms, unpacked_ms) <= steady_ms <= 1.01 * max(packed_ms, unpacked_ms)


def test_paged_kv_preempts_under_memory_pressure_on_a_real_profile():
    s = scenario({"arrival": "static", "requests": 96, "batch": 96, "prompt_tokens": 8192, "output_tokens": 512},
                 hardware={"name": "a100-80gb-sxm", "tp": 4, "memory_reserve_fraction": 0.5})
    out = run_scenario(s, seed=0)
    assert out.summary["preemptions"] > 0
    for result in (out.spec, out.base):
        assert result.steps.kv_tokens.max() <= result.kv_token_budget
        assert result.requests.finished_at_s.notna().all()


BAD = [
    ("[workload]\nprompt_tokens = {dist = 'lognormal', median = 100}\n", "workload.prompt_tokens"),
    ("[workload]\noutput_tokens = {dist = 'uniform', low = 5}\n", "workload.output_tokens"),
    ("[workload]\noutput_tokens = -3\n", "workload.output_tokens"),
    ("[workload]\narrival = 'trace'\ntrace = 'missing-column.csv'\n", "missing"),
    ("[workload]\narrival = 'trace'\ntrace = 'negative.csv'\n", "negative.csv"),
    ("[workload]\narrival = 'trace'\n", "workload.trace"),
    ("[scheduler]\nmax_num_batched_tokens = 0\n", "scheduler.max_num_batched_tokens"),
    ("[scheduler]\nmax_num_batched_tokens = 4\n[workload]\nbatch = 8\n", "at least workload.batch"),
    ("[scheduler]\nkv_allocation = 'lazy'\n", "scheduler.kv_allocation"),
    ("[scheduler]\nchunked_prefill = 1\n", "scheduler.chunked_prefill"),
    ("[scheduler]\nblock_size = 0\n", "scheduler.block_size"),
    ("[hardware]\nmemory_reserve_fraction = 1.0\n", "hardware.memory_reserve_fraction"),
    ("[decoding]\ndisable_above_batch = 0\n", "decoding.disable_above_batch"),
    ("[slo]\nttft_ms = -1\n", "slo.ttft_ms"),
    ("[slo]\nitl_ms = 5\n", "slo.itl_ms"),
    ("[workload]\ncontext = 10\nprompt_tokens = 10\n", "both given"),
]


@pytest.mark.parametrize("text,needle", BAD, ids=[needle for _, needle in BAD])
def test_bad_serving_keys_are_one_error_line(tmp_path, capsys, text, needle):
    (tmp_path / "missing-column.csv").write_text("arrival_s,prompt_tokens\n0.0,10\n")
    (tmp_path / "negative.csv").write_text("arrival_s,prompt_tokens,output_tokens\n0.0,10,-4\n")
    path = tmp_path / "bad.toml"
    path.write_text(text)
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and needle in err[0]
    assert str(path) in err[0] or "trace" in err[0]


def test_embedded_serving_scenarios_load():
    for name in ("poisson-serving", "trace-replay"):
        s = load_scenario(name)
        assert Path(s.source).name == f"{name}.toml"


def _example_sweep_points(keep):
    from sdsl_sim.sweep import evaluate_scenario_point, expand, load_sweep

    points = [p for p in expand(load_sweep("example-sweep")) if keep(p.axis_values)]
    return [(p, evaluate_scenario_point(p.config, p.seed)) for p in points]


def _assert_near_prediction(results):
    for point, row in results:
        assert row["speedup_vs_autoregressive"] == pytest.approx(row["predicted_speedup"], rel=0.15), point.describe()


def test_example_sweep_long_context_points_follow_the_prediction():
    """The README's example sweep at 16k context: admissions under speculation no longer stall the batch,
    so the simulated speedup follows the expected value (prefill interference included) at batch 16-64."""
    _assert_near_prediction(_example_sweep_points(
        lambda axes: axes["workload.prompt_tokens"] == 16384 and axes["workload.batch"] in (16, 64)
        and axes["hardware.name"] == "h200-sxm"))


@pytest.mark.slow
def test_every_example_sweep_point_follows_the_prediction():
    _assert_near_prediction(_example_sweep_points(lambda axes: True))
