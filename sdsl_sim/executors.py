"""Executors of a sweep's points: local worker processes or a dask.distributed cluster.

Each yields (point, metrics, wall_s) as points finish, in completion order; the caller (sweep.run_sweep)
writes every result as it arrives, so what finished is on disk whatever happens next. A point whose
evaluation raises InputError stops the sweep with a message naming the point.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import TYPE_CHECKING

from .errors import InputError

if TYPE_CHECKING:
    from .sweep import Point

DASK_CONNECT_TIMEOUT_S = 20


def _timed(evaluate_point, config: dict, seed: int):
    started = time.perf_counter()
    metrics = evaluate_point(config, seed)
    return metrics, time.perf_counter() - started


def _result(point: Point, get):
    """(point, metrics, wall_s) from `get()`; a point's bad input names the point."""
    try:
        metrics, wall_s = get()
    except InputError as exc:
        raise InputError(f"point {point.describe()}: {exc}") from None
    return point, metrics, wall_s


def run_local(todo: list[Point], evaluate_point, workers: int):
    """Yield (point, metrics, wall_s) as points finish, from a process pool (or inline for 1 worker)."""
    if workers == 1:
        for p in todo:
            yield _result(p, lambda: _timed(evaluate_point, p.config, p.seed))
        return
    pool = ProcessPoolExecutor(workers, initializer=_exit_with_parent, initargs=(os.getpid(),))
    try:
        futures = {pool.submit(_timed, evaluate_point, p.config, p.seed): p for p in todo}
        for future in as_completed(futures):
            yield _result(futures[future], future.result)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _exit_with_parent(parent_pid: int) -> None:
    """Worker initializer: a killed sweep (SIGKILL) must not leave orphan workers burning CPU."""

    def watch():
        while os.getppid() == parent_pid:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def run_dask(todo: list[Point], evaluate_point, scheduler: str):
    """Yield (point, metrics, wall_s) as points finish on a dask.distributed cluster."""
    if not todo:
        return
    try:
        from distributed import Client, as_completed as dask_completed
    except ImportError:
        raise InputError(
            "--executor dask needs dask.distributed; install it with pip install 'sdsl-sim[distributed]'"
        ) from None
    try:
        client = Client(scheduler, timeout=DASK_CONNECT_TIMEOUT_S, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise InputError(f"cannot reach the dask scheduler at {scheduler!r}: {exc}") from None
    try:
        # Keys from point ids: a resubmitted point reuses a result the cluster still holds.
        futures = {
            client.submit(_timed, evaluate_point, p.config, p.seed, key=f"sdsl-sim-point-{p.point_id}"): p
            for p in todo
        }
        for future in dask_completed(futures, loop=client.loop):
            yield _result(futures[future], future.result)
    finally:
        client.close()
