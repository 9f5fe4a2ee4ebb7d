"""`sdsl-sim calibrate`: a round trip through a profile with known changes, and bad measurement files."""

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from sdsl_sim.calibrate import predict_ms
from sdsl_sim.cli import main
from sdsl_sim.hardware import load_gpu

SHAPES = [(model, tp, batch, tokens, context)
          for model, tps in (("llama-3.2-1b", (1,)), ("llama-3.1-8b", (1, 2)), ("llama-2-70b", (4, 8)))
          for tp in tps for batch in (1, 8, 64) for tokens in (1, 4) for context in (128, 2048)]


def rows_of(gpu, shapes, noise=0.0, seed=0):
    frame = pd.DataFrame(shapes, columns=["model", "tp", "batch", "tokens", "context"])
    frame["weight_dtype"] = "bf16"
    frame["kv_dtype"] = "bf16"
    frame["latency_ms"] = predict_ms(gpu, frame) * np.exp(noise * np.random.default_rng(seed).standard_normal(len(frame)))
    return frame


def test_a_calibrated_profile_predicts_other_rows_of_the_changed_gpu_within_3_percent(tmp_path, capsys):
    base = load_gpu("h100-sxm")
    changed = dataclasses.replace(base, bw_eff_max=0.85 * base.bw_eff_max, kernel_floor_s=6e-6,
                                  allreduce_latency_s=2 * base.allreduce_latency_s)
    fit_shapes, check_shapes = SHAPES[::2], SHAPES[1::2]
    path = tmp_path / "measured.csv"
    rows_of(changed, fit_shapes, noise=0.02).to_csv(path, index=False)
    out = tmp_path / "my-h100.toml"
    assert main(["calibrate", str(path), "--hardware", "h100-sxm", "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    # batch 64 x 4 tokens reaches the compute-bound range and tp > 1 rows exist: all six are identified
    assert set(summary["parameters"]) == {"bw_eff_max", "bw_eff_half_mb", "kernel_floor_us", "flops_eff_max",
                                          "overlap_exponent", "allreduce_latency_us"}
    assert summary["median_abs_error_after"] < summary["median_abs_error_before"]
    calibrated = load_gpu(str(out))
    truth = rows_of(changed, check_shapes)
    error = predict_ms(calibrated, truth) / truth.latency_ms.to_numpy() - 1
    assert np.max(np.abs(error)) < 0.03, error
    assert "Calibrated by `sdsl-sim calibrate`" in out.read_text()


@pytest.mark.parametrize("edit, needle", [
    (lambda f: f.drop(columns=["latency_ms"]), "column 'latency_ms' missing"),
    (lambda f: f.assign(model="llama-9"), "unknown model 'llama-9'"),
    (lambda f: f.assign(latency_ms=0.0), "latency_ms = 0.0; expected a positive finite number"),
    (lambda f: f.assign(tp=0), "tp = 0; expected an integer in [1, 1024]"),
    (lambda f: f.head(2), "2 measured passes cannot pin down 3 parameters"),
])
def test_bad_measurement_files_are_one_error_line(tmp_path, capsys, edit, needle):
    path = tmp_path / "measured.csv"
    edit(rows_of(load_gpu("h100-sxm"), SHAPES[:3])).to_csv(path, index=False)
    assert main(["calibrate", str(path), "--hardware", "h100-sxm", "--out", str(tmp_path / "x.toml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and needle in err, err


def test_rows_that_stay_memory_bound_on_one_gpu_fit_only_what_they_identify(tmp_path, capsys):
    path = tmp_path / "measured.csv"
    rows_of(load_gpu("a100-80gb-sxm"), [s for s in SHAPES if s[1] == 1 and s[2] * s[3] < 128]).to_csv(path, index=False)
    assert main(["calibrate", str(path), "--hardware", "a100-80gb-sxm", "--out", str(tmp_path / "a.toml"), "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)["parameters"]) == {"bw_eff_max", "bw_eff_half_mb", "kernel_floor_us"}
