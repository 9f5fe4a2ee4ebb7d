"""Kill-and-resume: a sweep killed with SIGKILL and started again ends with an uninterrupted run's rows.

Runs the real CLI (`python -m sdsl_sim sweep`) in a subprocess on the real simulator. The default run uses
a small sweep written here; the full `scenarios/example-sweep.toml` version is marked slow.
"""

import atexit
import contextlib
import functools
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest

from sdsl_sim.scenario import scenarios_dir
from sdsl_sim.sweep import expand, load_sweep

ROOT = Path(__file__).resolve().parent.parent
_KEEP = contextlib.ExitStack()  # temporary folders that live as long as the test session
atexit.register(_KEEP.close)

# Enough points, each long enough (about 0.3 s), that a kill lands mid-sweep on 2 cores; analytic and
# simulated points side by side, so the rows hold both kinds (NaN where only a simulation knows).
SMALL_SWEEP = """
base = "default"
base_seed = 11
replicates = 2
[axes]
"run.method" = ["simulated", "analytic"]
"hardware.name" = ["h100-sxm", "a100-80gb-sxm"]
[[zip]]
"workload.batch" = [1, 8]
"workload.requests" = [64, 256]
"workload.output_tokens" = [2048, 1024]
"""


def small_sweep_file(tmp_path: Path) -> Path:
    path = tmp_path / "small-sweep.toml"
    path.write_text(SMALL_SWEEP)
    return path


def sweep_cli(sweep_file: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "sdsl_sim", "sweep", str(sweep_file), "--out", str(out), "--json", *extra]


def run_to_end(sweep_file: Path, out: Path, *extra: str) -> str:
    done = subprocess.run(sweep_cli(sweep_file, out, *extra), cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return done.stdout


def points_on_disk(out: Path) -> int:
    """Rows in the parts on disk (a part holds a chunk of points: one when points are slow)."""
    return len(pd.read_parquet(out, columns=["point_id"])) if list(out.glob("part-*.parquet")) else 0


def kill_after_parts(sweep_file: Path, out: Path, parts: int, total: int) -> int:
    """Start the sweep, SIGKILL it once `parts` parts exist; return how many points were on disk at the kill."""
    proc = subprocess.Popen(sweep_cli(sweep_file, out, "--workers", "2"), cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while len(list(out.glob("part-*.parquet"))) < parts:
            assert proc.poll() is None, "the sweep ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    on_disk = points_on_disk(out)  # a partial folder loads
    assert proc.returncode == -signal.SIGKILL and on_disk < total, "killed too late to test resuming"
    return on_disk


@functools.cache
def uninterrupted_small_run() -> pd.DataFrame:
    """The small sweep run once, start to end, with 2 local workers (shared with the dask test)."""
    folder = Path(_KEEP.enter_context(tempfile.TemporaryDirectory()))
    run_to_end(small_sweep_file(folder), folder / "whole", "--workers", "2")
    return pd.read_parquet(folder / "whole")


def check_kill_and_resume(sweep_file: Path, tmp_path: Path, whole: pd.DataFrame | None = None) -> None:
    total = len(expand(load_sweep(str(sweep_file))))
    if whole is None:
        run_to_end(sweep_file, tmp_path / "whole", "--workers", "2")
        whole = pd.read_parquet(tmp_path / "whole")
    killed = kill_after_parts(sweep_file, tmp_path / "resumed", 2, total)
    summary = json.loads(run_to_end(sweep_file, tmp_path / "resumed", "--workers", "2"))
    assert summary["skipped"] >= killed and summary["skipped"] + summary["run"] == total
    resumed = pd.read_parquet(tmp_path / "resumed")
    assert len(whole) == total
    assert set(whole["method"]) <= {"simulated", "analytic"}
    assert_same_rows(whole, resumed)


def assert_same_rows(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Equal rows sorted by point id, all columns except wall-clock timing (`*wall_s`)."""
    keep = sorted(c for c in a.columns if not c.endswith("wall_s"))
    assert keep == sorted(c for c in b.columns if not c.endswith("wall_s"))
    a = a[keep].sort_values("point_id").reset_index(drop=True)
    b = b[keep].sort_values("point_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)


def test_killed_small_sweep_resumes_to_the_rows_of_an_uninterrupted_run(tmp_path):
    check_kill_and_resume(small_sweep_file(tmp_path), tmp_path, uninterrupted_small_run())


@pytest.mark.slow
def test_killed_example_sweep_resumes_to_the_rows_of_an_uninterrupted_run(tmp_path):
    check_kill_and_resume(scenarios_dir() / "example-sweep.toml", tmp_path)
