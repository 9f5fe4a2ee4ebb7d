"""Store throughput: a 10,000-point analytic sweep on 2 workers, this tree against a baseline commit's code.

    python -m pytest tests/bench_store.py -m benchmark -s

The baseline's package (`git archive BASELINE`; default fe45edb, the last commit before the store
work of the reliability issue; BENCH_STORE_BASELINE=REV picks another) runs from a temporary folder in a subprocess, this tree's in another,
both through the CLI with the same sweep file and venv, one after the other in the same run: the figure
is their ratio, which does not depend on how fast the machine is. Prints points/s and wall times; the
only assertions are on rows and the ratio, never on a wall time. BENCH_STORE_POINTS=N runs N points
(a multiple of 1,000; default 10,000).
"""

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
POINTS = int(os.environ.get("BENCH_STORE_POINTS", "10000"))
BASELINE = os.environ.get("BENCH_STORE_BASELINE", "fe45edb")


def sweep_file(folder: Path, points: int) -> Path:
    """An analytic grid of `points` points: 10 batches x 10 gammas x 10 bandwidth scales x points/1000 GPUs."""
    gpus = ["h100-sxm", "a100-80gb-sxm", "h200-sxm", "mi300x", "h100-nvl", "a100-80gb-pcie", "h100-pcie",
            "ideal", "a100-40gb-sxm", "l40s"]
    assert points % 1000 == 0 and points // 1000 <= len(gpus)
    path = folder / "analytic-grid.toml"
    path.write_text(f"""
[base.run]
method = "analytic"
[axes]
"workload.batch" = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]
"decoding.gamma" = [0, 1, 2, 3, 4, 5, 6, 7, 8, 10]
"hardware.bandwidth_scale" = [0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0]
"hardware.name" = {json.dumps(gpus[: points // 1000])}
""")
    return path


def run_cli(code_root: Path, sweep: Path, out: Path) -> tuple[float, dict]:
    """(wall seconds of the whole command, its --json summary) with the package at `code_root`."""
    env = {**os.environ, "PYTHONPATH": str(code_root)}
    where = subprocess.run([sys.executable, "-c", "import sdsl_sim; print(sdsl_sim.__file__)"], cwd=code_root,
                           env=env, capture_output=True, text=True, check=True).stdout.strip()
    assert Path(where).resolve().is_relative_to(code_root.resolve()), where  # the intended copy of the code
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "sdsl_sim", "sweep", str(sweep), "--out", str(out), "--workers", "2",
                           "--json", "--no-progress"], cwd=code_root, env=env, capture_output=True, text=True,
                          timeout=1800)
    wall = time.perf_counter() - started
    assert done.returncode == 0, done.stderr
    return wall, json.loads(done.stdout)


@pytest.mark.benchmark
def test_analytic_sweep_throughput_against_the_baseline():
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        head = tmp / "head"
        head.mkdir()
        archive = subprocess.run(["git", "archive", BASELINE, "sdsl_sim", "hardware_profiles", "scenarios"], cwd=ROOT,
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(head)], input=archive, check=True)
        sweep = sweep_file(tmp, POINTS)

        new_wall, new = run_cli(ROOT, sweep, tmp / "new-out")
        old_wall, old = run_cli(head, sweep, tmp / "head-out")
        resume_wall, resumed = run_cli(ROOT, sweep, tmp / "new-out")

        assert new["run"] == old["run"] == POINTS and resumed["skipped"] == POINTS
        rows = pd.read_parquet(tmp / "new-out")
        assert len(rows) == POINTS and rows["point_id"].is_unique
        assert len(pd.read_parquet(tmp / "head-out")) == POINTS
        parts_new = len(list((tmp / "new-out").glob("part-*.parquet")))
        ratio = old_wall / new_wall
        print(f"\n{POINTS:,}-point analytic sweep, 2 workers, whole command (startup included):")
        print(f"  {BASELINE[:9]}: {old_wall:6.1f} s  {POINTS / old_wall:7.0f} points/s  "
              f"(run {old['wall_s']:.1f} s, {POINTS:,} parts)")
        print(f"  this tree: {new_wall:6.1f} s  {POINTS / new_wall:7.0f} points/s  "
              f"(run {new['wall_s']:.1f} s, {parts_new} parts)")
        print(f"  speedup:   {ratio:.1f}x;  resume of the finished folder: {resume_wall:.1f} s")
        assert ratio > 2, f"this tree is only {ratio:.2f}x the throughput of {BASELINE}"
