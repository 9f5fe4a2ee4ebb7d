"""`sdsl-sim latency` and `sdsl-sim list`: JSON keys, tables, one-line errors with exit status 2."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sdsl_sim.cli import main
from sdsl_sim.costs import pass_cost
from sdsl_sim.hardware import list_gpus, load_gpu
from sdsl_sim.models import list_models, load_model
from sdsl_sim.scenario import load_scenario
from sdsl_sim.sweep import load_sweep


def run_json(capsys, *argv):
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_latency_json_keys_and_values(capsys):
    out = run_json(capsys, "latency", "--model", "llama-2-7b", "--hardware", "a100-80gb-sxm",
                   "--batch", "4", "--tokens", "5", "--context", "1000")
    assert {"model", "hardware", "batch", "tokens", "context", "tp", "dtype", "latency_ms", "bound", "breakdown_ms"} <= set(out)
    assert (out["model"], out["hardware"], out["batch"], out["tokens"], out["context"], out["tp"], out["dtype"]) == (
        "llama-2-7b", "a100-80gb-sxm", 4, 5, 1000, 1, "bf16")
    expected = pass_cost(load_model("llama-2-7b"), load_gpu("a100-80gb-sxm"), batch=4, tokens=5, context=1000)
    assert out["latency_ms"] == pytest.approx(expected.latency_s * 1e3)
    assert out["bound"] == expected.bound
    assert sum(out["breakdown_ms"].values()) == pytest.approx(out["latency_ms"])


def test_latency_text_output(capsys):
    assert main(["latency", "--model", "opt-125m", "--hardware", "h100-sxm"]) == 0
    text = capsys.readouterr().out
    assert "latency_ms" in text and "bound" in text


def test_latency_what_if_scaling_and_runtime(capsys):
    base = run_json(capsys, "latency", "--model", "llama-2-7b", "--hardware", "ideal")
    fast = run_json(capsys, "latency", "--model", "llama-2-7b", "--hardware", "ideal", "--bandwidth-scale", "2")
    assert fast["latency_ms"] == pytest.approx(base["latency_ms"] / 2)
    assert fast["hardware"] == "ideal[bandwidth x2]"
    slow = run_json(capsys, "latency", "--model", "llama-2-7b", "--hardware", "h100-sxm", "--batch", "64",
                    "--tokens", "16", "--flops-scale", "0.5")
    ref = run_json(capsys, "latency", "--model", "llama-2-7b", "--hardware", "h100-sxm", "--batch", "64", "--tokens", "16")
    assert slow["latency_ms"] > 1.5 * ref["latency_ms"]  # compute-bound pass
    eager = run_json(capsys, "latency", "--model", "llama-3.2-1b", "--hardware", "h100-sxm", "--runtime", "eager")
    assert eager["runtime"] == "eager" and eager["breakdown_ms"]["launch"] > 0


def test_latency_tp_and_dtype(capsys):
    out = run_json(capsys, "latency", "--model", "llama-3.1-70b", "--hardware", "h100-sxm", "--tp", "4", "--dtype", "fp8")
    assert out["tp"] == 4 and out["dtype"] == "fp8" and out["breakdown_ms"]["allreduce"] > 0


def test_fp4_computes_on_fp4_tensor_cores_only_where_the_gpu_has_them(capsys):
    # A compute-bound pass (batch 256 x 8 tokens): B200's FP4 peak is twice its FP8 and four times its BF16.
    argv = ["latency", "--model", "llama-3.1-8b", "--batch", "256", "--tokens", "8", "--context", "0"]
    b200 = {d: run_json(capsys, *argv, "--hardware", "b200", "--dtype", d) for d in ("bf16", "fp4", "mxfp4")}
    assert [b200[d]["gemm_compute"] for d in ("bf16", "fp4", "mxfp4")] == ["bf16", "fp4", "fp4"]
    assert b200["fp4"]["breakdown_ms"]["mlp"] < 0.5 * b200["bf16"]["breakdown_ms"]["mlp"]
    # H100 has no FP4 tensor cores: fp4 is weight-only, a quarter of the bytes at the BF16 rate.
    h100 = {d: run_json(capsys, *argv, "--hardware", "h100-sxm", "--dtype", d) for d in ("bf16", "fp4")}
    assert h100["fp4"]["gemm_compute"] == "bf16"
    assert h100["fp4"]["breakdown_ms"]["mlp"] == pytest.approx(h100["bf16"]["breakdown_ms"]["mlp"], rel=0.2)
    small = {d: run_json(capsys, "latency", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--dtype", d)
             for d in ("bf16", "fp4")}
    assert small["fp4"]["breakdown_ms"]["mlp"] < 0.4 * small["bf16"]["breakdown_ms"]["mlp"]  # 0.5625 / 2 bytes


@pytest.mark.parametrize("argv,message", [
    (["--model", "llama-3.1-70b", "--hardware", "a100-80gb-sxm"], "use tp >= 2"),
    (["--model", "llama-2-7b", "--hardware", "h100"], "unknown hardware 'h100'; did you mean h100-sxm"),
    (["--model", "llama2-7b", "--hardware", "h100-sxm"], "unknown model 'llama2-7b'; did you mean llama-2-7b"),
    (["--model", "llama-2-7b", "--hardware", "h100-sxm", "--runtime", "eagre"], "did you mean eager"),
    (["--model", "llama-2-7b", "--hardware", "h100-sxm", "--batch", "0"], "argument --batch: '0' is below 1; expected an integer in [1, 65,536] (MAX_BATCH)"),
    (["--model", "llama-2-7b", "--hardware", "h100-sxm", "--tp", "3"], "tp 3 does not divide"),
    (["--model", "llama-2-7b", "--hardware", "h100-sxm", "--bandwidth-scale", "0"], "argument --bandwidth-scale: '0' is below 0.001"),
    (["--model", "llama-2-7b", "--hardware", "h100-sxm", "--dtype", "fp6"], "invalid choice: 'fp6'"),
])
def test_latency_errors_exit_2_with_one_line(capsys, argv, message):
    assert main(["latency", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_list_hardware_and_models(capsys):
    assert main(["list", "hardware"]) == 0
    text = capsys.readouterr().out
    assert all(name in text for name in list_gpus())
    hw = run_json(capsys, "list", "hardware")["hardware"]
    assert [row["name"] for row in hw] == list_gpus()
    models = run_json(capsys, "list", "models")["models"]
    assert [row["name"] for row in models] == list_models()
    assert {row["name"] for row in run_json(capsys, "list", "runtimes")["runtimes"]} >= {"default", "eager", "none"}
    assert main(["list", "gpus"]) == 2


def test_console_script_exit_status_and_one_line_stderr():
    script = Path(sys.executable).with_name("sdsl-sim")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "sdsl_sim.cli"]
    proc = subprocess.run([*cmd, "latency", "--model", "llama-2-7b", "--hardware", "a100"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: unknown hardware 'a100'")
    assert "Traceback" not in proc.stderr and proc.stdout == ""


@pytest.mark.parametrize("argv", [["--version"], ["list", "hardware"],
                                  ["latency", "--model", "llama-3.1-8b", "--hardware", "h100-sxm"]])
def test_light_commands_load_no_heavy_library(argv):
    # The parser of every command is built first; scipy, pandas, simpy and matplotlib load only where a
    # handler needs them (tests/bench_cli.py measures what that saves: ~0.7 s -> ~0.2 s per call).
    script = ("import sys\nfrom sdsl_sim.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
              "print('LOADED:' + ','.join(m for m in ('scipy', 'pandas', 'simpy', 'matplotlib') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", script, *argv], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "LOADED:"


def test_list_scenarios_tells_scenarios_from_sweeps(capsys):
    rows = {r["name"]: r for r in run_json(capsys, "list", "scenarios")["scenarios"]}
    assert rows["default"]["kind"] == "scenario" and rows["default"]["run_with"] == "sdsl-sim run default"
    assert rows["example-sweep"]["kind"] == "sweep" and rows["study-moe-speculation"]["kind"] == "sweep"
    assert rows["default"]["description"].startswith("The embedded default")
    for name, row in rows.items():  # every listed command works on its file: scenarios load, sweeps validate
        (load_scenario if row["kind"] == "scenario" else load_sweep)(name)
