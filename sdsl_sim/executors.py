"""Executors of a sweep's points: inline, local worker processes or a dask.distributed cluster.

Each takes a (lazy) iterator of points, ships them in chunks and yields a `Batch` per finished chunk, in
completion order; the caller (sweep.run_sweep) writes every batch as one part as it arrives, so what
finished is on disk whatever happens next. Points are pulled from the iterator only as workers need
them (at most two chunks in flight per worker), so a grid of any size runs in bounded memory.

Chunk sizes adapt: one point per chunk until the first results, then about CHUNK_TARGET_S of work
(at most CHUNK_MAX_POINTS points, and no more than an even share of what is left, so the last chunks
end together). A slow simulated point ships alone; thousands of analytic points share a chunk.

A point whose evaluation raises InputError ends its chunk: the batch carries the results before it and
the message, and the executor stops.
"""

from __future__ import annotations

import math
import os
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from contextlib import suppress
from dataclasses import dataclass
from itertools import islice
from typing import TYPE_CHECKING, Iterable, Iterator

from .errors import InputError

if TYPE_CHECKING:
    from .sweep import Point

DASK_CONNECT_TIMEOUT_S = 20
CHUNK_TARGET_S = 0.5  # seconds of evaluation per chunk, once point times are known
CHUNK_MAX_POINTS = 1000


@dataclass
class Batch:
    """A finished chunk: `results[i]` = (metrics, wall_s) of `points[i]`; if `error` is set, it is the
    InputError message of `points[len(results)]`, which failed (and later points were not run)."""

    points: list
    results: list
    error: str | None = None


def _timed(evaluate_point, config: dict, seed: int):
    started = time.perf_counter()
    metrics = evaluate_point(config, seed)
    return metrics, time.perf_counter() - started


def evaluate_chunk(evaluate_point, items: list) -> tuple[list, str | None]:
    """Evaluate (config, seed) items in order: ([(metrics, wall_s), ...], None), or the results before
    the first point whose input is bad and that point's InputError message."""
    results = []
    for config, seed in items:
        try:
            results.append(_timed(evaluate_point, config, seed))
        except InputError as exc:
            return results, str(exc)
    return results, None


class _Chunker:
    """Cuts the point iterator into chunks sized from the mean point time seen so far."""

    def __init__(self, points: Iterable, workers: int, todo: int):
        self.points, self.workers, self.left = iter(points), max(1, workers), todo
        self.seen_points, self.seen_s = 0, 0.0

    def next(self) -> list:
        if self.seen_points == 0:
            size = 1
        else:
            per_point = max(self.seen_s / self.seen_points, 1e-6)
            size = max(1, min(CHUNK_MAX_POINTS, int(CHUNK_TARGET_S / per_point)))
        size = min(size, max(1, math.ceil(self.left / self.workers)))
        chunk = list(islice(self.points, size))
        self.left -= len(chunk)
        return chunk

    def observe(self, results: list) -> None:
        self.seen_points += len(results)
        self.seen_s += sum(wall_s for _, wall_s in results)


def run_inline(points: Iterable[Point], evaluate_point) -> Iterator[Batch]:
    """Evaluate in this process; a batch every CHUNK_TARGET_S of work (or CHUNK_MAX_POINTS points)."""
    chunk, results, started = [], [], time.perf_counter()
    for p in points:
        chunk.append(p)
        try:
            results.append(_timed(evaluate_point, p.config, p.seed))
        except InputError as exc:
            yield Batch(chunk, results, str(exc))
            return
        if time.perf_counter() - started >= CHUNK_TARGET_S or len(results) >= CHUNK_MAX_POINTS:
            yield Batch(chunk, results)
            chunk, results, started = [], [], time.perf_counter()
    if results:
        yield Batch(chunk, results)


def run_local(points: Iterable[Point], evaluate_point, workers: int, todo: int) -> Iterator[Batch]:
    """Yield batches as chunks finish, from a pool of `workers` processes (inline for 1).

    `todo`: about how many points the iterator holds (an upper bound is fine), to even out the last chunks.
    """
    if workers <= 1:
        yield from run_inline(points, evaluate_point)
        return
    chunker = _Chunker(points, workers, todo)
    pool = ProcessPoolExecutor(workers, initializer=_worker_init, initargs=(os.getpid(),))
    in_flight: dict = {}
    try:
        exhausted = False
        while True:
            while not exhausted and len(in_flight) < 2 * workers:
                chunk = chunker.next()
                if not chunk:
                    exhausted = True
                    break
                items = [(p.config, p.seed) for p in chunk]
                in_flight[pool.submit(evaluate_chunk, evaluate_point, items)] = chunk
            if not in_flight:
                return
            finished, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in finished:
                chunk = in_flight.pop(future)
                results, error = future.result()
                chunker.observe(results)
                yield Batch(chunk, results, error)
                if error is not None:
                    return
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _worker_init(parent_pid: int) -> None:
    """Worker initializer: drop the inherited copy of the store's lock, and exit with the parent."""
    from . import store

    store.close_inherited_locks()  # the directory's lock must end with the parent, not the last worker
    _exit_with_parent(parent_pid)


def _exit_with_parent(parent_pid: int) -> None:
    """A killed sweep (SIGKILL) must not leave orphan workers burning CPU."""

    def watch():
        while os.getppid() == parent_pid:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def connect_dask(scheduler: str):
    """A dask.distributed Client of `scheduler`, or InputError; a client that failed to connect is closed
    (left alone, its finalizer hangs the interpreter's exit for 2 x the timeout, then prints a traceback)."""
    try:
        from distributed import Client
    except ImportError:
        raise InputError(
            "--executor dask needs dask.distributed; install it with pip install 'sdsl-sim[distributed]'"
        ) from None
    made = []

    class _Client(Client):
        def start(self, **kwargs):
            made.append(self)  # the half-made client, to close if connecting fails
            return super().start(**kwargs)

    try:
        return _Client(scheduler, timeout=DASK_CONNECT_TIMEOUT_S, set_as_default=False)
    except Exception as exc:
        for client in made:
            with suppress(Exception):
                client.close(timeout=5)
        if isinstance(exc, (OSError, TimeoutError, ValueError, TypeError)):
            raise InputError(f"cannot reach the dask scheduler at {scheduler!r}: {exc}") from None
        raise


def run_dask(points: Iterable[Point], evaluate_point, scheduler: str, todo: int) -> Iterator[Batch]:
    """Yield batches as chunks finish on a dask.distributed cluster (results come back here)."""
    if todo <= 0:
        return
    client = connect_dask(scheduler)
    try:
        import hashlib

        from distributed import as_completed as dask_completed

        slots = max(1, sum(client.nthreads().values()))
        chunker = _Chunker(points, slots, todo)
        pending = dask_completed(loop=client.loop)
        in_flight: dict = {}

        def submit() -> bool:
            chunk = chunker.next()
            if not chunk:
                return False
            # A key from the points: a resubmitted chunk reuses a result the cluster still holds.
            key = "sdsl-sim-chunk-" + hashlib.sha256("".join(p.point_id for p in chunk).encode()).hexdigest()[:32]
            future = client.submit(evaluate_chunk, evaluate_point, [(p.config, p.seed) for p in chunk], key=key)
            in_flight[future.key] = chunk
            pending.add(future)
            return True

        while len(in_flight) < 2 * slots and submit():
            pass
        for future in pending:
            chunk = in_flight.pop(future.key)
            results, error = future.result()
            chunker.observe(results)
            yield Batch(chunk, results, error)
            if error is not None:
                return
            while len(in_flight) < 2 * slots and submit():
                pass
    finally:
        client.close()
