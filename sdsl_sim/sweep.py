"""Sweeps: a grid of scenario variants, each evaluated once per seed, stored as one parquet dataset.

A sweep file (TOML) names a base scenario (`base`: an embedded scenario name, a path relative to the
sweep file, or a [base] table) and `[axes]` over its dotted keys ("workload.batch" = [1, 8, 64]); the
grid is the product of the axes and of each `[[zip]]` group (keys whose equal-length lists vary
together), times `replicates`. The README's sweep section and `scenarios/example-sweep.toml` show it all.

Seeds: an axis named `seed` sets them verbatim; otherwise each point gets
`SeedSequence(base_seed, spawn_key=hash(point inputs, replicate))` ("per-point", the default) or
`SeedSequence(base_seed).spawn(replicates)[r]` (`seeds = "common"`: common random numbers across
points), so a seed never depends on grid order, worker or resume. The point id hashes the point's full
inputs and seed and names its part file in the store (`store.py`), which is what makes a resumed sweep
end with exactly the rows of an uninterrupted one.

This module owns the schema, the expansion, the seeds and `run_sweep`; `executors.py` runs the points
(local processes or a dask.distributed cluster) and `store.py` keeps the results. Turning a point into a config and evaluating it are injected
(`prepare_point`, `evaluate_point(config, seed) -> dict`); the defaults use `sim.run`, and the
file's `evaluate` key picks what a point computes: "scenario" (default: `sim.run.evaluate`, simulated
or expected-value per the scenario's run.method) or "nstar" (the hardware-aware optimal draft size).
"""

import copy
import hashlib
import itertools
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import __version__, executors, store
from .errors import InputError
from .scenario import DEFAULT_SCENARIO, scenario_from_dict, scenarios_dir
from .sim.run import evaluate
from .sim.setup import resolve
from .tomlfile import read_toml

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
    if isinstance(base, dict):
        return base
    if base is None:
        base = DEFAULT_SCENARIO
    if not isinstance(base, str):
        raise InputError(f"{source}: key 'base' is {base!r}; expected a scenario name, path or table")
    candidates = [(base_dir or Path.cwd()) / base]
    embedded = scenarios_dir()
    candidates.append(embedded / f"{base.removesuffix('.toml')}.toml")
    for path in candidates:
        if path.is_file():
            return read_toml(path)
    names = sorted(p.stem for p in embedded.glob("*.toml") if "sweep" not in p.stem)
    raise InputError(
        f"{source}: key 'base' {base!r} is neither a file next to the sweep file nor an embedded "
        f"scenario; expected one of {', '.join(names) or '(none)'} or a path"
    )


# ---------------------------------------------------------------- expansion and seeds


def expand(sweep: Sweep, prepare_point=None) -> list[Point]:
    """All points of the grid (product of axis groups, times replicates), in file order.

    `prepare_point(base, overrides, source) -> config` turns the base dict and one point's
    {"table.key": value} overrides into the dict the evaluator gets (default: `apply_overrides`).
    """
    prepare_point = prepare_point or apply_overrides
    points = []
    for rows in itertools.product(*(rows for _, rows in sweep.groups)):
        axis_values = {k: v for (keys, _), row in zip(sweep.groups, rows) for k, v in zip(keys, row)}
        overrides = dict(axis_values)
        explicit_seed = overrides.pop("seed", None)
        where = f"{sweep.source} point ({', '.join(f'{k}={v!r}' for k, v in axis_values.items())})"
        config = prepare_point(sweep.base, overrides, where)
        inputs = flatten(config)
        for replicate in range(sweep.replicates):
            seed = explicit_seed if explicit_seed is not None else derive_seed(sweep, inputs, replicate)
            pid = _digest({"inputs": inputs, "seed": seed})[:16]
            points.append(Point(pid, config, inputs, axis_values, replicate, seed))
    _check_unique(points, sweep.source)
    return _normalise_columns(points)


def derive_seed(sweep: Sweep, inputs: dict, replicate: int) -> int:
    """A 63-bit seed for one point, a function of base_seed, the inputs (per-point mode) and replicate."""
    if sweep.common_seeds:
        child = np.random.SeedSequence(sweep.base_seed).spawn(replicate + 1)[replicate]
    else:
        words = np.frombuffer(bytes.fromhex(_digest({"inputs": inputs, "replicate": replicate})), np.uint32)
        child = np.random.SeedSequence(sweep.base_seed, spawn_key=tuple(int(w) for w in words))
    return int(child.generate_state(1, np.uint64)[0] >> np.uint64(1))


def apply_overrides(base: dict, overrides: dict, source: str = "<sweep>") -> dict:
    """A deep copy of `base` with each dotted key set, creating missing tables on the way."""
    config = copy.deepcopy(base)
    for dotted, value in overrides.items():
        node = config
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise InputError(f"{source}: axis {dotted!r}: {part!r} is a value, not a table")
        node[leaf] = copy.deepcopy(value)
    return config


def flatten(config: dict, prefix: str = "") -> dict:
    """Nested tables -> {"section.key": value}; lists stay values."""
    flat = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _digest(obj) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _check_unique(points: list[Point], source: str) -> None:
    seen = {}
    for p in points:
        if p.point_id in seen:
            raise InputError(
                f"{source}: points {seen[p.point_id].describe()} and {p.describe()} are the same scenario "
                "with the same seed; expected distinct axis values"
            )
        seen[p.point_id] = p


def _normalise_columns(points: list[Point]) -> list[Point]:
    """Give each input column one parquet type: lists/tables as JSON, int+float -> float, else mixed -> str."""
    names = dict.fromkeys(k for p in points for k in p.inputs)
    kinds = {n: {type(p.inputs[n]) for p in points if n in p.inputs} for n in names}

    def cell(name, value):
        if isinstance(value, (list, dict)):
            return json.dumps(value, sort_keys=True, default=str)
        if kinds[name] == {int, float}:
            return float(value)
        if len(kinds[name]) > 1:
            return str(value)
        return value

    return [
        Point(p.point_id, p.config, {n: cell(n, v) for n, v in p.inputs.items()}, p.axis_values, p.replicate, p.seed)
        for p in points
    ]


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


def _config(scenario) -> dict:
    """The scenario's full config as a plain dict: every key set, none of the unset (None) ones."""
    return {
        table: {
            key: list(value) if isinstance(value, tuple) else value
            for key, value in keys.items()
            if value is not None and (table, key) != ("run", "seed")
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
                             draft_tp=hw["draft_tp"], batch=wl["batch"], context=wl["prompt_tokens"],
                             runtime=parts.runtime, weight_dtype=m["weight_dtype"], kv_dtype=m["kv_dtype"])
    return result.summary()


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
) -> dict:
    """Evaluate every point not yet in `out_dir`, writing each as it finishes; return a summary.

    prepare_point / evaluate_point: see `expand`; default: the sweep file's `evaluate` choice.
    executor "local": a pool of `workers` processes (default os.cpu_count(); 1 runs in this process).
    executor "dask": the points go to the dask.distributed scheduler at `scheduler`; rows are still
    written here, by the same store code.
    """
    from tqdm import tqdm

    if executor not in ("local", "dask"):
        raise InputError(f"executor {executor!r} unknown; expected local or dask")
    if executor == "dask" and not scheduler:
        raise InputError("--executor dask needs --scheduler ADDRESS (e.g. tcp://10.0.0.5:8786)")
    started = time.perf_counter()
    default_prepare, default_evaluate = {"scenario": (prepare_scenario_point, evaluate_scenario_point),
                                         "nstar": (prepare_nstar_point, evaluate_nstar_point)}[sweep.evaluator]
    prepare_point, evaluate_point = prepare_point or default_prepare, evaluate_point or default_evaluate
    points = expand(sweep, prepare_point)
    out_dir = Path(out_dir)
    done = store.open_store(out_dir, _manifest(sweep, points))
    todo = [p for p in points if p.point_id not in done]
    workers = workers or os.cpu_count() or 1
    if executor == "local":
        if evaluate_point in (evaluate_scenario_point, evaluate_nstar_point) and todo:
            from .sim import run  # noqa: F401  (forked workers inherit it: ~2 s of imports each saved)
        results = executors.run_local(todo, evaluate_point, workers)
    else:
        results = executors.run_dask(todo, evaluate_point, scheduler)
    bar = tqdm(total=len(todo), unit="point", file=sys.stderr, disable=not progress or not todo)
    try:
        for point, metrics, wall_s in results:
            row = store.make_row(point.point_id, point.replicate, point.seed, point.inputs, metrics, wall_s)
            store.write_part(out_dir, point.point_id, row)
            bar.update()
    except InputError as exc:
        raise InputError(f"{sweep.source}: {exc}") from None
    finally:
        results.close()
        bar.close()
    store.finalize(out_dir)
    return {
        "points": len(points),
        "run": len(todo),
        "skipped": len(points) - len(todo),
        "out": str(out_dir),
        "executor": executor,
        "wall_s": time.perf_counter() - started,
    }


def _manifest(sweep: Sweep, points: list[Point]) -> dict:
    return {
        "source": Path(sweep.source).name,
        # A GPU or runtime profile named by path is data outside the package's code digest: its content
        # joins the fingerprint, so an edited profile is a different sweep rather than a silent mix.
        "fingerprint": _digest([sorted(p.point_id for p in points), _profile_files(points)]),
        "points": len(points),
        "version": __version__,
        "code_digest": store.code_digest(),
        "axes": [k for keys, _ in sweep.groups for k in keys],
        "replicates": sweep.replicates,
        "base_seed": sweep.base_seed,
        "seeds": "common" if sweep.common_seeds else "per-point",
    }


def _profile_files(points: list[Point]) -> dict:
    """{path: sha256 of its bytes} for every hardware or runtime profile the points name by path."""
    paths = {str(p.config.get("hardware", {}).get(key)) for p in points for key in ("name", "runtime")}
    return {path: hashlib.sha256(Path(path).read_bytes()).hexdigest()
            for path in sorted(paths) if path.endswith(".toml") and Path(path).is_file()}
