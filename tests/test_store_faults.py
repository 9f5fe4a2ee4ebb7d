"""The sweep store under faults: bad parts on disk, races, locks, read-only folders, full disks, kills,
oversized grids and worker counts. Toy sweeps (tests/test_sweep.py's `toy_evaluate`) keep it fast;
the CLI cases use a two-point analytic sweep."""

import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_sweep import BASE, assert_same_rows, dead_pid, run, toy_evaluate, toy_sweep

from sdsl_sim import executors, store
from sdsl_sim.cli import main
from sdsl_sim.errors import InputError
from sdsl_sim.sweep import apply_overrides, expand, run_sweep, sweep_from_dict

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent

ANALYTIC_SWEEP = """
[base.run]
method = "analytic"
[base.workload]
requests = 4
output_tokens = 64
[axes]
"workload.batch" = [1, 2]
"""


def analytic_sweep_file(tmp_path: Path) -> Path:
    path = tmp_path / "two-points.toml"
    path.write_text(ANALYTIC_SWEEP)
    return path


def one_error_line(capsys, *needles: str) -> str:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    for needle in needles:
        assert needle in err, err
    return err


def slow_toy_evaluate(config: dict, seed: int) -> dict:
    time.sleep(0.1)
    return toy_evaluate(config, seed)


def per_point_parts(monkeypatch):
    monkeypatch.setattr(executors, "CHUNK_MAX_POINTS", 1)


# ---------------------------------------------------------------- bad parts on disk


def test_corrupt_empty_foreign_and_repeated_parts_are_quarantined_and_rerun(tmp_path, monkeypatch, capsys):
    sweep = toy_sweep(replicates=2)
    run(sweep, tmp_path / "whole")
    per_point_parts(monkeypatch)
    out = tmp_path / "out"
    run(sweep, out)
    run(toy_sweep(replicates=2, base_seed=99), tmp_path / "other")
    parts = sorted(out.glob("part-*.parquet"))
    data = parts[0].read_bytes()
    parts[0].write_bytes(data[: len(data) // 2])          # truncated by a crash or a full disk
    parts[1].write_bytes(b"")                              # empty
    parts[2].write_bytes(b"this is not parquet at all")    # not parquet
    foreign = next((tmp_path / "other").glob("part-*.parquet"))
    shutil.copy(foreign, out / "part-0000000000000000.parquet")  # from another sweep
    shutil.copy(parts[3], out / "part-ffffffffffffffff.parquet")  # the same points twice
    stale = out / f".part-{parts[4].stem}.parquet.{dead_pid()}.tmp"
    stale.write_bytes(data[:10])                           # a dead writer's temp file
    capsys.readouterr()

    summary = run(sweep, out)

    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "_quarantine" in warnings[0] and "moved 5 bad parts" in warnings[0]
    assert summary["run"] == 3 and summary["quarantined"] == 5
    assert sorted(p.name for p in (out / "_quarantine").iterdir()) == sorted(
        [parts[0].name, parts[1].name, parts[2].name, "part-0000000000000000.parquet", "part-ffffffffffffffff.parquet"])
    assert not stale.exists()
    resumed = pd.read_parquet(out)
    assert len(resumed) == len(expand(sweep))
    assert_same_rows(pd.read_parquet(tmp_path / "whole"), resumed)
    assert run(sweep, out)["skipped"] == len(expand(sweep))  # and nothing is bad any more


def _forge(out: Path, name: str, table: pa.Table) -> None:
    fingerprint = json.loads((out / store.MANIFEST).read_text())["fingerprint"]
    pq.write_table(table.replace_schema_metadata({store.FINGERPRINT_KEY: fingerprint.encode()}), out / name)


def whole_and_per_point_runs(tmp_path, monkeypatch):
    """A toy sweep run whole into tmp/whole and with one part per point into tmp/out: (sweep, out)."""
    sweep = toy_sweep()
    run(sweep, tmp_path / "whole")
    per_point_parts(monkeypatch)
    out = tmp_path / "out"
    run(sweep, out)
    return sweep, out


def test_parts_of_this_sweep_with_a_wrong_schema_or_no_rows_are_quarantined(tmp_path, monkeypatch):
    sweep, out = whole_and_per_point_runs(tmp_path, monkeypatch)
    parts = sorted(out.glob("part-*.parquet"))
    table = pq.read_table(parts[0])
    _forge(out, parts[0].name, table.set_column(table.schema.get_field_index("tpot_ms"), "tpot_ms",
                                                pa.array(["fast"] * len(table))))  # type clash with other parts
    _forge(out, parts[1].name, pq.read_table(parts[1]).drop_columns(["seed"]))  # no seed column
    _forge(out, parts[2].name, pq.read_table(parts[2]).slice(0, 0))             # no rows
    summary = run(sweep, out)
    assert summary["quarantined"] == 3 and summary["run"] == 3
    assert_same_rows(pd.read_parquet(tmp_path / "whole"), pd.read_parquet(out))


def test_a_part_holding_points_outside_the_grid_is_quarantined_and_its_grid_points_rerun(tmp_path, monkeypatch):
    sweep, out = whole_and_per_point_runs(tmp_path, monkeypatch)
    part = sorted(out.glob("part-*.parquet"))[0]
    table = pq.read_table(part)
    bogus = table.set_column(0, "point_id", pa.array(["0123456789abcdef"]))
    _forge(out, part.name, pa.concat_tables([table, bogus]))  # this sweep's fingerprint, one point not its own
    summary = run(sweep, out)
    assert summary["quarantined"] == 1 and summary["run"] == 1
    assert (out / "_quarantine" / part.name).is_file()
    assert_same_rows(pd.read_parquet(tmp_path / "whole"), pd.read_parquet(out))


def test_corrupt_manifest_is_one_error_line_naming_the_file(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["sweep", str(analytic_sweep_file(tmp_path)), "--out", str(out), "--workers", "1"]) == 0
    (out / "_sweep.json").write_text('{"fingerprint": "abc", ')
    capsys.readouterr()
    assert main(["sweep", str(analytic_sweep_file(tmp_path)), "--out", str(out)]) == 2
    one_error_line(capsys, str(out / "_sweep.json"), "not a sweep manifest")


# ---------------------------------------------------------------- one writer per folder


def _manifest(n: int) -> dict:
    return {"source": f"s{n}.toml", "fingerprint": f"fingerprint-{n}", "points": n, "version": "0",
            "code_digest": "0" * 64}


@pytest.mark.parametrize("flock", [True, False], ids=["flock", "no-flock"])
def test_concurrent_opens_of_a_fresh_folder_exactly_one_wins(tmp_path, monkeypatch, flock):
    if not flock:  # a file system without flock: the exclusive manifest creation alone decides
        monkeypatch.setattr(store._Lock, "_flock", staticmethod(lambda fd: (True, False)))
    for attempt in range(20):
        out = tmp_path / f"race{attempt}"
        barrier = threading.Barrier(2)
        outcomes = {}

        def opener(n):
            barrier.wait()
            try:
                outcomes[n] = store.open_store(out, _manifest(n))
            except InputError as exc:
                outcomes[n] = exc

        threads = [threading.Thread(target=opener, args=(n,)) for n in (1, 2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        winners = [n for n, o in outcomes.items() if isinstance(o, store.Store)]
        assert len(winners) == 1, outcomes
        loser = outcomes[3 - winners[0]]
        assert isinstance(loser, InputError) and ("in use" in str(loser) or "different sweep" in str(loser))
        assert json.loads((out / "_sweep.json").read_text())["fingerprint"] == f"fingerprint-{winners[0]}"
        outcomes[winners[0]].close()


def _hold_lock(out: Path) -> subprocess.Popen:
    """A process that opens `out` as a sweep store and sleeps, holding its lock."""
    code = textwrap.dedent(f"""
        import sys, time
        from sdsl_sim import store
        import json
        st = store.open_store({str(out)!r}, json.loads(sys.argv[1]))
        print("ready", flush=True)
        time.sleep(60)
    """)
    manifest = json.loads((out / "_sweep.json").read_text())
    proc = subprocess.Popen([sys.executable, "-c", code, json.dumps(manifest)], cwd=ROOT, stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc


def test_a_second_sweep_on_a_running_folder_is_an_error_and_a_dead_holders_lock_is_taken_over(tmp_path, capsys):
    sweep_file, out = analytic_sweep_file(tmp_path), tmp_path / "out"
    assert main(["sweep", str(sweep_file), "--out", str(out), "--workers", "1"]) == 0
    holder = _hold_lock(out)
    try:
        capsys.readouterr()
        assert main(["sweep", str(sweep_file), "--out", str(out), "--workers", "1"]) == 2
        one_error_line(capsys, "is in use by another sweep", f"pid {holder.pid}")
    finally:
        holder.kill()
        holder.wait()
    assert (out / "_sweep.lock").read_text().split()[0] == str(holder.pid)  # left by the dead holder
    assert main(["sweep", str(sweep_file), "--out", str(out), "--workers", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["skipped"] == 2


def test_without_flock_the_pid_in_the_lock_decides(tmp_path, monkeypatch):
    monkeypatch.setattr(store._Lock, "_flock", staticmethod(lambda fd: (True, False)))
    out = tmp_path / "out"
    run(toy_sweep(), out)
    lock = out / "_sweep.lock"
    lock.write_text(f"{dead_pid()} {socket.gethostname()}\n")
    assert run(toy_sweep(), out)["skipped"] == 9  # a dead pid's lock is taken over
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock.write_text(f"{live.pid} {socket.gethostname()}\n")
        with pytest.raises(InputError, match=rf"in use by another sweep \(pid {live.pid} on"):
            run(toy_sweep(), out)
    finally:
        live.kill()
        live.wait()


def test_pool_workers_do_not_keep_the_folder_locked(tmp_path):
    """A forked worker closes its copy of the lock: once the parent ends, the folder is free at once."""
    out = tmp_path / "out"
    with store.open_store(out, _manifest(1)) as st:
        assert store._HELD_LOCK_FDS
        with executors.ProcessPoolExecutor(1, initializer=executors._worker_init, initargs=(os.getpid(),)) as pool:
            assert pool.submit(os.getpid).result() != os.getpid()
            st.close()
            store.open_store(out, _manifest(1)).close()  # the live worker holds no lock


# ---------------------------------------------------------------- read-only folders and full disks


def test_read_only_folder_is_one_error_line(tmp_path, monkeypatch, capsys):
    out = tmp_path / "ro"
    out.mkdir()
    if os.geteuid() != 0:
        out.chmod(0o555)
    else:  # root writes anywhere: make the file system say what a read-only one says
        real_open = os.open

        def read_only(path, flags, *args, **kwargs):
            if str(path).startswith(str(out)) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
            return real_open(path, flags, *args, **kwargs)

        monkeypatch.setattr(os, "open", read_only)
    try:
        assert main(["sweep", str(analytic_sweep_file(tmp_path)), "--out", str(out), "--workers", "1"]) == 2
    finally:
        out.chmod(0o755)
    one_error_line(capsys, f"--out {out}: cannot write there (")


@pytest.mark.parametrize("where", ["replace", "write"])
def test_full_disk_is_one_error_line_and_leaves_no_temp_file(tmp_path, monkeypatch, capsys, where):
    out = tmp_path / "out"

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    if where == "replace":
        real_replace = os.replace
        monkeypatch.setattr(os, "replace", lambda a, b: full() if Path(b).name.startswith("part-") else real_replace(a, b))
    else:
        monkeypatch.setattr(store.pq, "write_table", full)
    assert main(["sweep", str(analytic_sweep_file(tmp_path)), "--out", str(out), "--workers", "1"]) == 2
    one_error_line(capsys, f"--out {out}: cannot write part-", "No space left on device")
    assert not list(out.glob(".*.tmp")) and not list(out.glob("part-*"))


# ---------------------------------------------------------------- kills: a partial folder always loads


def test_every_part_has_the_sweeps_schema_as_the_sweep_goes(tmp_path, monkeypatch):
    per_point_parts(monkeypatch)
    out = tmp_path / "out"
    run(toy_sweep(replicates=2), out)
    schemas = {pq.read_schema(p).remove_metadata() for p in out.glob("part-*.parquet")}
    assert len(schemas) == 1
    names = next(iter(schemas)).names
    assert "iterations" in names and "speedup" in names  # simulated-only and analytic-only columns


def test_killed_mixed_method_sweep_folder_loads_and_resumes(tmp_path):
    out = tmp_path / "out"
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(TESTS)!r})
        from sdsl_sim import executors
        executors.CHUNK_MAX_POINTS = 1
        from test_store_faults import slow_toy_evaluate
        from test_sweep import toy_sweep
        from sdsl_sim.sweep import apply_overrides, run_sweep
        run_sweep(toy_sweep(replicates=2), {str(out)!r}, evaluate_point=slow_toy_evaluate,
                  prepare_point=apply_overrides, workers=1, progress=False)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while len(list(out.glob("part-*.parquet"))) < 5:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    partial = pd.read_parquet(out)  # loads, mid-sweep, with both methods' columns
    total = len(expand(toy_sweep(replicates=2)))
    assert 5 <= len(partial) < total and {"iterations", "speedup"} <= set(partial.columns)
    assert set(partial["method"]) == {"simulated", "analytic"}
    whole_dir = tmp_path / "whole"
    run_sweep(toy_sweep(replicates=2), whole_dir, evaluate_point=slow_toy_evaluate, prepare_point=apply_overrides,
              workers=1, progress=False)
    whole = pd.read_parquet(whole_dir)
    assert_same_rows(whole[whole["point_id"].isin(partial["point_id"])], partial)
    summary = run_sweep(toy_sweep(replicates=2), out, evaluate_point=slow_toy_evaluate,
                        prepare_point=apply_overrides, workers=1, progress=False)
    assert summary["skipped"] == len(partial)
    assert_same_rows(whole, pd.read_parquet(out))


# ---------------------------------------------------------------- workers and grid size


def test_workers_are_capped_at_the_points_left(tmp_path, monkeypatch, capsys):
    started = []

    class Recording(executors.ProcessPoolExecutor):
        def __init__(self, max_workers, *args, **kwargs):
            started.append(max_workers)
            super().__init__(max_workers, *args, **kwargs)

    monkeypatch.setattr(executors, "ProcessPoolExecutor", Recording)
    out = tmp_path / "out"
    assert main(["sweep", str(analytic_sweep_file(tmp_path)), "--out", str(out), "--workers", "1000", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["workers"] == 2 and started == [2]
    assert len(pd.read_parquet(out)) == 2


def test_a_grid_over_the_limit_needs_allow_large_and_is_refused_before_anything_is_written(tmp_path, capsys):
    sweep_file, out = tmp_path / "big.toml", tmp_path / "out"
    sweep_file.write_text(textwrap.dedent("""
        [axes]
        "workload.batch" = [%s]
        "decoding.gamma" = [%s]
    """) % (", ".join(map(str, range(1, 1001))), ", ".join(map(str, range(101)))))
    assert main(["sweep", str(sweep_file), "--out", str(out)]) == 2
    one_error_line(capsys, "101,000 points", "limit of 100,000", "--allow-large")
    assert not out.exists()


def test_a_huge_grid_streams_its_first_points_without_expanding_the_rest(tmp_path):
    """1e7 points: expanding them all first would take many minutes; streaming writes the first at once."""
    calls = []

    def evaluate(config, seed):
        calls.append(1)
        if len(calls) == 4:
            raise InputError("enough")
        return toy_evaluate(config, seed)

    sweep = sweep_from_dict({"base": BASE, "axes": {"workload.batch": list(range(1, 10_001)),
                                                    "decoding.gamma": list(range(1000))}}, source="huge.toml")
    with pytest.raises(InputError, match="more than the limit"):
        run_sweep(sweep, tmp_path / "out", evaluate_point=evaluate, prepare_point=apply_overrides, progress=False)
    with pytest.raises(InputError, match=r"huge.toml: point \(workload.batch=1, decoding.gamma=3, .*enough"):
        run_sweep(sweep, tmp_path / "out", evaluate_point=evaluate, prepare_point=apply_overrides, workers=1,
                  progress=False, allow_large=True)
    assert len(pd.read_parquet(tmp_path / "out")) == 3
    assert json.loads((tmp_path / "out" / "_sweep.json").read_text())["points"] == 10_000_000
