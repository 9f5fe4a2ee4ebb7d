"""`sdsl-sim simulate | run | validate` end to end through main()."""

import json

import pandas as pd
import pytest

from sdsl_sim.cli import main

KEYS = ("tpot_ms", "tpot_ms_ci95", "output_throughput", "mean_tokens_per_iteration", "acceptance_rate",
        "speedup_vs_autoregressive", "gamma", "alpha", "total_output_tokens", "iterations", "baseline_iterations",
        "throughput_speedup", "throughput_speedup_ci95", "e2e_speedup", "e2e_speedup_ci95", "sim_wall_s")
# `vllm bench serve`'s result keys (vllm/benchmarks/serve.py) at its default --metric-percentiles 99, for the
# four latency metrics, and its speculative decoding keys
VLLM_KEYS = ("completed", "failed", "duration", "total_input_tokens", "total_output_tokens", "request_throughput",
             "request_goodput", "output_throughput", "total_token_throughput", "max_concurrent_requests",
             *(f"{stat}_{metric}_ms" for metric in ("ttft", "tpot", "itl", "e2el")
               for stat in ("mean", "median", "std", "p99")),
             "spec_decode_acceptance_rate", "spec_decode_acceptance_length", "spec_decode_num_drafts",
             "spec_decode_draft_tokens", "spec_decode_accepted_tokens", "spec_decode_per_position_acceptance_rates")


def run_json(capsys, *argv):
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_simulate_json_keys(capsys):
    out = run_json(capsys, "simulate", "--target", "llama-3.1-70b", "--draft", "llama-3.2-1b", "--hardware",
                   "h100-sxm", "--tp", "4", "--alpha", "0.6", "--gamma", "4", "--batch", "2", "--output-tokens", "200")
    assert set(KEYS) <= set(out)
    assert out["gamma"] == 4 and out["alpha"] == 0.6 and out["total_output_tokens"] == 400
    lo, hi = out["tpot_ms_ci95"]
    assert 0 < hi - lo < 0.2 * out["tpot_ms"]  # a finite, informative interval, not a placeholder


def _flat(keys) -> set:
    """Result keys as a sweep row holds them: every interval as _lo and _hi, the notes left out (a note is
    there only when its interval is undefined)."""
    out = set()
    for key in keys:
        if key.endswith("_ci95"):
            out |= {f"{key}_lo", f"{key}_hi"}
        elif not key.endswith("_ci95_note"):
            out.add(key)
    return out


def test_simulate_run_and_sweep_rows_share_one_schema(capsys, tmp_path):
    """The same pair and workload three ways: `simulate` flags, a scenario file for `run`, a one-point sweep."""
    pair = ["--target", "llama-3.1-8b", "--draft", "llama-3.2-1b", "--hardware", "h100-sxm", "--batch", "4",
            "--context", "128", "--output-tokens", "96", "--gamma", "3"]
    table = ('[model]\ntarget = "llama-3.1-8b"\ndraft = "llama-3.2-1b"\n[hardware]\nname = "h100-sxm"\ntp = 1\n'
             '[workload]\nrequests = 4\nbatch = 4\nprompt_tokens = 128\noutput_tokens = 96\n'
             '[decoding]\ngamma = 3\n')
    (tmp_path / "pair.toml").write_text(table)
    (tmp_path / "sweep.toml").write_text(table.replace("[", "[base.") + '[axes]\nseed = [0]\n')
    simulated = run_json(capsys, "simulate", *pair)
    ran = run_json(capsys, "run", str(tmp_path / "pair.toml"))
    assert main(["sweep", str(tmp_path / "sweep.toml"), "--out", str(tmp_path / "rows"), "--no-progress"]) == 0
    capsys.readouterr()
    row = pd.read_parquet(tmp_path / "rows").iloc[0].to_dict()
    assert set(VLLM_KEYS) <= set(simulated)
    assert _flat(simulated) == _flat(ran)
    bookkeeping = {"point_id", "replicate", "sdsl_sim_version", "point_wall_s"}
    inputs = {key for key in row if "." in key}  # the point's scenario keys, as table.key columns
    assert _flat(set(row) - bookkeeping - inputs) == _flat(simulated) - {"scenario"}
    for key in ("completed", "total_output_tokens", "spec_decode_num_drafts", "mean_ttft_ms", "p99_itl_ms"):
        assert simulated[key] == ran[key] == row[key], key  # the same run, seed 0 each time
    assert json.loads(row["spec_decode_per_position_acceptance_rates"]) == simulated[
        "spec_decode_per_position_acceptance_rates"]


def test_metric_percentiles_and_output_file(capsys, tmp_path):
    target = tmp_path / "results" / "run.json"
    assert main(["run", "--metric-percentiles", "25,99.9", "--output", str(target)]) == 0
    table = capsys.readouterr().out
    assert "TTFT p25/p99.9" in table  # the table is still printed; the file holds the JSON
    saved = json.loads(target.read_text())
    assert {"p25_ttft_ms", "p99.9_ttft_ms", "p25_e2el_ms", "median_ttft_ms"} <= set(saved)
    assert not any(key.startswith(("p50_", "p90_", "p99_")) for key in saved)
    assert saved["p25_ttft_ms"] <= saved["median_ttft_ms"] <= saved["p99.9_ttft_ms"]
    assert run_json(capsys, "run", "--output", str(target))["p99_ttft_ms"] == json.loads(target.read_text())["p99_ttft_ms"]


@pytest.mark.parametrize("text", ["101", "50,50", "-1", "nan", "", "p99"])
def test_bad_metric_percentiles_are_one_line(capsys, text):
    assert main(["run", "--metric-percentiles", text]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1


def test_simulate_synthetic_sizes_and_law_alpha(capsys):
    out = run_json(capsys, "simulate", "--target-params", "70B", "--draft-params", "277M", "--hardware", "ideal",
                   "--output-tokens", "5000", "--train-tokens", "1e13")
    assert 0.6 < out["alpha"] < 0.7 and out["speedup_vs_autoregressive"] > 2


@pytest.mark.parametrize("argv,needle", [
    (["simulate", "--target", "llama-3.1-70b", "--draft", "llama-3.2-1b", "--hardware", "h100-sxm", "--alpha", "1.5"], "alpha"),
    (["simulate", "--target", "llama-3.1-70b", "--draft", "llama-3.2-1b", "--hardware", "h100"], "h100"),
    (["simulate", "--target", "llama-3.1-70b", "--hardware", "ideal"], "--draft"),
    (["simulate", "--target-params", "1B", "--draft-params", "7B", "--hardware", "ideal"], "smaller"),
    (["run", "no-such.toml"], "no-such.toml"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, argv, needle):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and needle in err and err.count("\n") == 1


def test_run_default_prints_summary_table(capsys):
    assert main(["run"]) == 0
    out = capsys.readouterr().out
    for label in ("TPOT", "speedup vs plain", "throughput", "TTFT p50/p90/p99", "time split", "scheduler",
                  "chunked prefill, 2048 tokens per step; paged KV", "queueing p50/p90/p99", "KV cache", "preemptions"):
        assert label in out, label
    assert "goodput" not in out  # the default scenario has no [slo] table


def test_run_prints_goodput_with_an_slo_table(capsys, tmp_path):
    path = tmp_path / "slo.toml"
    path.write_text('[workload]\nrequests = 4\nbatch = 4\noutput_tokens = 32\n'
                    '[scheduler]\nchunked_prefill = false\nkv_allocation = "reserve"\n[slo]\nttft_ms = 1e6\n')
    assert main(["run", str(path)]) == 0
    out = capsys.readouterr().out
    assert "prefill steps stall the batch; reserve KV" in out
    assert "requests/s meet the SLO (100.0% of requests" in out


def test_run_json_and_parquet(capsys, tmp_path):
    out = run_json(capsys, "run", "default", "--seed", "3", "--out", str(tmp_path))
    assert out["seed"] == 3 and out["method"] == "simulated"
    for name in ("requests", "steps", "itl", "emissions", "accepted_hist"):  # --out keeps the emissions
        assert (tmp_path / f"{name}.parquet").is_file() and (tmp_path / "baseline" / f"{name}.parquet").is_file()


def test_validate_small_grid(capsys):
    out = run_json(capsys, "validate", "--alphas", "0.7", "--ratios", "100", "--min-output-tokens", "100000")
    (point,) = out["points"]
    assert point["pass"] and out["passed"]
    assert abs(point["rel_error_vs_lambert_w"]) < 0.01


def test_validate_text_draws_no_progress_lines_off_a_terminal(capsys):
    from sdsl_sim.cli import main

    assert main(["validate", "--alphas", "0.7,0.8", "--ratios", "100", "--min-output-tokens", "20000"]) == 0
    out, err = capsys.readouterr()
    assert err == "" and "passed" in out and out.count("pass") >= 2  # a log file gets the table, not a bar


@pytest.mark.parametrize("argv, needle", [
    (["validate", "--ratios", "0"], "M/N '0' is at or below 1; expected a finite number in (1, 5000]"),
    (["validate", "--ratios", "1e9"], "M/N '1e9' is above 5000"),
    (["validate", "--alphas", "0.5,1.5"], "'1.5' is above 1; expected a finite number in (0, 1)"),
    (["simulate", "--target", "llama-3.1-8b", "--target-params", "8B", "--draft", "llama-3.2-1b",
      "--hardware", "a100-80gb-sxm"], "give exactly one of --target NAME or --target-params N"),
])
def test_more_bad_input_is_one_line_and_exit_2(capsys, argv, needle):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and needle in err


def test_run_out_needs_a_simulated_scenario(capsys, tmp_path):
    path = tmp_path / "analytic.toml"
    path.write_text('[run]\nmethod = "analytic"\n')
    assert main(["run", str(path), "--out", str(tmp_path / "records")]) == 2
    assert "--out writes a simulation's records" in capsys.readouterr().err
    assert not (tmp_path / "records").exists()


def test_speedup_interval_is_undefined_when_a_run_is_too_short(capsys):
    out = run_json(capsys, "simulate", "--target", "llama-3.1-8b", "--draft", "llama-3.2-1b", "--hardware",
                   "a100-80gb-sxm", "--alpha", "0.7", "--gamma", "4", "--output-tokens", "4")
    assert out["tpot_ms_ci95"] == [None, None] and out["speedup_vs_autoregressive_ci95"] == [None, None]


def test_run_on_a_sweep_file_says_so(capsys):
    from sdsl_sim.cli import main

    assert main(["run", "example-sweep"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is a sweep file" in err and "sdsl-sim sweep example-sweep --out DIR" in err


def test_the_table_names_what_drafts(capsys, tmp_path):
    path = tmp_path / "eagle.toml"
    path.write_text('[model]\ntarget = "llama-3.1-8b"\n[hardware]\ntp = 1\n[workload]\nrequests = 2\nbatch = 2\n'
                    'output_tokens = 32\n[decoding]\nmethod = "eagle"\nalpha = 0.7\n')
    assert main(["run", str(path)]) == 0
    assert "llama-3.1-8b + its eagle head" in capsys.readouterr().out


def test_output_into_a_folder_is_one_line_before_anything_runs(capsys, tmp_path):
    assert main(["run", "--output", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("error: --output") and "is a folder" in captured.err and captured.out == ""
    assert list(tmp_path.iterdir()) == []
