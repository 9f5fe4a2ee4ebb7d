"""Scenario files: schema validation with one-line messages, defaults, overrides, evaluate()."""

import math
from importlib.resources import files

import pytest

from sdsl_sim.errors import InputError
from sdsl_sim.scenario import SCHEMA, load_scenario, scenario_from_dict
from sdsl_sim.sim.run import evaluate


def write(tmp_path, text):
    path = tmp_path / "s.toml"
    path.write_text(text)
    return str(path)


def test_default_scenario_loads_with_every_key():
    s = load_scenario(None)
    assert s.source.endswith("default.toml")
    assert {f"{t}.{k}" for t, keys in s.config.items() for k in keys} == {f"{t}.{k}" for t, keys in SCHEMA.items() for k in keys}


def test_every_embedded_scenario_validates():
    import tomllib

    for path in (files("sdsl_sim") / "scenarios").iterdir():
        if path.name.endswith(".toml"):
            data = tomllib.loads(path.read_text())
            if "axes" in data or "base" in data:
                continue  # a sweep file (issue 5) living beside the scenarios
            load_scenario(path.name)


@pytest.mark.parametrize("text,needle", [
    ("[workload]\nbatchsize = 4\n", "key 'workload.batchsize' unknown; expected one of"),
    ("[workload]\nbatch = '4'\n", "key 'workload.batch' = '4'; expected an integer"),
    ("[workload]\nbatch = 0\n", "key 'workload.batch' = 0 is below 1; expected an integer in [1, 65,536] (MAX_BATCH)"),
    ("[decoding]\nalpha = 1.5\n", "key 'decoding.alpha' = 1.5 is above 1; expected a finite number in (0, 1)"),
    ("[decoding]\ngamma = 'best'\n", "key 'decoding.gamma' = 'best'"),
    ("[workload]\narrival = 'burst'\n", "expected one of 'static', 'poisson', 'closed'"),
    ("[hardwares]\nname = 'ideal'\n", "table 'hardwares' unknown"),
    ("[decoding]\nacceptance = 'profile'\nprefix_probs = [0.5, 0.7]\n", "non-increasing"),
    ("[workload\n", "not valid TOML"),
    ("[scheduler]\nkv_allocation = 'lazy'\n", "key 'scheduler.kv_allocation' = 'lazy'; expected one of 'paged', 'reserve'"),
    ("[scheduler]\nchunked_prefill = 1\n", "key 'scheduler.chunked_prefill' = 1; expected true or false"),
    ("[hardware]\nmemory_reserve_fraction = 1.0\n", "key 'hardware.memory_reserve_fraction' = 1.0 is above 1; expected a finite number in [0, 1)"),
    ("[slo]\nttft_ms = 0\n", "key 'slo.ttft_ms' = 0 is at or below 0; expected a finite number > 0"),
    ("[decoding]\ndisable_above_batch = 0\n", "key 'decoding.disable_above_batch' = 0 is below 1; expected an integer in [1, 65,536] (MAX_BATCH)"),
    ("[workload]\narrival = 'trace'\n", "key 'workload.trace' = None with workload.arrival = 'trace'"),
    ("[workload]\ntrace = 't.csv'\n", "key 'workload.trace' = 't.csv' with workload.arrival = 'static'"),
    ("[workload]\nbatch = 100000\n", "key 'workload.batch' = 100000 is above MAX_BATCH = 65,536; expected an integer in [1, 65,536]"),
    ("[workload]\nrate_per_s = inf\n", "key 'workload.rate_per_s' = inf is not finite"),
    ("[decoding]\nalpha_concentration = inf\n", "key 'decoding.alpha_concentration' = inf is not finite"),
    ("[hardware]\nruntime = ''\n", "key 'hardware.runtime' = '' is empty"),
    ("[model]\ntarget = ' '\n", "key 'model.target' = ' ' is empty"),
    ("[decoding]\nmax_gamma = 65\n", "key 'decoding.max_gamma' = 65 is above MAX_GAMMA = 64"),
    ("[workload]\nprompt_tokens = 'long'\n", "key 'workload.prompt_tokens' = 'long'; expected an integer or a table"),
])
def test_bad_values_name_file_key_and_expectation(tmp_path, text, needle):
    path = write(tmp_path, text)
    with pytest.raises(InputError) as info:
        load_scenario(path)
    message = str(info.value)
    assert message.startswith(path) and needle in message and "\n" not in message


def test_unknown_scenario_name_lists_the_embedded_ones():
    with pytest.raises(InputError, match="default"):
        load_scenario("no-such-scenario")


def test_requests_default_is_filled_in_after_validation():
    assert SCHEMA["workload"]["requests"][2] is None  # a trace may give it
    assert scenario_from_dict({}).config["workload"]["requests"] == 16
    assert scenario_from_dict({"workload": {"requests": 3}}).config["workload"]["requests"] == 3


def test_chunked_prefill_budget_is_not_checked_without_chunked_prefill():
    s = scenario_from_dict({"workload": {"batch": 64},
                            "scheduler": {"chunked_prefill": False, "max_num_batched_tokens": 32}})
    assert s.config["scheduler"]["max_num_batched_tokens"] == 32


def test_context_is_an_alias_of_prompt_tokens():
    s = scenario_from_dict({"workload": {"context": 4096}})
    assert s.config["workload"]["prompt_tokens"] == 4096


def test_sweep_overrides_apply_dotted_keys_and_revalidate():
    from sdsl_sim.sweep import prepare_scenario_point

    base = {"model": {"target": "llama-3.1-70b", "draft": "llama-3.2-1b"}, "workload": {"batch": 8}}
    config = prepare_scenario_point(base, {"workload.batch": 32, "model.draft_params": "277M",
                                           "scheduler.chunked_prefill": False, "slo.ttft_ms": 500}, "test")
    s = scenario_from_dict(config)
    assert s.config["workload"]["batch"] == 32
    assert s.config["scheduler"]["chunked_prefill"] is False and s.config["slo"]["ttft_ms"] == 500
    assert s.config["model"]["draft_params"] == 277e6 and s.config["model"]["draft"] is None  # a size replaces the name
    with pytest.raises(InputError, match="workload.batch"):
        prepare_scenario_point(base, {"workload.batch": -1}, "test")
    with pytest.raises(InputError, match="scheduler.kv_allocation"):
        prepare_scenario_point(base, {"scheduler.kv_allocation": "lazy"}, "test")


def test_evaluate_returns_flat_scalars():
    # 256 output tokens (~100 iterations): with chunked prefill the second pair of prompts is prefilled in a
    # mixed step that the first pair's decoders wait through, one long step that a 64-token run's
    # ~28 steps cannot average out (its 95% interval is ~55% of the TPOT).
    s = scenario_from_dict({"workload": {"requests": 4, "batch": 4, "output_tokens": 256}})
    row = evaluate(s, seed=1)
    assert row["method"] == "simulated"
    for key in ("tpot_ms", "tpot_ms_ci95_lo", "tpot_ms_ci95_hi", "output_throughput",
                "speedup_vs_autoregressive", "acceptance_rate", "gamma", "alpha", "iterations", "baseline_iterations",
                "throughput_speedup", "throughput_speedup_ci95_lo", "throughput_speedup_ci95_hi", "e2e_speedup",
                "e2e_speedup_ci95_lo", "e2e_speedup_ci95_hi", "mean_queue_ms", "p50_queue_ms", "p99_queue_ms",
                "request_goodput", "slo_attainment", "preemptions", "kv_tokens_peak", "kv_token_budget",
                "baseline_tpot_ms", "baseline_output_throughput", "baseline_mean_e2el_ms", "baseline_mean_ttft_ms",
                "baseline_request_goodput", "baseline_preemptions"):
        assert key in row, key
    lists = {key for key, value in row.items() if isinstance(value, (list, tuple, dict))}
    assert lists == {"spec_decode_per_position_acceptance_rates", "accepted_length_histogram"}  # the rest scalars
    assert 0 < row["tpot_ms_ci95_hi"] - row["tpot_ms_ci95_lo"] < 0.5 * row["tpot_ms"]
    assert row["throughput_speedup_ci95_lo"] <= row["throughput_speedup"] <= row["throughput_speedup_ci95_hi"]
    assert math.isnan(row["request_goodput"]) and math.isnan(row["slo_attainment"])  # no [slo] table
    assert 0 < row["kv_tokens_peak"] <= row["kv_token_budget"]


def test_slo_table_gives_goodput_and_attainment():
    base = {"workload": {"requests": 6, "batch": 2, "output_tokens": 32}}
    loose = evaluate(scenario_from_dict({**base, "slo": {"ttft_ms": 1e6, "tpot_ms": 1e6}}), seed=0)
    tight = evaluate(scenario_from_dict({**base, "slo": {"tpot_ms": 1e-3}}), seed=0)
    assert loose["slo_attainment"] == 1.0 and tight["slo_attainment"] == 0.0
    # every request meets a loose SLO: goodput is requests over the makespan
    assert loose["request_goodput"] == pytest.approx(6 / (loose["duration"]))
    assert tight["request_goodput"] == 0.0 and tight["baseline_request_goodput"] == 0.0


def test_evaluate_analytic_method_has_no_simulation():
    s = scenario_from_dict({"run": {"method": "analytic"}})
    row = evaluate(s, seed=0)
    assert row["method"] == "analytic" and row["sim_wall_s"] == 0.0
    assert math.isnan(row["iterations"]) and row["speedup_vs_autoregressive"] > 0


def test_alpha_from_the_law_when_absent():
    from sdsl_sim.analytic import alpha_from_sizes

    s = scenario_from_dict({"model": {"target_params": "70B", "draft_params": "277M"}, "hardware": {"name": "ideal", "tp": 1},
                            "workload": {"requests": 1, "batch": 1, "output_tokens": 32}, "run": {"method": "analytic"}})
    from sdsl_sim.models import synthetic_model

    row = evaluate(s, 0)
    # the law is evaluated at the synthetic models' computed parameter counts (within 0.1% of nominal)
    draft, target = synthetic_model(277e6).params, synthetic_model(70e9).params
    assert row["alpha"] == pytest.approx(float(alpha_from_sizes(draft, target, 1e13)))
    assert row["alpha_source"] == "sdsl-law"


def test_memory_shortfall_is_an_input_error():
    s = scenario_from_dict({"model": {"target": "llama-3.1-70b", "draft": "llama-3.2-1b"},
                            "hardware": {"name": "a100-80gb-sxm", "tp": 1}})
    with pytest.raises(InputError, match="tp"):
        evaluate(s, 0)


def test_a_model_named_and_sized_at_once_is_an_error():
    with pytest.raises(InputError, match="keys 'model.target' and 'model.target_params' both given"):
        scenario_from_dict({"model": {"target": "llama-3.1-8b", "target_params": "8B"}}, source="s.toml")


def test_a_step_budget_below_the_batch_is_refused_from_the_scenario_or_the_runtime(tmp_path):
    from sdsl_sim.sim.setup import setup

    with pytest.raises(InputError, match="key 'scheduler.max_num_batched_tokens' = 32; expected at least "
                                         "workload.batch = 64"):
        setup(load_scenario(write(tmp_path, "[workload]\nbatch = 64\n[scheduler]\nmax_num_batched_tokens = 32\n")))
    runtime = tmp_path / "small-budget.toml"
    runtime.write_text((files("sdsl_sim") / "hardware_profiles" / "runtimes" / "default.toml").read_text()
                       + "max_num_batched_tokens = 32\n")
    with pytest.raises(InputError, match="runtime 'small-budget''s max_num_batched_tokens = 32; expected at least"):
        setup(load_scenario(write(tmp_path, f"[workload]\nbatch = 64\n[hardware]\nruntime = '{runtime}'\n")))


@pytest.mark.parametrize("data,tp", [
    ({"model": {"target": "llama-3.1-8b"}}, 1),  # 16 GB of weights on one 80 GB H100
    ({}, 2),  # 70B + 1B: 142 GB of bf16 weights and 8 x 1.3k tokens of KV need two H100s
    ({"hardware": {"name": "b200"}}, 1),  # 180 GB on a B200
    ({"model": {"weight_dtype": "fp8"}, "workload": {"batch": 64, "prompt_tokens": 8192}}, 4),
])
def test_a_scenario_without_tp_runs_on_the_fewest_gpus_that_hold_its_batch(data, tp):
    """A partial dict names a model, not the 70B default's tp: it gets the fewest GPUs (a power of two)
    whose memory holds the weights and the whole batch at its longest; half as many would not."""
    from sdsl_sim.costs import kv_token_capacity
    from sdsl_sim.sim.setup import resolve

    scenario = scenario_from_dict(data)
    parts = resolve(scenario)
    cfg = scenario.config
    assert cfg["hardware"]["tp"] == tp

    def capacity(tp):
        return kv_token_capacity([parts.target, parts.draft], parts.gpu, tp=tp, weight_dtype=cfg["model"]["weight_dtype"],
                                 kv_dtype=cfg["model"]["kv_dtype"])

    batch, longest = cfg["workload"]["batch"], parts.longest_tokens
    assert capacity(tp) >= batch * longest
    if tp > 1:  # the context also holds the lookahead's slots, in whole KV blocks: at most this much more
        slack = cfg["decoding"]["max_gamma"] + 1 + parts.scheduler["block_size"]
        assert capacity(tp // 2) < batch * (longest + slack)


def test_a_target_no_gpu_count_holds_is_one_error_naming_tp():
    with pytest.raises(InputError, match="hardware.tp.*use tp >="):
        from sdsl_sim.sim.setup import resolve
        resolve(scenario_from_dict({"model": {"target_params": "900T", "draft_params": "1B"}}))
