"""Sweeps: a grid of scenario variants, each evaluated once per seed, stored as one parquet dataset.

A sweep file (TOML) names a base scenario (`base`: an embedded scenario name, a path relative to the
sweep file, or a [base] table) and `[axes]` over its dotted keys ("workload.batch" = [1, 8, 64]); the
grid is the product of the axes and of each `[[zip]]` group (keys whose equal-length lists vary
together), times `replicates`. The README's sweep section and `scenarios/example-sweep.toml` show it all.

Seeds: an axis named `seed` sets them verbatim; otherwise each point gets
`SeedSequence(base_seed, spawn_key=hash(point inputs, replicate))` ("per-point", the default) or
`SeedSequence(base_seed).spawn(replicates)[r]` (`seeds = "common"`: common random numbers across
points), so a seed never depends on grid order, worker or resume. The point id hashes the point's full
inputs and seed; the store (`store.py`) keeps the ids of the points on disk, which is what makes a
resumed sweep end with exactly the rows of an uninterrupted one.

Large grids stream: `run_sweep` never lists the grid. It counts it (`count_points`; more than
MAX_POINTS needs allow_large), checks every axis value on a few probe points (`probe`) before anything
is written, then prepares each point only when an executor asks for it (`iter_points`), skipping those
on disk. The manifest's fingerprint hashes the sweep's definition, not its point ids, for the same reason.

This module owns the schema, the expansion, the seeds and `run_sweep`; `executors.py` runs the points
(inline, local processes or a dask.distributed cluster, in chunks) and `store.py` keeps the results,
one part per chunk. Turning a point into a config and evaluating it are injected
(`prepare_point`, `evaluate_point(config, seed) -> dict`); the defaults use `sim.run`, and the
file's `evaluate` key picks what a point computes: "scenario" (default: `sim.run.evaluate`, simulated
or expected-value per the scenario's run.method) or "nstar" (the hardware-aware optimal draft size).
"""

import copy
import hashlib
import itertools
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from . import __version__, executors, store
from .errors import InputError
from .scenario import DEFAULT_SCENARIO, absolute_paths, scenario_from_dict, scenarios_dir
from .sim.run import evaluate
from .sim.setup import resolve
from .tomlfile import read_toml
from .units import PERCENTILES

_SWEEP_KEYS = ("description", "base", "evaluate", "replicates", "base_seed", "seeds", "axes", "zip")
EVALUATORS = ("scenario", "nstar")  # what one point computes; see evaluate_scenario_point / evaluate_nstar_point


@dataclass(frozen=True)
class Sweep:
    """A validated sweep file: base scenario dict and axis groups (keys varied together, value rows)."""

    source: str
    base: dict
    groups: tuple[tuple[tuple[str, ...], tuple[tuple, ...]], ...]
    replicates: int = 1
    base_seed: int = 0
    common_seeds: bool = False
    evaluator: str = "scenario"


@dataclass(frozen=True)
class Point:
    """One evaluation: the scenario dict to run, its flattened inputs (the row's columns), its seed."""

    point_id: str
    config: dict
    inputs: dict
    axis_values: dict
    replicate: int
    seed: int

    def describe(self) -> str:
        values = ", ".join(f"{k}={v!r}" for k, v in self.axis_values.items())
        return f"({values}, replicate {self.replicate})"


# ---------------------------------------------------------------- loading and validation


def load_sweep(path_or_name: str) -> Sweep:
    """Read and validate a sweep file: a path, or the name of an embedded file in `scenarios/`."""
    path = Path(path_or_name)
    if not path.is_file():
        embedded = scenarios_dir() / f"{path_or_name.removesuffix('.toml')}.toml"
        if not embedded.is_file():
            raise InputError(
                f"sweep file {path_or_name!r} not found; expected a path to a .toml file "
                "or the name of one in scenarios/ (e.g. example-sweep)"
            )
        path = embedded
    return sweep_from_dict(read_toml(path), source=str(path), base_dir=path.parent)


def sweep_from_dict(data: dict, source: str = "<dict>", base_dir: Path | None = None) -> Sweep:
    """Validate a parsed sweep; InputError messages name `source` and the key."""
    for key in data:
        if key not in _SWEEP_KEYS:
            raise InputError(f"{source}: key {key!r} unknown; expected one of {', '.join(_SWEEP_KEYS)}")
    replicates = _int_at_least(data, "replicates", 1, 1, source)
    base_seed = _int_at_least(data, "base_seed", 0, 0, source)
    seeds = data.get("seeds", "per-point")
    if seeds not in ("per-point", "common"):
        raise InputError(f"{source}: key 'seeds' is {seeds!r}; expected 'per-point' or 'common'")
    axes = data.get("axes", {})
    if not isinstance(axes, dict):
        raise InputError(f"{source}: key 'axes' must be a table of key = [values]")
    groups = [((key,), tuple((v,) for v in values)) for key, values in _axis_lists(axes, "axes", source)]
    zips = data.get("zip", [])
    if not isinstance(zips, list) or not all(isinstance(z, dict) for z in zips):
        raise InputError(f"{source}: key 'zip' must be an array of tables ([[zip]])")
    for i, table in enumerate(zips):
        groups.append(_zip_group(table, f"zip[{i}]", source))
    keys = [k for group_keys, _ in groups for k in group_keys]
    if not keys:
        raise InputError(f"{source}: no axes; expected an [axes] table with at least one key = [values]")
    for key in set(keys):
        if keys.count(key) > 1:
            raise InputError(f"{source}: axis {key!r} appears more than once; expected each key once")
    if "seed" in keys:
        if replicates != 1 or "base_seed" in data:
            raise InputError(
                f"{source}: axis 'seed' sets the seeds itself; expected no 'replicates' or 'base_seed' with it"
            )
        for (value,) in next(rows for ks, rows in groups if ks == ("seed",)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise InputError(f"{source}: axis 'seed' value {value!r}; expected integers >= 0")
    evaluator = data.get("evaluate", "scenario")
    if evaluator not in EVALUATORS:
        raise InputError(f"{source}: key 'evaluate' is {evaluator!r}; expected one of {', '.join(EVALUATORS)}")
    base = _resolve_base(data.get("base"), source, base_dir)
    return Sweep(source, base, tuple(groups), replicates, base_seed, seeds == "common", evaluator)


def _int_at_least(data, key, default, low, source) -> int:
    value = data.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise InputError(f"{source}: key {key!r} is {value!r}; expected an integer >= {low}")
    return value


def _axis_lists(table: dict, where: str, source: str, prefix: str = ""):
    """Yield (dotted key, values) for every list in a possibly nested table of axes."""
    for key, value in table.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from _axis_lists(value, where, source, f"{dotted}.")
        elif not isinstance(value, list):
            raise InputError(
                f"{source}: {where} key {dotted!r} is {value!r}; expected a list of values, e.g. [1, 8, 64]"
            )
        elif not value:
            raise InputError(f"{source}: {where} key {dotted!r} has no values; expected a non-empty list")
        else:
            yield dotted, value


def _zip_group(table: dict, where: str, source: str):
    pairs = list(_axis_lists(table, where, source))
    lengths = {len(values) for _, values in pairs}
    if len(lengths) > 1:
        detail = ", ".join(f"{k}: {len(v)}" for k, v in pairs)
        raise InputError(f"{source}: {where} lists have different lengths ({detail}); expected equal lengths")
    if not pairs:
        raise InputError(f"{source}: {where} is empty; expected key = [values] pairs")
    return tuple(k for k, _ in pairs), tuple(zip(*(values for _, values in pairs)))


def _resolve_base(base, source: str, base_dir: Path | None) -> dict:
    """The base scenario's tables, relative paths in them read from the folder of the file that holds them."""
    if isinstance(base, dict):
        return absolute_paths(base, base_dir)
    if base is None:
        base = DEFAULT_SCENARIO
    if not isinstance(base, str):
        raise InputError(f"{source}: key 'base' is {base!r}; expected a scenario name, path or table")
    candidates = [(base_dir or Path.cwd()) / base]
    embedded = scenarios_dir()
    candidates.append(embedded / f"{base.removesuffix('.toml')}.toml")
    for path in candidates:
        if path.is_file():
            return absolute_paths(read_toml(path), path.parent)
    names = sorted(p.stem for p in embedded.glob("*.toml") if "sweep" not in p.stem)
    raise InputError(
        f"{source}: key 'base' {base!r} is neither a file next to the sweep file nor an embedded "
        f"scenario; expected one of {', '.join(names) or '(none)'} or a path"
    )


# ---------------------------------------------------------------- expansion and seeds


def count_points(sweep: Sweep) -> int:
    """How many points the grid has (product of the groups' lengths, times replicates), without expanding it."""
    return math.prod(len(rows) for _, rows in sweep.groups) * sweep.replicates


def expand(sweep: Sweep, prepare_point=None) -> list[Point]:
    """All points of the grid (product of axis groups, times replicates), in file order, as a list.

    `prepare_point(base, overrides, source) -> config` turns the base dict and one point's
    {"table.key": value} overrides into the dict the evaluator gets (default: `apply_overrides`).
    `run_sweep` streams the grid instead (`iter_points`); this list is for small grids and tests.
    """
    prepare_point = prepare_point or apply_overrides
    points = [p for axis_values in _grid(sweep) for p in _raw_points(sweep, axis_values, prepare_point)]
    _check_unique(points, sweep.source)
    return _normalise_columns(points)


def iter_points(sweep: Sweep, prepare_point=None, kinds: dict | None = None) -> Iterator[Point]:
    """The points of `expand`, lazily: each is prepared (and so checked) only when it is reached.

    Column types come from `kinds` ({column: set of value types}, default: `probe(sweep)`), the types
    a few probe points show, since a stream cannot look ahead at every point as `expand` does.
    """
    prepare_point = prepare_point or apply_overrides
    kinds = probe(sweep, prepare_point) if kinds is None else kinds
    for axis_values in _grid(sweep):
        for p in _raw_points(sweep, axis_values, prepare_point):
            yield _normalise(p, kinds, sweep.source)


def probe(sweep: Sweep, prepare_point=None) -> dict:
    """Prepare one point per axis value (that value, every other group at its first row), replicate 0.

    Checks every value of every axis before anything runs (unknown names, a value that does not fit)
    and a repeated value (two rows of a group giving the same point); returns {column: set of value
    types} over the probes, from which `iter_points` types its columns. A column's type depends on
    the group that sets it, so the probes see every type it takes.
    """
    prepare_point = prepare_point or apply_overrides
    first = [0] * len(sweep.groups)
    choices = [tuple(first)]
    for g, (_, rows) in enumerate(sweep.groups):
        choices += [tuple(first[:g] + [r] + first[g + 1:]) for r in range(1, len(rows))]
    kinds: dict = {}
    seen: dict = {}
    for choice in choices:
        axis_values = {k: v for (keys, rows), r in zip(sweep.groups, choice) for k, v in zip(keys, rows[r])}
        for p in _raw_points(sweep, axis_values, prepare_point, replicates=1):
            if p.point_id in seen:
                _check_unique([seen[p.point_id], p], sweep.source)
            seen[p.point_id] = p
            for name, value in p.inputs.items():
                kinds.setdefault(name, set()).add(type(value))
    return kinds


def _grid(sweep: Sweep) -> Iterator[dict]:
    """{axis key: value} of every grid point, in file order (lazily: itertools.product yields)."""
    for rows in itertools.product(*(rows for _, rows in sweep.groups)):
        yield {k: v for (keys, _), row in zip(sweep.groups, rows) for k, v in zip(keys, row)}


def _raw_points(sweep: Sweep, axis_values: dict, prepare_point, replicates: int | None = None) -> list[Point]:
    """The points (one per replicate) of one grid cell, inputs not yet normalised."""
    overrides = dict(axis_values)
    explicit_seed = overrides.pop("seed", None)
    where = f"{sweep.source} point ({', '.join(f'{k}={v!r}' for k, v in axis_values.items())})"
    config = prepare_point(sweep.base, overrides, where)
    inputs = flatten(config)
    inputs_json = _json(inputs)  # once: both digests below embed it
    points = []
    for replicate in range(sweep.replicates if replicates is None else replicates):
        seed = explicit_seed if explicit_seed is not None else derive_seed(sweep, inputs, replicate, inputs_json)
        # = _digest({"inputs": inputs, "seed": seed}), without encoding the inputs again
        pid = hashlib.sha256(f'{{"inputs":{inputs_json},"seed":{_json(seed)}}}'.encode()).hexdigest()[:16]
        points.append(Point(pid, config, inputs, axis_values, replicate, seed))
    return points


def derive_seed(sweep: Sweep, inputs: dict, replicate: int, inputs_json: str | None = None) -> int:
    """A 63-bit seed for one point, a function of base_seed, the inputs (per-point mode) and replicate."""
    if sweep.common_seeds:
        child = np.random.SeedSequence(sweep.base_seed).spawn(replicate + 1)[replicate]
    else:
        # = _digest({"inputs": inputs, "replicate": replicate})
        text = f'{{"inputs":{inputs_json or _json(inputs)},"replicate":{_json(replicate)}}}'
        words = np.frombuffer(hashlib.sha256(text.encode()).digest(), np.uint32)
        child = np.random.SeedSequence(sweep.base_seed, spawn_key=tuple(int(w) for w in words))
    return int(child.generate_state(1, np.uint64)[0] >> np.uint64(1))


def apply_overrides(base: dict, overrides: dict, source: str = "<sweep>") -> dict:
    """A deep copy of `base` with each dotted key set, creating missing tables on the way."""
    config = _copy_tree(base)
    for dotted, value in overrides.items():
        node = config
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise InputError(f"{source}: axis {dotted!r}: {part!r} is a value, not a table")
        node[leaf] = _copy_tree(value)
    return config


def _copy_tree(value):
    """copy.deepcopy for TOML data (tables, arrays, scalars), several times faster; other objects deep-copied."""
    if isinstance(value, dict):
        return {k: _copy_tree(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy_tree(v) for v in value]
    if value is None or isinstance(value, (str, int, float)):  # bool is an int
        return value
    return copy.deepcopy(value)


def flatten(config: dict, prefix: str = "") -> dict:
    """Nested tables -> {"section.key": value}; lists stay values."""
    flat = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _json(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def _digest(obj) -> str:
    return hashlib.sha256(_json(obj).encode()).hexdigest()


def _check_unique(points: list[Point], source: str) -> None:
    seen = {}
    for p in points:
        if p.point_id in seen:
            raise InputError(
                f"{source}: points {seen[p.point_id].describe()} and {p.describe()} are the same scenario "
                "with the same seed; expected distinct axis values"
            )
        seen[p.point_id] = p


def _cell(kinds: set, value):
    """One input value in its column's type: lists/tables as JSON, int+float -> float, else mixed -> str."""
    if isinstance(value, (list, dict)):
        return json.dumps(value, sort_keys=True, default=str)
    if kinds == {int, float}:
        return float(value)
    if len(kinds) > 1:
        return str(value)
    return value


def _normalise_columns(points: list[Point]) -> list[Point]:
    """Give each input column one parquet type over all `points` (see `_cell`)."""
    names = dict.fromkeys(k for p in points for k in p.inputs)
    kinds = {n: {type(p.inputs[n]) for p in points if n in p.inputs} for n in names}
    return [
        Point(p.point_id, p.config, {n: _cell(kinds[n], v) for n, v in p.inputs.items()}, p.axis_values,
              p.replicate, p.seed)
        for p in points
    ]


def _normalise(p: Point, kinds: dict, source: str) -> Point:
    """One streamed point's inputs typed as the probes typed their columns (see `_cell`)."""
    inputs = {}
    for name, value in p.inputs.items():
        seen = kinds.get(name)
        kind = type(value)
        if seen is not None and kind in seen and len(seen) == 1 and kind is not list and kind is not dict:
            inputs[name] = value  # the common case: the one type the probes saw
        elif isinstance(value, (list, dict)) or (seen is not None and kind in seen):
            inputs[name] = _cell(seen or set(), value)
        elif seen is None:
            inputs[name] = value  # a column no probe has: the store adds it (nulls in earlier parts)
        elif seen <= {int, float} and kind in (int, float):
            inputs[name] = float(value)  # the store widens the column to double, as expand would
        else:
            raise InputError(
                f"{source}: point {p.describe()}: key {name!r} is {value!r} ({kind.__name__}), other points "
                f"give it {', '.join(sorted(t.__name__ for t in seen))}; expected one type per key across the grid"
            )
    return Point(p.point_id, p.config, inputs, p.axis_values, p.replicate, p.seed)


# ---------------------------------------------------------------- evaluation and executors


def prepare_scenario_point(base: dict, overrides: dict, source: str) -> dict:
    """The default point config: the base scenario with overrides, validated, every key filled in.

    A size axis (model.draft_params) replaces the base's named model (model.draft), and vice versa.
    run.seed is dropped: the sweep supplies the seeds (axis `seed`, or derived from base_seed).
    """
    scenario = _point_scenario(base, overrides, source)
    resolve(scenario)  # unknown names, dtypes, a tp or a model that does not fit: now, not mid-sweep
    return _config(scenario)


def _point_scenario(base: dict, overrides: dict, source: str):
    if "run.seed" in overrides:
        raise InputError(f"{source}: axis 'run.seed': the sweep sets the seeds; expected axis 'seed' or base_seed")
    data = apply_overrides(base, overrides, source)
    model = data.get("model", {})
    for role, size in (("target", "target_params"), ("draft", "draft_params")):
        for key, other in ((size, role), (role, size)):
            if f"model.{key}" in overrides and f"model.{other}" not in overrides:
                model.pop(other, None)
    return scenario_from_dict(data, source=source)


# Keys added after sweeps were first stored: left out of a point's config while at their default, so
# that the points (ids and derived seeds) of every earlier sweep stay the same.
_LATE_DEFAULTS = {("decoding", "method"): "draft-model", ("decoding", "tree_accept_kind"): "conditional",
                  ("run", "metric_percentiles"): list(PERCENTILES)}


def _config(scenario) -> dict:
    """The scenario's full config as a plain dict: every key set, none of the unset (None) ones."""
    return {
        table: {
            key: list(value) if isinstance(value, tuple) else value
            for key, value in keys.items()
            if value is not None and (table, key) != ("run", "seed")
            and _LATE_DEFAULTS.get((table, key), object()) != value
        }
        for table, keys in scenario.config.items()
    }


def evaluate_scenario_point(config: dict, seed: int) -> dict:
    """The default point evaluator: validate the point's scenario dict and evaluate it with `seed`."""
    return evaluate(scenario_from_dict(config, source="<sweep point>"), seed)


# The scenario keys an "nstar" point reads; the rest (draft, decoding, run) would be misleading columns.
_NSTAR_KEYS = {"model": ("target", "target_params", "train_tokens", "weight_dtype", "kv_dtype"),
               "hardware": None, "workload": ("batch", "prompt_tokens")}


def prepare_nstar_point(base: dict, overrides: dict, source: str) -> dict:
    """The point config of an "nstar" sweep: the scenario point cut down to the keys N* depends on."""
    scenario = _point_scenario(base, overrides, source)
    resolve(scenario, draft=False)
    config = _config(scenario)
    return {table: {k: v for k, v in config[table].items() if keys is None or k in keys}
            for table, keys in _NSTAR_KEYS.items()}


def evaluate_nstar_point(config: dict, seed: int) -> dict:
    """The point evaluator of `evaluate = "nstar"` sweeps: the hardware-aware optimal draft size
    (draft_size.hardware_n_star) for the point's target, [hardware], workload.batch, workload.prompt_tokens
    (the context) and model.train_tokens. The draft keys are ignored (the draft size is the answer).
    No randomness: `seed` is unused."""
    from .draft_size import hardware_n_star

    scenario = scenario_from_dict(config, source="<sweep point>")
    m, hw, wl = scenario.config["model"], scenario.config["hardware"], scenario.config["workload"]
    parts = resolve(scenario, draft=False)
    result = hardware_n_star(parts.target, parts.gpu, train_tokens=m["train_tokens"], tp=hw["tp"],
                             draft_tp=hw["draft_tp"] or 1, batch=wl["batch"], context=wl["prompt_tokens"],
                             runtime=parts.runtime, weight_dtype=m["weight_dtype"], kv_dtype=m["kv_dtype"])
    return result.summary()


MAX_POINTS = 100_000  # a larger grid needs allow_large (--allow-large): it may run for days


def run_sweep(
    sweep: Sweep,
    out_dir: str | os.PathLike,
    *,
    prepare_point=None,
    evaluate_point=None,
    executor: str = "local",
    workers: int | None = None,
    scheduler: str | None = None,
    progress: bool = True,
    allow_large: bool = False,
) -> dict:
    """Evaluate every point not yet in `out_dir`, writing each finished chunk as it arrives; return a summary.

    prepare_point / evaluate_point: see `expand`; default: the sweep file's `evaluate` choice.
    executor "local": a pool of `workers` processes (default os.cpu_count(), never more than the points
    left; 1 runs in this process). executor "dask": the points go to the dask.distributed scheduler at
    `scheduler`; rows are still written here, by the same store code.
    The grid streams: points are prepared (and checked) as the executor needs them, after a probe of
    every axis value (`probe`) that catches most mistakes before anything is written. A grid of more
    than MAX_POINTS points is refused unless `allow_large`. progress: a bar on stderr when it is a terminal.
    """
    from tqdm import tqdm

    if executor not in ("local", "dask"):
        raise InputError(f"executor {executor!r} unknown; expected local or dask")
    if executor == "dask" and not scheduler:
        raise InputError("--executor dask needs --scheduler ADDRESS (e.g. tcp://10.0.0.5:8786)")
    started = time.perf_counter()
    total = count_points(sweep)
    if total > MAX_POINTS and not allow_large:
        raise InputError(
            f"{sweep.source}: the grid has {total:,} points, more than the limit of {MAX_POINTS:,}; expected "
            "fewer axis values or replicates, or --allow-large to run it anyway"
        )
    default_prepare, default_evaluate = {"scenario": (prepare_scenario_point, evaluate_scenario_point),
                                         "nstar": (prepare_nstar_point, evaluate_nstar_point)}[sweep.evaluator]
    prepare_point, evaluate_point = prepare_point or default_prepare, evaluate_point or default_evaluate
    kinds = probe(sweep, prepare_point)  # every axis value checked before anything is written
    out_dir = Path(out_dir)
    counts = {"run": 0, "quarantined": 0}
    with store.open_store(out_dir, _manifest(sweep, total, prepare_point, evaluate_point), progress) as st:
        _warn_quarantined(out_dir, st.quarantined)
        counts["quarantined"] += len(st.quarantined)
        todo = max(0, total - len(st.done))
        workers = min(workers or os.cpu_count() or 1, max(1, todo))
        if executor == "local" and workers > 1 and evaluate_point in (evaluate_scenario_point, evaluate_nstar_point):
            from .sim import run  # noqa: F401  (forked workers inherit it: ~2 s of imports each saved)
        bar = tqdm(total=total, unit="point", file=sys.stderr, disable=None if progress else True)
        try:
            first = True
            while True:
                unknown = _run_pass(sweep, st, prepare_point, evaluate_point, kinds, executor, workers, scheduler,
                                    bar, counts, first)
                first = False
                if not unknown:
                    break
                # Parts of this sweep's fingerprint holding points its grid does not have: aside, and
                # run again whatever grid points they also held.
                moved = st.quarantine_points(unknown, "points not in this sweep")
                _warn_quarantined(out_dir, st.quarantined[-moved:])
                counts["quarantined"] += moved
        finally:
            bar.close()
    summary = {"points": total, "run": counts["run"], "skipped": total - counts["run"], "out": str(out_dir),
               "executor": executor}
    if executor == "local":
        summary["workers"] = workers
    if counts["quarantined"]:
        summary["quarantined"] = counts["quarantined"]
    summary["wall_s"] = time.perf_counter() - started
    return summary


def _run_pass(sweep, st, prepare_point, evaluate_point, kinds, executor, workers, scheduler, bar, counts,
              first: bool) -> set:
    """Stream the grid once, running the points not on disk; return the ids on disk the grid never reached."""
    pending = set(st.done)  # on disk, not yet met in the grid
    todo = max(0, count_points(sweep) - len(pending))
    seen: dict = {}  # point id -> point, for the first MAX_POINTS points: a repeated point is an error

    def points():
        for p in iter_points(sweep, prepare_point, kinds):
            if len(seen) < MAX_POINTS:
                if p.point_id in seen:
                    _check_unique([seen[p.point_id], p], sweep.source)
                seen[p.point_id] = Point(p.point_id, {}, {}, p.axis_values, p.replicate, p.seed)  # no config kept
            if p.point_id in pending:
                pending.discard(p.point_id)
                if first:
                    bar.update()
                continue
            if p.point_id in st.done:  # written earlier in this pass: a repeated point past MAX_POINTS
                continue
            yield p

    if executor == "local":
        batches = executors.run_local(points(), evaluate_point, workers, todo)
    else:
        batches = executors.run_dask(points(), evaluate_point, scheduler, todo)
    try:
        for batch in batches:
            rows = [store.make_row(p.point_id, p.replicate, p.seed, p.inputs, metrics, wall_s)
                    for p, (metrics, wall_s) in zip(batch.points, batch.results)]
            if rows:
                st.write(rows)
                counts["run"] += len(rows)
                bar.update(len(rows))
            if batch.error is not None:
                failed = batch.points[len(batch.results)]
                raise InputError(f"{sweep.source}: point {failed.describe()}: {batch.error}")
    finally:
        batches.close()
    return pending


def _warn_quarantined(out_dir: Path, moved: list) -> None:
    """One warning line on stderr naming the parts moved into _quarantine/ and why."""
    if not moved:
        return
    named = ", ".join(f"{name} ({why})" for name, why in moved[:3])
    more = f" and {len(moved) - 3} more" if len(moved) > 3 else ""
    print(f"warning: --out {out_dir}: moved {len(moved)} bad part{'s' * (len(moved) > 1)} into "
          f"{out_dir / store.QUARANTINE}/: {named}{more}; their points run again", file=sys.stderr)


def _manifest(sweep: Sweep, total: int, prepare_point=None, evaluate_point=None) -> dict:
    return {
        "source": Path(sweep.source).name,
        "fingerprint": fingerprint(sweep, prepare_point, evaluate_point),
        "points": total,
        "version": __version__,
        "code_digest": store.code_digest(),
        "axes": [k for keys, _ in sweep.groups for k in keys],
        "replicates": sweep.replicates,
        "base_seed": sweep.base_seed,
        "seeds": "common" if sweep.common_seeds else "per-point",
    }


def fingerprint(sweep: Sweep, prepare_point=None, evaluate_point=None) -> str:
    """A hash of what decides a sweep's points, without expanding it: the base, the axis groups (in a
    canonical order: the same grid written in another order is the same sweep), replicates, seeds, the
    evaluator and the content of any GPU or runtime profile named by path. With the build (the
    manifest's code digest) it fixes every point id, so an equal fingerprint means the same points."""
    groups = []
    for keys, rows in sweep.groups:
        order = sorted(range(len(keys)), key=keys.__getitem__)
        canonical_rows = sorted((tuple(row[i] for i in order) for row in rows),
                                key=lambda r: json.dumps(r, sort_keys=True, default=str))
        groups.append([[keys[i] for i in order], canonical_rows])
    groups.sort(key=lambda g: g[0])

    def name(fn):
        return None if fn is None else f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', type(fn).__qualname__)}"

    return _digest({
        "base": sweep.base, "groups": groups, "replicates": sweep.replicates, "base_seed": sweep.base_seed,
        "common_seeds": sweep.common_seeds, "evaluate": sweep.evaluator,
        "functions": [name(prepare_point), name(evaluate_point)],
        # A GPU or runtime profile named by path is data outside the package's code digest: its content
        # joins the fingerprint, so an edited profile is a different sweep rather than a silent mix.
        "profiles": _profile_files(sweep),
    })


def _profile_files(sweep: Sweep) -> dict:
    """{path: sha256 of its bytes} for every hardware or runtime profile the sweep names by path."""
    values = [sweep.base.get("hardware", {}).get(key) for key in ("name", "runtime")
              if isinstance(sweep.base.get("hardware"), dict)]
    for keys, rows in sweep.groups:
        for i, key in enumerate(keys):
            if key in ("hardware.name", "hardware.runtime"):
                values += [row[i] for row in rows]
    paths = {str(v) for v in values if isinstance(v, str) and v.endswith(".toml")}
    return {path: hashlib.sha256(Path(path).read_bytes()).hexdigest()
            for path in sorted(paths) if Path(path).is_file()}
