"""`sdsl-sim analytic ...` output keys, the seed's table, and one-line errors with exit status 2."""

import json
import subprocess
import sys

import pytest

from sdsl_sim.cli import main


def run_json(capsys, *argv):
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_throughput_keys_closed_form_and_fixed_gamma(capsys):
    out = run_json(capsys, "analytic", "throughput", "--alpha", "0.65", "--target-params", "70B", "--draft-params", "277M")
    for key in ("alpha", "target_params", "draft_params", "gamma", "gamma_opt", "expected_tokens_per_iteration",
                "throughput_tokens_per_flop", "speedup_vs_autoregressive", "speculation_helps"):
        assert key in out
    assert out["gamma"] == out["gamma_opt"] == pytest.approx(9.998, abs=1e-3)
    assert out["speculation_helps"] is True
    fixed = run_json(capsys, "analytic", "throughput", "--alpha", "0.65", "--target-params", "70e9",
                     "--draft-params", "0.277B", "--gamma", "4")
    assert fixed["gamma"] == 4
    assert fixed["expected_tokens_per_iteration"] == pytest.approx((1 - 0.65**5) / 0.35)
    assert fixed["speedup_vs_autoregressive"] < out["speedup_vs_autoregressive"]


def test_throughput_where_speculation_does_not_help(capsys):
    out = run_json(capsys, "analytic", "throughput", "--alpha", "0.05", "--target-params", "2e9", "--draft-params", "1e9")
    assert out["gamma_opt"] == 0 and out["speedup_vs_autoregressive"] == 1.0
    assert out["speculation_helps"] is False


@pytest.mark.parametrize("size, linear_m", [("13B", 122.3), ("30B", 168.4), ("70B", 276.8), ("110B", 385.2)])
def test_nstar_reproduces_the_seed_table(capsys, size, linear_m):
    out = run_json(capsys, "analytic", "nstar", "--target-params", size, "--train-tokens", "1e13")
    assert round(out["n_star_linear"] / 1e6, 1) == linear_m
    assert out["n_star_params"] == pytest.approx(out["n_star_linear"], rel=0.15)
    assert 0 < out["alpha_at_n_star"] < 1 and out["gamma_opt_at_n_star"] > 1
    assert out["draft_perplexity"] > out["target_perplexity"]


def test_fit_nstar(capsys):
    out = run_json(capsys, "analytic", "fit-nstar", "--train-tokens", "1e13", "--targets", "13e9,30B,70B,110B")
    assert [p["target_params"] for p in out["points"]] == [13e9, 30e9, 70e9, 110e9]
    assert set(out) >= {"mu", "m0", "r2", "points"}


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--alpha", "1.2", "--target-params", "70B", "--draft-params", "1B"], "'1.2' is above 1; expected a finite number in (0, 1)"),
        (["--alpha", "0", "--target-params", "70B", "--draft-params", "1B"], "'0' is at or below 0; expected a finite number in (0, 1)"),
        (["--alpha", "0.6", "--target-params", "70X", "--draft-params", "1B"], "'70X' is not a number"),
        (["--alpha", "0.6", "--target-params", "-5", "--draft-params", "1B"], "size '-5' is below 1"),
        (["--alpha", "0.6", "--target-params", "1B", "--draft-params", "2B"], "must be smaller than"),
        (["--alpha", "0.6", "--target-params", "70B", "--draft-params", "1B", "--gamma", "2.5"], "'2.5' is not an integer; expected an integer in [0, 64]"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, argv, needle):
    assert main(["analytic", "throughput", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and needle in err


def test_law_alpha_outside_unit_interval_is_reported(capsys):
    assert main(["analytic", "nstar", "--target-params", "1M"]) == 2
    assert "no draft size helps" in capsys.readouterr().err


def test_console_script_exit_status_and_no_traceback():
    proc = subprocess.run(
        [sys.executable, "-m", "sdsl_sim", "analytic", "throughput", "--alpha", "7", "--target-params", "7B",
         "--draft-params", "1B"],
        capture_output=True, text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1
    assert "Traceback" not in proc.stderr and proc.stdout == ""
