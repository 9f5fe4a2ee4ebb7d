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
