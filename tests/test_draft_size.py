"""Hardware-aware N* (sdsl_sim.draft_size): agrees with the analytic N* on the ideal machine, and its
expected-value TPOT is what the simulator measures at the chosen draft."""

import json

import pytest

from sdsl_sim.cli import main
from sdsl_sim.draft_size import draft_point, hardware_n_star
from sdsl_sim.hardware import load_gpu
from sdsl_sim.models import load_model, synthetic_model
from sdsl_sim.scenario import scenario_from_dict
from sdsl_sim.sim.run import run_scenario


@pytest.mark.parametrize("target", ["llama-3.1-70b", "opt-13b", "llama-3.1-405b"])
def test_ideal_machine_reproduces_the_analytic_n_star(target):
    result = hardware_n_star(load_model(target), load_gpu("ideal"))
    assert result.n_star_hardware == pytest.approx(result.n_star_analytic, rel=0.10)


def test_scan_minimum_is_the_curve_minimum_and_beats_the_analytic_size_on_a_real_gpu():
    result = hardware_n_star(load_model("llama-3.1-70b"), load_gpu("h100-sxm"), tp=4, batch=1)
    tpots = [p.tpot_s for p in result.curve]
    assert result.at_hardware.tpot_s == min(tpots)
    assert result.at_hardware.tpot_s <= result.at_analytic.tpot_s
    # The curve has an interior minimum: the smallest and largest drafts are both worse.
    assert tpots[0] > min(tpots) and tpots[-1] > min(tpots)


def test_expected_value_tpot_is_what_the_simulator_measures():
    target, gpu = load_model("llama-3.1-8b"), load_gpu("a100-80gb-sxm")
    draft = synthetic_model(60e6)
    point = draft_point(target, draft, gpu, train_tokens=1e13, batch=4, context=1024)
    scenario = scenario_from_dict({
        "model": {"target": "llama-3.1-8b", "draft_params": 60e6, "train_tokens": 1e13},
        "hardware": {"name": "a100-80gb-sxm", "tp": 1},
        "workload": {"arrival": "static", "requests": 4, "batch": 4, "prompt_tokens": 1024, "output_tokens": 3000},
        "decoding": {"gamma": point.gamma, "max_gamma": point.gamma},
    })
    summary = run_scenario(scenario, seed=1).summary
    lo, hi = summary["tpot_ms_ci95"]
    # The simulation's context grows from 1024 to 4024 tokens, the point's is fixed at 1024; compare the
    # simulation with its own expected value at the mean context, and that with the point at 1024.
    assert lo <= summary["predicted_tpot_ms"] <= hi
    assert summary["alpha"] == pytest.approx(point.alpha)
    assert summary["predicted_tpot_ms"] >= 1e3 * point.tpot_s


def test_nstar_cli_keys_and_errors(capsys):
    assert main(["nstar", "--target-params", "30B", "--hardware", "ideal", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("n_star_analytic", "n_star_hardware", "tpot_ms_at_analytic", "tpot_ms_at_hardware", "gamma_at_hardware"):
        assert key in out
    assert out["n_star_hardware"] == pytest.approx(out["n_star_analytic"], rel=0.10)
    assert main(["nstar", "--target", "llama-3.1-70b", "--hardware", "a100-80gb-sxm"]) == 2
    assert "use tp >= 2" in capsys.readouterr().err
    assert main(["nstar", "--hardware", "ideal"]) == 2
    assert "exactly one of --target" in capsys.readouterr().err


def test_near_optimal_range_brackets_the_optimum():
    result = hardware_n_star(load_model("llama-3.1-70b"), load_gpu("h100-sxm"), tp=4)
    lo, hi = result.n_star_hardware_range
    assert lo <= result.n_star_hardware <= hi
    best = result.at_hardware.tpot_s
    inside = [p for p in result.curve if lo <= p.draft_params <= hi]
    outside = [p for p in result.curve if not lo <= p.draft_params <= hi]
    assert inside and outside and min(p.tpot_s for p in outside) > 1.01 * best


def test_weight_dtype_reaches_memory_check_and_pass_costs(capsys):
    argv = ["nstar", "--target", "llama-3.1-405b", "--hardware", "h100-sxm", "--tp", "8", "--json"]
    assert main(argv) == 2  # 811 GB of bf16 weights do not fit in 8 x 0.9 x 85.5 GB (81559 MiB, 10% reserve)
    assert "use tp >= 16" in capsys.readouterr().err
    assert main([*argv, "--dtype", "fp8"]) == 0
    fp8 = json.loads(capsys.readouterr().out)
    assert fp8["dtype"] == "fp8" and fp8["n_star_hardware"] > 0


def test_nstar_runtime_by_name(capsys):
    base = ["nstar", "--target", "llama-3.1-8b", "--hardware", "a100-80gb-sxm", "--json"]
    assert main([*base, "--runtime", "eager"]) == 0
    eager = json.loads(capsys.readouterr().out)
    assert main(base) == 0
    default = json.loads(capsys.readouterr().out)
    assert eager["baseline_tpot_ms"] > default["baseline_tpot_ms"]  # launch gaps without CUDA graphs
    assert main([*base, "--runtime", "turbo"]) == 2
    assert "unknown runtime 'turbo'" in capsys.readouterr().err
