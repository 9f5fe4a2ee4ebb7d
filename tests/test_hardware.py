"""GPU and runtime profiles: loading, SI conversion, validation messages, what-if scaling."""

import json
import re
import tomllib
from pathlib import Path
from importlib.resources import files

import numpy as np
import pytest

from sdsl_sim.costs import bandwidth_efficiency
from sdsl_sim.errors import InputError
from sdsl_sim.hardware import (
    list_gpus,
    list_runtimes,
    load_gpu,
    load_runtime,
    scale_gpu,
    step_overhead_s,
)

PROFILES = files("sdsl_sim") / "hardware_profiles"
NEW_GPUS = {"b200", "gb200", "b300", "mi325x", "mi355x"}  # the 2025-26 profiles (SOURCES.md, 2025-26 GPUs)
EXPECTED_GPUS = {"a100-40gb-sxm", "a100-80gb-sxm", "a100-80gb-pcie", "h100-sxm", "h100-pcie",
                 "h100-nvl", "h200-sxm", "l40s", "mi300x", "ideal"} | NEW_GPUS


def test_builtin_profiles_all_load():
    assert EXPECTED_GPUS <= set(list_gpus())
    for name in list_gpus():
        gpu = load_gpu(name)
        assert gpu.name == name
        assert load_runtime(gpu.default_runtime).name == gpu.default_runtime
    assert {"default", "eager", "none"} <= set(list_runtimes())


def test_loader_converts_to_si_once():
    gpu = load_gpu("a100-80gb-sxm")
    assert gpu.hbm_bandwidth_bytes_per_s == pytest.approx(2039e9)
    assert gpu.memory_bytes == 81920 * 1048576  # memory_mib: the total nvidia-smi reports (binary MiB)
    assert gpu.bf16_flop_per_s == pytest.approx(312e12)
    assert gpu.fp8_flop_per_s is None  # A100 has no FP8 tensor cores
    assert load_gpu("h100-sxm").fp8_flop_per_s == pytest.approx(1979e12)
    assert load_runtime("eager").kernel_launch_s == pytest.approx(6e-6)


@pytest.mark.parametrize("name,ridge", [("a100-80gb-sxm", 153), ("h100-sxm", 295), ("h200-sxm", 206),
                                        ("mi300x", 247), ("l40s", 419), ("b200", 281), ("gb200", 312.5),
                                        ("b300", 292), ("mi325x", 218), ("mi355x", 312.5)])
def test_ridge_points_match_calibration(name, ridge):
    # SOURCES.md, "Ridge points (BF16 FLOP per byte)": an independent check of the datasheet entries.
    gpu = load_gpu(name)
    assert gpu.bf16_flop_per_s / gpu.hbm_bandwidth_bytes_per_s == pytest.approx(ridge, rel=0.01)


@pytest.mark.parametrize("name,lo_5mb,hi_5mb,lo_200mb,hi_200mb", [
    ("a100-80gb-sxm", 0.42, 0.58, 0.72, 0.82),  # SOURCES.md: ~0.45-0.55 at <=5 MB, 0.75-0.80 at >=200 MB
    ("h100-sxm", 0.42, 0.58, 0.78, 0.92),  # 0.80-0.90 at >=200 MB on H100
])
def test_bandwidth_efficiency_curve_matches_calibration_bands(name, lo_5mb, hi_5mb, lo_200mb, hi_200mb):
    gpu = load_gpu(name)
    assert lo_5mb <= bandwidth_efficiency(gpu, 5e6) <= hi_5mb
    assert 0.58 <= bandwidth_efficiency(gpu, 30e6) <= 0.72  # "~0.65 for ~30 MB"
    assert lo_200mb <= bandwidth_efficiency(gpu, 200e6) <= hi_200mb
    sizes = np.logspace(4, 10, 50)
    assert np.all(np.diff(bandwidth_efficiency(gpu, sizes)) > 0)


def test_unknown_gpu_names_closest_matches():
    with pytest.raises(InputError, match="unknown hardware 'h100'; did you mean .*h100-sxm"):
        load_gpu("h100")
    with pytest.raises(InputError, match="unknown runtime 'eagre'; did you mean eager"):
        load_runtime("eagre")


def _copy_profile(tmp_path, edit):
    path = tmp_path / "my-gpu.toml"
    path.write_text(edit((PROFILES / "a100-80gb-sxm.toml").read_text()))
    return path


def test_user_profile_by_path(tmp_path):
    path = _copy_profile(tmp_path, lambda t: t.replace("hbm_bandwidth_gb_s = 2039.0", "hbm_bandwidth_gb_s = 4078.0"))
    gpu = load_gpu(str(path))
    assert gpu.name == "my-gpu"
    assert gpu.hbm_bandwidth_bytes_per_s == pytest.approx(4078e9)


@pytest.mark.parametrize("edit,message", [
    (lambda t: t + "\nhbm_bw = 3.0\n", "key 'hbm_bw' unknown; expected one of"),
    (lambda t: t.replace("memory_mib = 81920", 'memory_mib = "81920"'), "key 'memory_mib' must be a float"),
    (lambda t: t.replace("memory_mib = 81920", "memory_mib = 0"), r"key 'memory_mib' = 0.0; expected a finite number in \[1e-06, 1e\+09\]"),
    (lambda t: t.replace("bf16_tflops = 312.0", "bf16_tflops = 0.0"), r"key 'bf16_tflops' = 0.0; expected a finite number in \[1e-06"),
    (lambda t: t.replace("bw_eff_max = 0.823", "bw_eff_max = 1.5"), r"key 'bw_eff_max' = 1.5; expected a finite number in \[0.001, 1\]"),
    (lambda t: t.replace("kernel_floor_us = 5.0", "kernel_floor_us = -1.0"), "key 'kernel_floor_us' = -1.0"),
    (lambda t: t.replace("link_eff = 0.78", ""), "key 'link_eff' missing"),
    (lambda t: t.replace('default_runtime = "default"', 'default_runtime = "fast"'), "key 'default_runtime' = 'fast'"),
    (lambda t: t + "\n[oops\n", "not valid TOML"),
    (lambda t: t.replace("hbm_bandwidth_gb_s = 2039.0", "hbm_bandwidth_gb_s = inf"), "key 'hbm_bandwidth_gb_s' = inf"),
    (lambda t: t.replace("kernel_floor_us = 5.0", "kernel_floor_us = nan"), "key 'kernel_floor_us' = nan"),
    (lambda t: t.replace("memory_mib = 81920", "memory_mib = 1" + "0" * 400), "key 'memory_mib' = inf"),
    (lambda t: t.replace('default_runtime = "default"', 'default_runtime = ""'), "key 'default_runtime' is empty"),
])
def test_profile_validation_names_file_and_key(tmp_path, edit, message):
    path = _copy_profile(tmp_path, edit)
    with pytest.raises(InputError, match=message) as info:
        load_gpu(str(path))
    assert str(path) in str(info.value)


def test_memory_mib_is_binary_mebibytes(tmp_path):
    path = _copy_profile(tmp_path, lambda t: t.replace("memory_mib = 81920", "memory_mib = 81559"))
    assert load_gpu(str(path)).memory_bytes == 81559 * 1048576  # exactly, not 81559e6 or 81.559e9


def test_memory_gb_still_accepted_for_user_profiles(tmp_path):
    path = _copy_profile(tmp_path, lambda t: t.replace("memory_mib = 81920", "memory_gb = 80.0"))
    assert load_gpu(str(path)).memory_bytes == pytest.approx(80e9)


@pytest.mark.parametrize("edit,found", [
    (lambda t: t.replace("memory_mib = 81920", "memory_mib = 81920\nmemory_gb = 80.0"), "both"),
    (lambda t: t.replace("memory_mib = 81920", ""), "neither"),
])
def test_exactly_one_memory_key(tmp_path, edit, found):
    path = _copy_profile(tmp_path, edit)
    with pytest.raises(InputError) as info:
        load_gpu(str(path))
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    assert "'memory_gb'" in message and "'memory_mib'" in message
    assert found in message


def _datasheet_gb(description):
    """The decimal-GB figure in a profile's description ("NVIDIA H100 SXM5 80GB" -> 80.0), or None."""
    match = re.search(r"(\d+(?:\.\d+)?)\s*GB", description)
    return float(match.group(1)) if match else None


@pytest.mark.parametrize("name", sorted(set(list_gpus()) - {"ideal"}))  # ideal: no real memory
def test_memory_at_least_datasheet_figure(name):
    # The driver-reported total (binary MiB) is never below the datasheet's decimal GB figure:
    # "80 GB" on an H100 is 81559 MiB = 85.5e9 bytes, not 80e9.
    gpu = load_gpu(name)
    datasheet_gb = _datasheet_gb(gpu.description)
    if datasheet_gb is None:
        pytest.skip(f"{name}: no NNGB figure in the description {gpu.description!r}")
    assert gpu.memory_bytes >= datasheet_gb * 1e9


def test_missing_profile_file():
    with pytest.raises(InputError, match="not found"):
        load_gpu("/nonexistent/gpu.toml")


def test_runtime_validation(tmp_path):
    path = tmp_path / "rt.toml"
    path.write_text((PROFILES / "runtimes" / "eager.toml").read_text())
    assert load_runtime(str(path)).cuda_graphs is False
    path.write_text(path.read_text().replace("cuda_graphs = false", "cuda_graphs = 1"))
    with pytest.raises(InputError, match="key 'cuda_graphs' must be a bool"):
        load_runtime(str(path))


def test_scale_gpu_what_if():
    gpu = load_gpu("h100-sxm")
    scaled = scale_gpu(gpu, bandwidth=2, flops=0.5, memory=1.5, link=3)
    assert scaled.hbm_bandwidth_bytes_per_s == pytest.approx(2 * gpu.hbm_bandwidth_bytes_per_s)
    assert scaled.bf16_flop_per_s == pytest.approx(0.5 * gpu.bf16_flop_per_s)
    assert scaled.fp8_flop_per_s == pytest.approx(0.5 * gpu.fp8_flop_per_s)
    assert scaled.memory_bytes == pytest.approx(1.5 * gpu.memory_bytes)
    assert scaled.link_bandwidth_bytes_per_s == pytest.approx(3 * gpu.link_bandwidth_bytes_per_s)
    assert scaled.name == "h100-sxm[bandwidth x2, flops x0.5, memory x1.5, link x3]"
    assert scale_gpu(gpu) == gpu
    for bad in (0, -1, float("nan"), float("inf")):
        with pytest.raises(InputError, match="bandwidth scale"):
            scale_gpu(gpu, bandwidth=bad)


def test_step_overhead_broadcasts_and_none_is_free():
    rt = load_runtime("default")
    batch = np.array([1, 8, 64])
    out = step_overhead_s(rt, batch)
    assert out.shape == (3,)
    assert np.all(np.diff(out) > 0)
    assert step_overhead_s(rt, 1) == pytest.approx(rt.step_s + rt.per_sequence_s)
    assert step_overhead_s(load_runtime("none"), 256) == 0.0


def test_none_runtime_drops_only_host_costs():
    # "none" removes host-side cost; the GPU kernels (norm/rotary/activation) are those of "default".
    none, default = load_runtime("none"), load_runtime("default")
    assert (none.step_s, none.per_sequence_s, none.kernel_launch_s) == (0.0, 0.0, 0.0)
    assert none.small_kernels_per_layer == default.small_kernels_per_layer > 0


def test_a_profile_is_served_from_memory_until_its_file_changes(tmp_path):
    gpu = tmp_path / "my-gpu.toml"
    gpu.write_text((files("sdsl_sim") / "hardware_profiles" / "ideal.toml").read_text())
    first = load_gpu(str(gpu))
    assert load_gpu(str(gpu)) is first
    assert load_gpu("h100-sxm") is load_gpu("h100-sxm")
    gpu.write_text(gpu.read_text().replace("hbm_bandwidth_gb_s = 1000.0", "hbm_bandwidth_gb_s = 2000.0"))
    assert load_gpu(str(gpu)).hbm_bandwidth_bytes_per_s == 2 * first.hbm_bandwidth_bytes_per_s
    with pytest.raises(InputError, match="not found"):
        load_gpu(str(tmp_path / "missing.toml"))


def test_nothing_cites_files_outside_the_repository():
    # Issue 9: every calibration figure lives in hardware_profiles/SOURCES.md, beside the data it justifies.
    root = Path(__file__).parents[1]
    outside = ("shared/reference", "shared/seed", "calibration.md", "engines.md", "speculation-methods.md")
    files = [p for pattern in ("*.md", "hardware_profiles/**/*.toml", "sdsl_sim/**/*.py", "sdsl_sim/**/*.toml",
                               "scenarios/*.toml", "tests/*.py")
             for p in root.glob(pattern) if p.name != "test_hardware.py"]
    assert len(files) > 50
    cited = [(p.relative_to(root), word) for p in files for word in outside if word in p.read_text(encoding="utf-8")]
    assert not cited


def test_2025_gpus_have_their_dense_peaks():
    # Dense figures (SOURCES.md, 2025-26 GPUs): FP4 twice FP8, FP8 twice BF16; the sparse maxima are double.
    for name, bf16 in (("b200", 2250e12), ("gb200", 2500e12), ("mi355x", 2500e12)):
        gpu = load_gpu(name)
        assert gpu.bf16_flop_per_s == bf16
        assert gpu.fp4_flop_per_s == 2 * gpu.fp8_flop_per_s == 4 * gpu.bf16_flop_per_s
        assert gpu.hbm_bandwidth_bytes_per_s == 8e12
    assert load_gpu("mi325x").fp4_flop_per_s is None  # CDNA 3: no FP4 matrix cores
    assert load_gpu("h100-sxm").fp4_flop_per_s is None
    assert NEW_GPUS <= set(list_gpus())


@pytest.mark.parametrize("name,bf16,fp8,fp4,bandwidth,memory", [
    # name, dense TFLOP/s (BF16, FP8, FP4), HBM GB/s, memory bytes (SOURCES.md, 2025-26 GPUs and Memory)
    ("b200", 2250, 4500, 9000, 8000, 183359 * 1048576),    # not the sparse 18000 FP4
    ("gb200", 2500, 5000, 10000, 8000, 189471 * 1048576),  # not the sparse 20000
    ("b300", 2250, 4500, 14000, 7700, 275040 * 1048576),   # Blackwell Ultra: FP4 is not 2 x FP8
    ("mi325x", 1307, 2615, None, 6000, 256e9),             # no FP4 matrix cores; no driver total found
    ("mi355x", 2500, 5000, 10000, 8000, 294896 * 1048576), # not the 20.1 PF sparse maximum
])
def test_2025_gpus_datasheet_figures(name, bf16, fp8, fp4, bandwidth, memory):
    gpu = load_gpu(name)
    assert gpu.bf16_flop_per_s == pytest.approx(bf16 * 1e12)
    assert gpu.fp8_flop_per_s == pytest.approx(fp8 * 1e12)
    assert gpu.fp4_flop_per_s == (None if fp4 is None else pytest.approx(fp4 * 1e12))
    assert gpu.hbm_bandwidth_bytes_per_s == pytest.approx(bandwidth * 1e9)
    assert gpu.memory_bytes == memory
    assert gpu.pass_model == "roofline"
    # Every FP4 GPU says how much of its FP4 peak a GEMM reaches; a GPU without FP4 gives no fraction for it.
    assert (gpu.fp4_flops_eff_max is None) == (gpu.fp4_flop_per_s is None)


def test_b200_fp4_is_twice_fp8_and_four_times_bf16():
    gpu = load_gpu("b200")
    assert gpu.fp4_flop_per_s == 2 * gpu.fp8_flop_per_s == 4 * gpu.bf16_flop_per_s == 9000e12
    assert load_gpu("mi325x").fp4_flop_per_s is None


def test_list_hardware_shows_the_2025_gpus(capsys):
    from sdsl_sim.cli import main

    assert main(["list", "hardware"]) == 0
    text = capsys.readouterr().out
    assert "b200" in text and "mi355x" in text
    assert main(["list", "hardware", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)["hardware"]}
    assert NEW_GPUS <= set(rows)
    assert rows["b200"]["fp4_tflops"] == 9000 and rows["mi355x"]["fp4_tflops"] == 10000
    assert rows["mi325x"]["fp4_tflops"] is None
    assert rows["b200"]["fp4_tflops"] == 2 * rows["b200"]["fp8_tflops"] == 4 * rows["b200"]["bf16_tflops"]


# Achieved-fraction keys: each must say whether it is measured or a prior (SOURCES.md, "Measured and prior").
_FRACTION_KEYS = ("bw_eff_max", "bw_eff_half_mb", "bw_eff_exponent", "flops_eff_max", "fp8_flops_eff_max",
                  "fp4_flops_eff_max", "fp8_gemm_bw_factor", "gemm_tile_rows", "gemm_tile_cols", "overlap_exponent",
                  "kernel_floor_us", "link_eff", "allreduce_latency_us", "allreduce_latency_per_peer_us")


@pytest.mark.parametrize("name", sorted(NEW_GPUS))
def test_2025_profiles_source_every_number(name):
    lines = (PROFILES / f"{name}.toml").read_text().splitlines()
    numeric = [key for key, value in tomllib.loads("\n".join(lines)).items() if not isinstance(value, str)]
    assert set(numeric) >= {"bf16_tflops", "hbm_bandwidth_gb_s", "sm_count", "link_bandwidth_gb_s"}
    for key in numeric:
        [i] = [i for i, line in enumerate(lines) if line.startswith(f"{key} =")]
        comment = lines[i].partition("#")[2] or (lines[i - 1].startswith("#") and lines[i - 1])
        assert comment, f"{name}.toml: {key} has no source comment"
        if key in _FRACTION_KEYS:
            assert "prior" in comment or "measured" in comment, f"{name}.toml: {key} neither measured nor a prior"
