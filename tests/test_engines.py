"""Engine runtime profiles as data: every engine profile loads and sources its numbers, and each key's
physics is what its documentation says (per-iteration host work, the draft's tensor parallelism and CUDA
graphs, an unsharded LM head, HF's dynamic draft length), plus the implied-acceptance round trip."""

import dataclasses
import json
import re
from importlib.resources import files

import numpy as np
import pytest

from sdsl_sim.analytic import expected_tokens_per_iteration
from sdsl_sim.cli import main
from sdsl_sim.costs import Deployment, kv_token_capacity, pass_cost
from sdsl_sim.errors import InputError
from sdsl_sim.hardware import list_runtimes, load_gpu, load_runtime
from sdsl_sim.models import kv_bytes_per_token, load_model
from sdsl_sim.scenario import scenario_from_dict
from sdsl_sim.sim.infer import infer_alpha
from sdsl_sim.sim.policies import HeuristicGamma
from sdsl_sim.sim.run import run_scenario
from sdsl_sim.sim.setup import setup
from sdsl_sim.step import StepPricer

RUNTIMES = files("sdsl_sim") / "hardware_profiles" / "runtimes"
ENGINES = ("vllm", "vllm-v0", "sglang", "trtllm", "hf-transformers", "gpt-fast")


@pytest.mark.parametrize("name", ENGINES)
def test_every_engine_profile_loads_and_every_number_has_a_source_comment(name):
    load_runtime(name)
    for line in (RUNTIMES / f"{name}.toml").read_text().splitlines():
        key_value = line.split("#", 1)[0].strip()
        if re.fullmatch(r"\w+ = [-0-9.e+\[\], ]+", key_value):  # a number or an array of numbers
            assert "#" in line and len(line.split("#", 1)[1].strip()) > 10, f"{name}: {line!r} has no source"


def test_the_built_in_runtimes_are_the_engines_and_the_generic_three():
    assert set(list_runtimes()) == {*ENGINES, "default", "eager", "none"}


@pytest.mark.parametrize("edit, needle", [
    ('draft_tp = "own"', 'draft_tp = "half"', ),
    ("spec_iteration_us = 0.0", "spec_iteration_us = inf"),
    ("spec_iteration_us = 0.0", "spec_iteration_us = -1.0"),
    ("shard_lm_head = true", 'shard_lm_head = "yes"'),
    ("kv_memory_fraction = 0.9", "kv_memory_fraction = 1.5"),
    ("kv_memory_fraction = 0.9", "kv_memory_fraction = 0"),
    ("kv_memory_fraction = 0.9", 'kv_memory_fraction = "most"'),
    ("kv_memory_fraction = 0.9", "kv_memory_fraction = [[2, 0.9]]"),
    ("kv_memory_fraction = 0.9", "kv_memory_fraction = [[1, 0.9], [1, 0.8]]"),
    ("kv_memory_fraction = 0.9", "kv_memory_fraction = [[1, 0.9, 3]]"),
    ("kv_memory_fraction = 0.9", "kv_memory_fraction = [[1, 0.9], [100000, 0.8]]"),
    ('kv_memory_basis = "total"', 'kv_memory_basis = "free memory"'),
    ("kv_memory_fraction = 0.9", "# no fraction, yet a basis"),
])
def test_bad_engine_profiles_are_one_line_errors(tmp_path, edit, needle):
    path = tmp_path / "mine.toml"
    path.write_text((RUNTIMES / "vllm.toml").read_text().replace(*edit[:1], needle))
    with pytest.raises(InputError) as info:
        load_runtime(str(path))
    assert str(path) in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("tp", [1, 2, 8])
def test_an_engines_kv_pool_is_its_fraction_of_memory_on_its_basis(tp):
    """vLLM's 0.9 and SGLang's tp-dependent mem_fraction_static count the weights in (of the whole memory);
    TensorRT-LLM's 0.9 is of what the weights leave; an engine that states no pool keeps the GPU's reserve."""
    gpu, model = load_gpu("h100-sxm"), load_model("llama-3.1-8b")
    total, weights, per_token = tp * gpu.memory_bytes, model.params * 2.0, kv_bytes_per_token(model, "bf16", tp)
    sglang = {1: 0.88, 2: 0.87, 8: 0.81}[tp]
    expected = {"vllm": (0.9 * total - weights) / per_token, "sglang": (sglang * total - weights) / per_token,
                "trtllm": 0.9 * (total - weights) / per_token,
                "hf-transformers": ((1 - gpu.memory_reserve_fraction) * total - weights) / per_token}
    for name, tokens in expected.items():
        assert kv_token_capacity([model], gpu, tp=tp, runtime=name) == pytest.approx(tokens, rel=1e-12), name


def test_a_scenarios_memory_reserve_overrides_the_engines_kv_pool():
    def budget(**hardware):
        data = {"model": {"target": "llama-3.1-8b", "draft": "llama-3.2-1b"},
                "hardware": {"name": "h100-sxm", "tp": 1, "runtime": "trtllm", **hardware},
                "workload": {"requests": 4, "batch": 4, "prompt_tokens": 128, "output_tokens": 16}}
        return setup(scenario_from_dict(data, source="test")).base_kv_token_budget

    gpu, model = load_gpu("h100-sxm"), load_model("llama-3.1-8b")
    per_token, weights = kv_bytes_per_token(model, "bf16", 1), model.params * 2.0
    assert budget() == pytest.approx(0.9 * (gpu.memory_bytes - weights) / per_token, rel=1e-12)
    assert budget(memory_reserve_fraction=0.3) == pytest.approx((0.7 * gpu.memory_bytes - weights) / per_token,
                                                                rel=1e-12)


def _pricer(runtime, draft_tp=1, tp=1, gpu="h100-sxm"):
    target = Deployment.of(load_model("llama-3.1-8b"), load_gpu(gpu), tp=tp, runtime=runtime)
    draft = Deployment.of(load_model("llama-3.2-1b"), load_gpu(gpu), tp=draft_tp, runtime=runtime.for_draft())
    return StepPricer.of(target, draft)


def test_a_per_iteration_overhead_adds_exactly_overhead_over_tokens_per_iteration_to_tpot_at_batch_1():
    base = load_runtime("default")
    extra = dataclasses.replace(base, spec_iteration_s=500e-6, spec_per_sequence_s=40e-6, spec_per_draft_pass_s=25e-6)
    expected = expected_tokens_per_iteration(0.7, np.arange(9))
    before = _pricer(base).tpot_by_gamma(1, 1024, expected)
    after = _pricer(extra).tpot_by_gamma(1, 1024, expected)
    gammas = np.arange(9)
    overhead = np.where(gammas > 0, 500e-6 + 40e-6 + 25e-6 * gammas, 0.0)
    assert after - before == pytest.approx(overhead / expected, rel=1e-12, abs=1e-15)
    assert after[0] == before[0]  # plain decoding pays none of it


def test_draft_tp_target_adds_the_drafts_all_reduces():
    runtime = load_runtime("vllm-v0")
    s_v0 = setup(scenario_from_dict({"hardware": {"name": "h100-sxm", "tp": 4, "runtime": "vllm-v0"}}))
    s_v1 = setup(scenario_from_dict({"hardware": {"name": "h100-sxm", "tp": 4, "runtime": "vllm"}}))
    assert s_v0.draft.tp == 4 and s_v1.draft.tp == 1
    draft = load_model("llama-3.2-1b")
    gpu = load_gpu("h100-sxm")
    cost = pass_cost(draft, gpu, batch=1, tokens=1, context=512, tp=4, runtime=runtime.for_draft())
    # vLLM's custom all-reduce kernel latency (the runtime's), not the GPU profile's eager NCCL figures
    per = runtime.allreduce_latency_s + 3 * runtime.allreduce_latency_per_peer_s
    assert per < gpu.allreduce_latency_s + 3 * gpu.allreduce_latency_per_peer_s
    assert cost.breakdown_s["allreduce"] == pytest.approx(2 * draft.n_layers * per, rel=0.01)
    assert pass_cost(draft, gpu, batch=1, tokens=1, context=512, tp=1).breakdown_s.get("allreduce", 0.0) == 0.0
    # and an explicit hardware.draft_tp still wins over the runtime's policy
    s = setup(scenario_from_dict({"hardware": {"name": "h100-sxm", "tp": 4, "runtime": "vllm-v0", "draft_tp": 1}}))
    assert s.draft.tp == 1


def test_an_unsharded_lm_head_adds_exactly_its_weight_read():
    model, gpu = load_model("llama-3.1-70b"), load_gpu("h100-sxm")
    sharded = load_runtime("default")
    unsharded = dataclasses.replace(sharded, shard_lm_head=False)
    at_tp1 = pass_cost(model, gpu, batch=1, tokens=1, context=0, tp=1, runtime=sharded).breakdown_s["lm_head"]
    whole = pass_cost(model, gpu, batch=1, tokens=1, context=0, tp=8, runtime=unsharded).breakdown_s["lm_head"]
    split = pass_cost(model, gpu, batch=1, tokens=1, context=0, tp=8, runtime=sharded).breakdown_s["lm_head"]
    assert whole == pytest.approx(at_tp1, rel=1e-12)  # every GPU reads the whole matrix, as on one GPU
    assert split < whole / 4
    gpt_fast = pass_cost(model, gpu, batch=1, tokens=1, context=0, tp=8, runtime="gpt-fast").breakdown_s["lm_head"]
    assert gpt_fast == pytest.approx(whole, rel=1e-12)


def test_an_eager_draft_pays_kernel_launches_the_graphed_target_does_not():
    runtime = load_runtime("vllm")
    assert runtime.cuda_graphs and not runtime.for_draft().cuda_graphs
    draft, gpu = load_model("llama-3.2-1b"), load_gpu("h100-sxm")
    graphed = pass_cost(draft, gpu, batch=1, tokens=1, context=512, runtime=runtime).latency_s
    eager = pass_cost(draft, gpu, batch=1, tokens=1, context=512, runtime=runtime.for_draft()).latency_s
    assert eager > graphed


def test_hf_heuristic_draft_length_follows_the_transformers_rule():
    policy = HeuristicGamma(max_gamma=16)
    seen = [policy.choose(1, 0)]
    for accepted, judged in [(5, 5), (7, 7), (3, 4), (0, 1), (7, 7), (0, 0), (0, 1), (0, 1), (0, 1), (0, 1), (0, 1)]:
        policy.observe(accepted, judged)
        seen.append(policy.choose(1, 0))
    # start 5; +2 when all accepted, -1 otherwise (never below 1); an iteration with nothing judged changes nothing
    assert seen == [5, 7, 9, 8, 7, 9, 9, 8, 7, 6, 5, 4]
    capped = HeuristicGamma(max_gamma=6)
    capped.observe(5, 5)
    assert capped.choose(1, 0) == 6


def test_hf_heuristic_in_a_run_moves_gamma_by_the_rule_every_iteration():
    scenario = scenario_from_dict({
        "hardware": {"name": "a100-80gb-sxm", "tp": 1, "runtime": "hf-transformers"},
        "model": {"target": "llama-3.1-8b", "draft": "llama-3.2-1b"},
        "workload": {"requests": 1, "batch": 1, "prompt_tokens": 64, "output_tokens": 400},
        "decoding": {"gamma": "heuristic", "alpha": 0.8},
    })
    steps = run_scenario(scenario, 3).spec.steps
    steps = steps[steps.decoders > 0].reset_index(drop=True)
    assert steps.gamma.iloc[0] == 5
    for (_, before), (_, after) in zip(steps.iloc[:-1].iterrows(), steps.iloc[1:].iterrows()):
        rule = min(before.gamma + 2, 16) if before.accepted == before.judged else max(1, before.gamma - 1)
        assert after.gamma == rule


@pytest.mark.parametrize("alpha", [0.55, 0.8])
def test_infer_alpha_recovers_the_alpha_of_a_simulated_speedup(alpha):
    data = {
        "hardware": {"name": "h100-sxm", "tp": 4, "runtime": "vllm"},
        "workload": {"requests": 4, "batch": 4, "prompt_tokens": 256, "output_tokens": 3000},
        "decoding": {"gamma": 4, "alpha": alpha},
    }
    measured = run_scenario(scenario_from_dict(data), 0).summary["speedup_vs_autoregressive"]
    result = infer_alpha(data, measured)
    assert result["reproducible"] and abs(result["alpha"] - alpha) < 0.01
    assert result["mean_accepted_tokens"] == pytest.approx(expected_tokens_per_iteration(result["alpha"], 4))


def test_infer_alpha_says_when_no_acceptance_reproduces_a_speedup(capsys):
    assert main(["infer-alpha", "--target", "llama-3.1-70b", "--draft", "llama-3.2-1b", "--hardware", "h100-sxm",
                 "--tp", "4", "--runtime", "vllm", "--gamma", "4", "--measured-speedup", "9", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["reproducible"] is False and out["alpha"] is None and out["speedup_at_alpha_1"] < 9
    assert main(["infer-alpha", "--target", "llama-3.1-70b", "--draft", "llama-3.2-1b", "--hardware", "h100-sxm",
                 "--gamma", "0", "--measured-speedup", "2"]) == 2
    assert capsys.readouterr().err.startswith("error: ")


def test_simulate_takes_the_runtime_and_dtypes(capsys):
    argv = ["simulate", "--target", "llama-3.1-8b", "--draft", "llama-3.2-1b", "--hardware", "h100-sxm", "--gamma", "3",
            "--alpha", "0.7", "--output-tokens", "64", "--json"]
    assert main(argv) == 0
    default = json.loads(capsys.readouterr().out)["tpot_ms"]
    assert main(argv + ["--runtime", "hf-transformers"]) == 0
    assert json.loads(capsys.readouterr().out)["tpot_ms"] > default
    assert main(argv + ["--weight-dtype", "fp8", "--kv-dtype", "fp8"]) == 0
    assert json.loads(capsys.readouterr().out)["tpot_ms"] < default


def test_the_heuristic_schedules_stationary_distribution_solves_its_chain():
    from sdsl_sim.analytic import heuristic_gamma_distribution

    rng = np.random.default_rng(7)
    for size in (1, 2, 6, 16):
        a = rng.uniform(0.05, 0.95, size)
        pi = heuristic_gamma_distribution(a)
        moves = np.zeros((size, size))
        for i in range(size):
            moves[i, min(i + 2, size - 1)] += a[i]
            moves[i, max(i - 1, 0)] += 1 - a[i]
        assert pi.sum() == pytest.approx(1.0) and (pi >= 0).all()
        assert pi @ moves == pytest.approx(pi, abs=1e-12)


@pytest.mark.parametrize("alpha", [pytest.param(0.5, marks=pytest.mark.slow), 0.7,
                                   pytest.param(0.85, marks=pytest.mark.slow)])
def test_the_stationary_heuristic_schedule_predicts_the_simulated_run(alpha):
    """The expected-value model prices HF's schedule in its stationary state: its tokens per iteration and
    TPOT lie in a simulated run's own 95% intervals (40 requests of 1024 tokens, seed 0)."""
    from sdsl_sim.analytic import heuristic_expected_tokens

    data = {"run": {"method": "simulated"},
            "model": {"target": "vicuna-7b", "draft": "vicuna-68m", "weight_dtype": "fp16"},
            "hardware": {"name": "a100-80gb-sxm", "tp": 1, "runtime": "hf-transformers"},
            "workload": {"requests": 40, "batch": 1, "prompt_tokens": 128, "output_tokens": 1024},
            "decoding": {"gamma": "heuristic", "alpha": alpha}}
    simulated = run_scenario(scenario_from_dict(data), 0).summary
    low, high = simulated["mean_tokens_per_iteration_ci95"]
    assert low <= heuristic_expected_tokens(alpha, 16) <= high
    expected = run_scenario(scenario_from_dict({**data, "run": {"method": "analytic"}}), 0).summary
    low, high = simulated["tpot_ms_ci95"]
    assert low <= expected["tpot_ms"] <= high


def test_infer_alpha_inverts_the_heuristic_schedule():
    from sdsl_sim.analytic import heuristic_expected_tokens
    from sdsl_sim.validation import per_token_alpha

    data = {"model": {"target": "vicuna-7b", "draft": "vicuna-68m", "weight_dtype": "fp16"},
            "hardware": {"name": "a100-80gb-sxm", "tp": 1, "runtime": "hf-transformers"},
            "workload": {"requests": 1, "batch": 1, "prompt_tokens": 128, "output_tokens": 512},
            "decoding": {"gamma": "heuristic", "alpha": 0.62}}
    speedup = run_scenario(scenario_from_dict({**data, "run": {"method": "analytic"}}), 0).summary
    result = infer_alpha(data, speedup["speedup_vs_autoregressive"])
    assert result["reproducible"] and result["alpha"] == pytest.approx(0.62, abs=1e-6)
    assert result["mean_accepted_tokens"] == pytest.approx(heuristic_expected_tokens(0.62, 16))
    assert per_token_alpha("mean_accepted_tokens", heuristic_expected_tokens(0.62, 16), 0, "heuristic") == \
        pytest.approx(0.62, abs=1e-9)
