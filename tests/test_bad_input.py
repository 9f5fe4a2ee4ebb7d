"""Regression tests for each class of the reliability issue's hostile-user findings: exact integers,
stated bounds, empty strings, OS errors at the edge, numpy warnings, intervals with a physical range,
and `speculation_helps` against the integer optimum. (Store faults: test_store_faults.py; every command
under random flags: test_fuzz.py.)"""

import errno
import json
import math
import time
import warnings

import numpy as np
import pytest

from sdsl_sim import analytic, units
from sdsl_sim.cli import main
from sdsl_sim.errors import InputError
from sdsl_sim.scenario import scenario_from_dict
from sdsl_sim.sim.run import run_scenario


def one_error_line(capsys, *needles) -> str:
    captured = capsys.readouterr()
    assert captured.err.startswith("error: ") and captured.err.count("\n") == 1, captured.err
    assert captured.out == ""
    for needle in needles:
        assert needle in captured.err, captured.err
    return captured.err


# ---------------------------------------------------------------- exact integers and bounds


@pytest.mark.parametrize("text, value", [("9007199254740993", 9007199254740993), ("1e3", 1000), (" 42 ", 42),
                                         ("2.0e1", 20), (str(units.MAX_SEED), units.MAX_SEED)])
def test_integers_parse_exactly(text, value):
    assert units.parse_int(text, units.SEED) == value


@pytest.mark.parametrize("text, needle", [
    ("1.5", "is not an integer"), ("inf", "is not finite"), ("nan", "is not finite"), ("", "is empty"),
    ("0x10", "is not an integer"), ("-1", "is below 0"), (str(units.MAX_SEED + 1), "is above MAX_SEED"),
])
def test_integers_that_are_not_exact_or_in_range_are_refused(text, needle):
    with pytest.raises(InputError, match=needle):
        units.parse_int(text, units.SEED)


def test_a_huge_exponent_is_refused_before_it_becomes_an_integer():
    started = time.perf_counter()
    with pytest.raises(InputError, match="is above MAX_BATCH"):
        units.parse_int("1e999999999", units.BATCH)
    assert time.perf_counter() - started < 1.0  # int(Decimal) of a billion digits would take minutes


def test_a_seed_beyond_a_float_reaches_the_run_unrounded(capsys):
    assert main(["run", "--seed", "9007199254740993", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["seed"] == 9007199254740993


@pytest.mark.parametrize("argv, needle", [
    (["simulate", "--target-params", "70B", "--draft-params", "1B", "--hardware", "ideal", "--batch", "1e9"],
     "--batch: '1e9' is above MAX_BATCH = 65,536"),
    (["simulate", "--target-params", "70B", "--draft-params", "1B", "--hardware", "ideal", "--requests", "1e23"],
     "--requests: '1e23' is above MAX_REQUESTS = 10,000,000"),
    (["simulate", "--target-params", "70B", "--draft-params", "1B", "--hardware", "ideal", "--max-gamma", "65"],
     "--max-gamma: '65' is above MAX_GAMMA = 64"),
    (["latency", "--model", "llama-3.2-1b", "--hardware", "h100-sxm", "--tokens", "1e23"],
     "--tokens: '1e23' is above MAX_TOKENS"),
    (["sweep", "example-sweep", "--out", "x", "--workers", "100000"], "--workers: '100000' is above MAX_WORKERS"),
    (["analytic", "nstar", "--target-params", "1e16"], "is above MAX_PARAMS"),
    (["analytic", "nstar", "--target-params", "70B", "--train-tokens", "1e19"], "is above MAX_TRAIN_TOKENS"),
])
def test_counts_beyond_their_stated_bound_are_one_error_line(capsys, argv, needle):
    assert main(argv) == 2
    one_error_line(capsys, needle)


# ---------------------------------------------------------------- empty strings are values, not "not given"


@pytest.mark.parametrize("argv", [
    ["latency", "--model", "llama-3.2-1b", "--hardware", "h100-sxm", "--runtime", ""],
    ["run", "--out", ""],
    ["run", " "],
    ["simulate", "--target", "", "--draft-params", "1B", "--hardware", "ideal"],
    ["validate", "--alphas", ""],
    ["analytic", "fit-nstar", "--targets", ","],
    ["sweep", "example-sweep", "--out", ""],
])
def test_empty_strings_are_refused(capsys, argv):
    assert main(argv) == 2
    one_error_line(capsys, "is empty")


def test_an_empty_runtime_in_a_scenario_is_refused():
    with pytest.raises(InputError, match="key 'hardware.runtime' = '' is empty"):
        scenario_from_dict({"hardware": {"runtime": ""}})


# ---------------------------------------------------------------- OS errors at the edge


def test_out_naming_a_file_is_one_error_line(tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("mine")
    assert main(["run", "--out", str(afile)]) == 2
    one_error_line(capsys, str(afile))
    assert main(["report", "seed-experiment", "--out", str(afile), "--json"]) == 2
    one_error_line(capsys, str(afile))
    assert afile.read_text() == "mine"


def test_a_full_disk_while_writing_records_is_one_error_line(tmp_path, capsys, monkeypatch):
    from sdsl_sim import metrics

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "out" / "requests.parquet"))

    monkeypatch.setattr(metrics, "write_parquet", full)
    assert main(["run", "--out", str(tmp_path / "out")]) == 2
    one_error_line(capsys, "requests.parquet: No space left on device")


def test_an_unreadable_profile_is_one_error_line(tmp_path, capsys, monkeypatch):
    from pathlib import Path

    profile = tmp_path / "gpu.toml"
    profile.write_text("")
    real = Path.read_bytes

    def denied(self):
        if self == profile:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", denied)  # chmod does not stop root, who runs CI
    for argv in (["latency", "--model", "llama-3.2-1b", "--hardware", str(profile)],
                 ["nstar", "--target", "llama-3.1-8b", "--hardware", str(profile)]):
        assert main(argv) == 2
        one_error_line(capsys, f"{profile}: cannot be read (Permission denied)")


# ---------------------------------------------------------------- no numpy warnings before an error line


@pytest.mark.parametrize("argv", [
    ["analytic", "nstar", "--target-params", "10"],
    ["analytic", "nstar", "--target-params", "70B", "--train-tokens", "1"],
    ["analytic", "fit-nstar", "--train-tokens", "1"],
    ["analytic", "fit-nstar", "--targets", "70B,70B"],
])
def test_handled_cases_print_no_warnings(capsys, argv):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a RankWarning or an overflow would now raise, not print
        assert main(argv) == 2
    one_error_line(capsys)


def test_fit_nstar_needs_distinct_targets(capsys):
    assert main(["analytic", "fit-nstar", "--targets", "70B,70B"]) == 2
    one_error_line(capsys, "at least 2 distinct target sizes, got 7e+10, 7e+10")


# ---------------------------------------------------------------- intervals


def _short_run(seed, requests, output_tokens, batch=4):
    scenario = scenario_from_dict({
        "hardware": {"name": "ideal", "tp": 1},
        "model": {"target": "llama-3.1-8b", "draft": "llama-3.2-1b"},
        "workload": {"requests": requests, "batch": batch, "prompt_tokens": 32, "output_tokens": output_tokens},
        "decoding": {"gamma": 3, "alpha": 0.7},
    })
    return run_scenario(scenario, seed).summary


def test_short_runs_report_no_interval_and_say_why():
    s = _short_run(0, requests=3, output_tokens=12)
    for key in ("tpot_ms", "mean_ttft_ms", "mean_e2el_ms", "acceptance_rate", "speedup_vs_autoregressive"):
        assert all(math.isnan(v) for v in s[f"{key}_ci95"]), key
        assert s[f"{key}_ci95_note"].startswith("undefined: "), key
    assert "3 requests; the t interval needs at least 10 requests" in s["mean_ttft_ms_ci95_note"]


@pytest.mark.parametrize("seed", range(8))
def test_intervals_stay_in_the_range_of_their_quantity(seed):
    s = _short_run(seed, requests=10, output_tokens=80, batch=10)  # about 25 decode steps: just enough
    for key in [k[: -len("_ci95")] for k in s if k.endswith("_ci95")]:
        lo, hi = s[f"{key}_ci95"]
        assert math.isnan(lo) == math.isnan(hi) == (f"{key}_ci95_note" in s), key
        if not math.isnan(lo):
            assert 0 <= lo <= hi, key
    lo, hi = s["acceptance_rate_ci95"]
    assert 0 <= lo <= hi <= 1
    lo, hi = s["mean_tokens_per_iteration_ci95"]
    assert 1 <= lo <= hi <= 1 + 3


# ---------------------------------------------------------------- speculation_helps and the integer optimum


def test_speculation_helps_exactly_where_the_best_integer_gamma_is_positive():
    alpha, ratio = np.meshgrid(np.linspace(0.01, 0.99, 99), np.geomspace(1e-4, 0.99, 99))
    helps = analytic.speculation_helps(alpha, ratio)
    assert np.array_equal(helps, analytic.best_integer_gamma(alpha, ratio) > 0)
    # A real optimum in (0, 1) with no integer lookahead that helps exists on this grid: the old rule erred there.
    real = analytic.optimal_gamma(alpha, ratio)
    assert np.any((real > 0) & ~helps)


def test_the_throughput_command_agrees_with_its_own_best_integer_gamma(capsys):
    assert main(["analytic", "throughput", "--alpha", "0.3", "--target-params", "70B", "--draft-params", "20B",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["speculation_helps"] == (out["best_integer_gamma"] > 0)
