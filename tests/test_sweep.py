"""Sweep files, grid expansion, seeds and the parquet store, with a toy evaluator (no simulator)."""

import itertools
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sdsl_sim import __version__, executors, store
from sdsl_sim.cli import main
from sdsl_sim.errors import InputError
from sdsl_sim.sweep import apply_overrides, expand, load_sweep, run_sweep, sweep_from_dict

BASE = {"model": {"target": "t-70b", "draft": "d-1b"}, "workload": {"batch": 1}, "decoding": {"gamma": 4}}


def toy_evaluate(config: dict, seed: int) -> dict:
    """Deterministic in (config, seed); the metric set and types differ between 'methods' on purpose."""
    rng = np.random.default_rng(seed)
    gamma = config["decoding"]["gamma"]
    metrics = {"method": "simulated" if gamma else "analytic", "tpot_ms": config["workload"]["batch"] * rng.random()}
    if gamma:
        metrics["iterations"] = int(rng.integers(1, 1000))  # int here, absent for analytic points
    else:
        metrics["speedup"] = 1  # int here, float elsewhere
    return metrics


def toy_sweep(**extra):
    data = {"base": BASE, "axes": {"workload.batch": [1, 8, 64], "decoding": {"gamma": [0, 2, 4]}}}
    data.update(extra)
    return sweep_from_dict(data, source="toy.toml")


def run(sweep, out, **kwargs):
    kwargs.setdefault("workers", 1)
    return run_sweep(sweep, out, evaluate_point=toy_evaluate, prepare_point=apply_overrides, progress=False, **kwargs)


# ---------------------------------------------------------------- expansion


def test_grid_is_the_product_of_axes_and_zip_groups_times_replicates():
    sweep = toy_sweep(
        replicates=2,
        zip=[{"model.target": ["a", "b"], "model.draft": ["x", "y"]}],
    )
    points = expand(sweep)
    combos = [(p.inputs["workload.batch"], p.inputs["decoding.gamma"], p.inputs["model.target"],
               p.inputs["model.draft"], p.replicate) for p in points]
    wanted = set(itertools.product([1, 8, 64], [0, 2, 4], [("a", "x"), ("b", "y")], [0, 1]))
    assert sorted(combos) == sorted((b, g, t, d, r) for b, g, (t, d), r in wanted)
    assert len({p.point_id for p in points}) == len(points)
    assert all(p.config["model"]["target"] == p.inputs["model.target"] for p in points)
    assert BASE["workload"]["batch"] == 1  # the base is not modified


def test_nested_and_dotted_axis_spellings_are_the_same_sweep():
    dotted = sweep_from_dict({"base": BASE, "axes": {"workload.batch": [1, 2]}})
    nested = sweep_from_dict({"base": BASE, "axes": {"workload": {"batch": [1, 2]}}})
    assert [p.point_id for p in expand(dotted)] == [p.point_id for p in expand(nested)]


def test_seeds_do_not_depend_on_grid_order():
    forward = toy_sweep(replicates=3)
    backward = sweep_from_dict(
        {"base": BASE, "axes": {"decoding.gamma": [4, 2, 0], "workload.batch": [64, 8, 1]}, "replicates": 3}
    )
    seeds = {p.point_id: p.seed for p in expand(forward)}
    assert seeds == {p.point_id: p.seed for p in expand(backward)}
    assert len(set(seeds.values())) == len(seeds)  # per-point: all distinct


def test_base_seed_changes_every_seed_and_common_mode_shares_seeds_across_points():
    def seeds(sweep):
        return {(p.inputs["workload.batch"], p.inputs["decoding.gamma"], p.replicate): p.seed for p in expand(sweep)}

    a, b = seeds(toy_sweep(replicates=2)), seeds(toy_sweep(replicates=2, base_seed=1))
    assert a.keys() == b.keys() and all(a[k] != b[k] for k in a)
    common = expand(toy_sweep(replicates=2, seeds="common"))
    by_replicate = {r: {p.seed for p in common if p.replicate == r} for r in (0, 1)}
    assert len(by_replicate[0]) == len(by_replicate[1]) == 1 and by_replicate[0] != by_replicate[1]


def test_seed_axis_sets_seeds_verbatim():
    points = expand(sweep_from_dict({"base": BASE, "axes": {"seed": [3, 5], "workload.batch": [1, 2]}}))
    assert sorted(p.seed for p in points) == [3, 3, 5, 5]
    assert all("seed" not in p.config for p in points)


def test_mixed_type_axis_becomes_one_column_type():
    points = expand(sweep_from_dict({"base": BASE, "axes": {"decoding.gamma": [2, "auto"], "x.y": [1, 2.5]}}))
    assert {type(p.inputs["decoding.gamma"]) for p in points} == {str}
    assert {type(p.inputs["x.y"]) for p in points} == {float}
    assert {type(p.config["decoding"]["gamma"]) for p in points} == {int, str}  # the evaluator sees the TOML value


@pytest.mark.parametrize(
    "data, message",
    [
        ({"base": BASE, "axes": {"workload.batch": [1]}, "axis": {}}, r"toy.toml: key 'axis' unknown; expected one of"),
        ({"base": BASE, "axes": {"workload.batch": 4}}, r"toy.toml: axes key 'workload.batch' is 4; expected a list"),
        ({"base": BASE, "axes": {"workload": {"batch": []}}}, r"toy.toml: axes key 'workload.batch' has no values"),
        ({"base": BASE}, r"toy.toml: no axes"),
        ({"base": BASE, "axes": {"a.b": [1]}, "zip": [{"c.d": [1, 2], "e.f": [1]}]},
         r"zip\[0\] lists have different lengths"),
        ({"base": BASE, "axes": {"a.b": [1]}, "zip": [{"a.b": [1]}]}, r"axis 'a.b' appears more than once"),
        ({"base": BASE, "axes": {"a.b": [1]}, "replicates": 0}, r"key 'replicates' is 0; expected an integer >= 1"),
        ({"base": BASE, "axes": {"a.b": [1]}, "seeds": "random"}, r"key 'seeds' is 'random'"),
        ({"base": BASE, "axes": {"seed": [1]}, "replicates": 2}, r"axis 'seed' sets the seeds itself"),
        ({"base": BASE, "axes": {"seed": [-1]}}, r"axis 'seed' value -1"),
        ({"base": "no-such-scenario", "axes": {"a.b": [1]}}, r"key 'base' 'no-such-scenario' is neither a file"),
        ({"base": 3, "axes": {"a.b": [1]}}, r"key 'base' is 3"),
    ],
)
def test_invalid_sweeps_name_the_file_and_key(data, message):
    with pytest.raises(InputError, match=message):
        sweep_from_dict(data, source="toy.toml")


def test_repeated_axis_value_is_an_error_not_a_silent_duplicate():
    with pytest.raises(InputError, match=r"toy.toml: points .* are the same scenario"):
        expand(sweep_from_dict({"base": BASE, "axes": {"workload.batch": [1, 1]}}, source="toy.toml"))


def test_axis_through_a_value_is_an_error():
    message = r"toy.toml point \(workload.batch.x=1\): axis 'workload.batch.x': 'batch' is a value"
    with pytest.raises(InputError, match=message):
        expand(sweep_from_dict({"base": BASE, "axes": {"workload.batch.x": [1]}}, source="toy.toml"))


def test_base_path_is_relative_to_the_sweep_file(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "base.toml").write_text('[workload]\nbatch = 3\n[decoding]\ngamma = 1\n')
    (tmp_path / "sub" / "s.toml").write_text('base = "base.toml"\n[axes]\n"decoding.gamma" = [1, 2]\n')
    points = expand(load_sweep(str(tmp_path / "sub" / "s.toml")))
    assert [p.inputs["workload.batch"] for p in points] == [3, 3]
    (tmp_path / "bad.toml").write_text("base = [\n")
    with pytest.raises(InputError, match=r"bad.toml: not valid TOML"):
        load_sweep(str(tmp_path / "bad.toml"))
    with pytest.raises(InputError, match=r"sweep file '.*nope.toml' not found"):
        load_sweep(str(tmp_path / "nope.toml"))


# ---------------------------------------------------------------- store and execution


def test_dataset_has_one_row_per_point_with_inputs_metrics_version_and_seed(tmp_path):
    sweep = toy_sweep(replicates=2)
    summary = run(sweep, tmp_path / "out")
    points = expand(sweep)
    assert summary["points"] == summary["run"] == len(points) and summary["skipped"] == 0
    df = pd.read_parquet(tmp_path / "out")
    assert sorted(df["point_id"]) == sorted(p.point_id for p in points)
    assert set(df["sdsl_sim_version"]) == {__version__}
    for p in points:
        row = df.set_index("point_id").loc[p.point_id]
        metrics = toy_evaluate(p.config, p.seed)
        assert row["seed"] == p.seed and row["workload.batch"] == p.inputs["workload.batch"]
        assert row["method"] == metrics["method"] and row["tpot_ms"] == metrics["tpot_ms"]
        assert row["model.target"] == "t-70b"
    # columns that exist only for some points, or change type, survive: the store unified them
    assert df["iterations"].notna().sum() == (df["method"] == "simulated").sum()
    assert df["speedup"].notna().sum() == (df["method"] == "analytic").sum()


def dead_pid() -> int:
    """The pid of a process that has ended (a writer killed mid-write)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_resume_skips_finished_points_and_ends_with_the_same_rows(tmp_path, monkeypatch):
    sweep = toy_sweep(replicates=2)
    run(sweep, tmp_path / "full")
    monkeypatch.setattr(executors, "CHUNK_MAX_POINTS", 1)  # one point per part
    run(sweep, tmp_path / "part")
    parts = sorted((tmp_path / "part").glob("part-*.parquet"))
    assert len(parts) == len(expand(sweep))
    for path in parts[::3]:
        path.unlink()
    dead = tmp_path / "part" / f".part-deadbeef.parquet.{dead_pid()}.tmp"
    live = tmp_path / "part" / f".part-cafe.parquet.{os.getpid()}.tmp"  # a live writer's: left alone
    for tmp in (dead, live):
        tmp.write_bytes(b"half a file")
    summary = run(sweep, tmp_path / "part")
    assert summary["run"] == len(parts[::3]) and summary["skipped"] == len(parts) - len(parts[::3])
    assert not dead.exists() and live.exists()
    assert_same_rows(pd.read_parquet(tmp_path / "full"), pd.read_parquet(tmp_path / "part"))


def test_fast_points_share_parts_and_a_resume_keeps_them(tmp_path):
    sweep = toy_sweep(replicates=2)
    run(sweep, tmp_path / "out")
    assert len(list((tmp_path / "out").glob("part-*.parquet"))) < len(expand(sweep))  # chunked
    summary = run(sweep, tmp_path / "out")
    assert summary["run"] == 0 and summary["skipped"] == len(expand(sweep))
    assert len(pd.read_parquet(tmp_path / "out")) == len(expand(sweep))


def test_process_pool_gives_the_rows_of_an_inline_run(tmp_path):
    sweep = toy_sweep()
    run(sweep, tmp_path / "inline", workers=1)
    run(sweep, tmp_path / "pool", workers=2)
    assert_same_rows(pd.read_parquet(tmp_path / "inline"), pd.read_parquet(tmp_path / "pool"))


def test_a_different_sweep_or_build_in_the_same_directory_is_refused(tmp_path, monkeypatch):
    run(toy_sweep(), tmp_path / "out")
    with pytest.raises(InputError, match=r"holds a different sweep .*expected the same sweep file"):
        run(toy_sweep(base_seed=7), tmp_path / "out")
    monkeypatch.setattr(store, "code_digest", lambda: "0" * 64)  # the code changed since the first run
    with pytest.raises(InputError, match=r"written by another build of sdsl-sim .*expected the same build"):
        run(toy_sweep(), tmp_path / "out")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match=r"not empty and holds no _sweep.json"):
        run(toy_sweep(), tmp_path / "other")


def test_a_points_bad_input_names_the_point(tmp_path):
    def evaluate(config, seed):
        if config["workload"]["batch"] == 64:
            raise InputError("batch 64 does not fit")
        return {"method": "analytic"}

    with pytest.raises(InputError, match=r"toy.toml: point \(workload.batch=64, .*batch 64 does not fit"):
        run_sweep(toy_sweep(), tmp_path / "out", evaluate_point=evaluate, prepare_point=apply_overrides,
                  workers=1, progress=False)
    assert sorted(pd.read_parquet(tmp_path / "out")["workload.batch"]) == [1] * 3 + [8] * 3  # batch 1 and 8 landed


def test_dask_executor_without_distributed_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(InputError, match=r"pip install 'sdsl-sim\[distributed\]'"):
        run(toy_sweep(), tmp_path / "out", executor="dask", scheduler="tcp://127.0.0.1:1")


def test_cli_reports_bad_input_as_one_line(tmp_path, capsys):
    assert main(["sweep", str(tmp_path / "missing.toml"), "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err.startswith("error: sweep file")
    sweep_file = tmp_path / "s.toml"
    sweep_file.write_text(textwrap.dedent("""
        [base.workload]
        batch = 1
        [axes]
        "workload.batch" = [1, 2]
    """))
    assert main(["sweep", str(sweep_file), "--out", str(tmp_path / "o"), "--executor", "dask"]) == 2
    assert "--executor dask needs --scheduler" in capsys.readouterr().err
    assert main(["sweep", str(sweep_file), "--out", str(tmp_path / "o"), "--workers", "0"]) == 2


def assert_same_rows(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Equal rows, ignoring row order and wall-clock timing columns."""
    assert len(a) > 0
    keep = sorted(c for c in a.columns if not c.endswith("wall_s"))
    assert keep == sorted(c for c in b.columns if not c.endswith("wall_s"))
    a = a[keep].sort_values("point_id").reset_index(drop=True)
    b = b[keep].sort_values("point_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)


def test_nstar_sweep_rows_match_the_nstar_command(tmp_path, capsys):
    from sdsl_sim.sweep import run_sweep, sweep_from_dict

    sweep = sweep_from_dict({
        "evaluate": "nstar",
        "base": {"model": {"target": "llama-3.1-8b", "draft": "llama-3.2-1b"}, "hardware": {"name": "a100-80gb-sxm", "tp": 1},
                 "workload": {"batch": 1, "prompt_tokens": 1024}},
        "axes": {"workload.batch": [1, 16]},
    })
    run_sweep(sweep, tmp_path / "out", workers=1, progress=False)
    rows = pd.read_parquet(tmp_path / "out").set_index("workload.batch")
    for batch in (1, 16):
        assert main(["nstar", "--target", "llama-3.1-8b", "--hardware", "a100-80gb-sxm", "--batch", str(batch),
                     "--context", "1024", "--json"]) == 0
        cli = json.loads(capsys.readouterr().out)
        assert rows.loc[batch, "n_star_hardware"] == cli["n_star_hardware"]
        assert rows.loc[batch, "method"] == "expected-value"


def test_unknown_evaluator_is_rejected():
    from sdsl_sim.sweep import sweep_from_dict

    with pytest.raises(InputError, match="key 'evaluate' is 'magic'; expected one of scenario, nstar"):
        sweep_from_dict({"evaluate": "magic", "axes": {"workload.batch": [1]}}, source="s.toml")


def test_unknown_names_and_misfits_are_reported_before_anything_is_written(tmp_path):
    for axis, value, needle in [("hardware.name", "h100", "key 'hardware.name': unknown hardware 'h100'"),
                                ("model.weight_dtype", "fp9", "key 'model.weight_dtype': unknown weight dtype 'fp9'"),
                                ("hardware.tp", 1, "key 'hardware.tp': llama-3.1-70b + llama-3.2-1b needs")]:
        sweep = sweep_from_dict({"base": "default", "axes": {axis: [value]}}, source="bad.toml")
        with pytest.raises(InputError, match=re.escape(needle)):
            run_sweep(sweep, tmp_path / "out", workers=1, progress=False)
        assert not (tmp_path / "out").exists()


def test_sweep_file_that_is_not_utf8_is_one_input_error(tmp_path, capsys):
    path = tmp_path / "latin1.toml"
    path.write_bytes('base = "d\xe9faut"\n'.encode("latin-1"))
    assert main(["sweep", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: not valid TOML") and err.count("\n") == 1


def test_editing_a_profile_named_by_path_makes_it_a_different_sweep(tmp_path):
    gpu = tmp_path / "my-gpu.toml"
    gpu.write_text((Path(__file__).resolve().parents[1] / "hardware_profiles" / "ideal.toml").read_text())
    data = {"base": {"model": {"target_params": "7B", "draft_params": "70M"}, "hardware": {"name": str(gpu), "tp": 1},
                     "workload": {"requests": 1, "batch": 1, "output_tokens": 16}, "run": {"method": "analytic"}},
            "axes": {"decoding.gamma": [2]}}
    run_sweep(sweep_from_dict(data), tmp_path / "out", workers=1, progress=False)
    run_sweep(sweep_from_dict(data), tmp_path / "out", workers=1, progress=False)  # unchanged: resumes
    gpu.write_text(gpu.read_text().replace("hbm_bandwidth_gb_s = 1000.0", "hbm_bandwidth_gb_s = 2000.0"))
    with pytest.raises(InputError, match="holds a different sweep"):
        run_sweep(sweep_from_dict(data), tmp_path / "out", workers=1, progress=False)


def test_relative_paths_in_a_sweeps_base_are_read_from_its_folder(tmp_path, monkeypatch):
    """A trace (or a model file) named in a sweep's base is found beside the file that names it, wherever
    the sweep runs from; and a default the points gained later (run.metric_percentiles) leaves their ids."""
    folder = tmp_path / "study"
    folder.mkdir()
    (folder / "t.csv").write_text("arrival_s,prompt_tokens,output_tokens\n0,16,8\n0.5,32,4\n")
    (folder / "base.toml").write_text('[model]\ntarget = "llama-3.1-8b"\n[hardware]\ntp = 1\n'
                                      '[workload]\narrival = "trace"\ntrace = "t.csv"\n')
    (folder / "grid.toml").write_text('base = "base.toml"\n[axes]\n"workload.batch" = [1, 2]\n')
    (folder / "inline.toml").write_text('[base.model]\ntarget = "llama-3.1-8b"\n[base.hardware]\ntp = 1\n'
                                        '[base.workload]\narrival = "trace"\ntrace = "t.csv"\n'
                                        '[axes]\n"workload.batch" = [1, 2]\n')
    monkeypatch.chdir(tmp_path)  # not the sweep's folder
    for name in ("grid.toml", "inline.toml"):
        points = expand(load_sweep(str(folder / name)))
        assert [p.config["workload"]["trace"] for p in points] == [str(folder / "t.csv")] * 2
        assert all("metric_percentiles" not in p.config.get("run", {}) for p in points)


def test_a_sweep_of_heads_revalidates_its_points(tmp_path):
    """A head drafts without a checkpoint: the points of an EAGLE sweep must not carry the default
    scenario's model.draft, which re-validation (in every worker) refuses beside method = "eagle"."""
    sweep = sweep_from_dict({"base": {"model": {"target": "llama-3.1-8b"}, "hardware": {"tp": 1},
                                      "decoding": {"method": "eagle", "alpha": 0.7}},
                             "axes": {"decoding.gamma": [2, 4]}}, source="heads.toml")
    points = expand(sweep)
    assert len(points) == 2 and all("draft" not in p.config["model"] for p in points)
    from sdsl_sim.sweep import evaluate_scenario_point
    assert evaluate_scenario_point(points[0].config, seed=0)["speculation_method"] == "eagle"
