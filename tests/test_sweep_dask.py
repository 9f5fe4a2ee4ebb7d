"""The same sweep on a real dask.distributed cluster gives the rows of the local-process run."""

import json

import pandas as pd
import pytest

from test_sweep_resume import assert_same_rows, run_to_end, small_sweep_file, uninterrupted_small_run

distributed = pytest.importorskip("distributed")


def test_dask_cluster_run_equals_local_process_run(tmp_path):
    sweep_file = small_sweep_file(tmp_path)
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as cluster:
        out = run_to_end(sweep_file, tmp_path / "dask", "--executor", "dask", "--scheduler", cluster.scheduler_address)
    summary = json.loads(out)
    assert summary["executor"] == "dask" and summary["run"] == summary["points"] > 0
    assert_same_rows(uninterrupted_small_run(), pd.read_parquet(tmp_path / "dask"))


def test_unreachable_scheduler_is_an_input_error(tmp_path, monkeypatch):
    from test_sweep import run, toy_sweep

    from sdsl_sim import executors
    from sdsl_sim.errors import InputError

    monkeypatch.setattr(executors, "DASK_CONNECT_TIMEOUT_S", 1)
    with pytest.raises(InputError, match=r"cannot reach the dask scheduler at 'tcp://127.0.0.1:9'"):
        run(toy_sweep(), tmp_path / "out", executor="dask", scheduler="tcp://127.0.0.1:9")


def test_a_scheduler_that_is_not_an_address_is_one_error_line_and_no_hang(tmp_path):
    """The half-made client is closed: no 40 s wait at exit, no traceback from its finalizer."""
    import subprocess
    import time

    from test_sweep_resume import ROOT, sweep_cli

    started = time.monotonic()
    done = subprocess.run([*sweep_cli(small_sweep_file(tmp_path), tmp_path / "out"), "--scheduler", "not-an-address"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr
    assert "cannot reach the dask scheduler at 'not-an-address'" in done.stderr
    assert time.monotonic() - started < 30  # was 40 s of a hanging finalizer
