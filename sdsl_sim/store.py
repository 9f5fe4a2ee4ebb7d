"""The resumable on-disk result set of one sweep: a directory that is one parquet dataset.

Layout of DIR:
  `_sweep.json`              the manifest: which sweep (a fingerprint of its point ids) and which build
                             (version and a digest of the package's code and data)
  `part-<point_id>.parquet`  one file per finished point, one row each
pyarrow (and so `pandas.read_parquet(DIR)`) ignores names starting with `_` or `.`, so the manifest and
half-written temp files (`.part-*.tmp`) never reach readers. A part appears only through `os.replace`
of a complete temp file, so a killed run leaves whole parts or none: the set of part names is the set of
finished points, which is all that resuming needs.

Parts are written one row at a time as results arrive, so their schemas can differ (a metric that is
int in one point and float in another, or present only for simulated points). Readers infer a dataset's
schema from its first file, so `finalize` rewrites the odd parts to one unified schema at the end.
"""

import hashlib
import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from . import __version__
from .errors import InputError

MANIFEST = "_sweep.json"
_PART_PREFIX = "part-"
_PART_SUFFIX = ".parquet"


def part_path(out_dir: Path, point_id: str) -> Path:
    return out_dir / f"{_PART_PREFIX}{point_id}{_PART_SUFFIX}"


def open_store(out_dir: Path, manifest: dict) -> set[str]:
    """Prepare `out_dir` for the sweep described by `manifest`; return the point ids already on disk.

    A new or empty directory gets the manifest. An existing one must hold the same sweep (equal
    `fingerprint` and `version`), else InputError: rows of two sweeps are never mixed.
    """
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"--out {out_dir}: cannot create the directory ({exc.strerror})") from None
    path = out_dir / MANIFEST
    if path.exists():
        _check_same_sweep(out_dir, json.loads(path.read_text()), manifest)
    elif any(not p.name.startswith(".") for p in out_dir.iterdir()):
        raise InputError(
            f"--out {out_dir}: directory is not empty and holds no {MANIFEST}; "
            "expected a new directory or one written by `sdsl-sim sweep`"
        )
    else:
        _write_atomic(path, json.dumps(manifest, indent=2, sort_keys=True).encode())
    for stale in out_dir.glob(f".{_PART_PREFIX}*.tmp"):  # left by a kill mid-write
        stale.unlink(missing_ok=True)
    return {
        p.name[len(_PART_PREFIX) : -len(_PART_SUFFIX)]
        for p in out_dir.glob(f"{_PART_PREFIX}*{_PART_SUFFIX}")
    }


def _check_same_sweep(out_dir: Path, found: dict, wanted: dict) -> None:
    if found.get("fingerprint") != wanted["fingerprint"]:
        raise InputError(
            f"--out {out_dir} holds a different sweep ({found.get('source')!r}, "
            f"{found.get('points')} points) than {wanted['source']!r} ({wanted['points']} points); "
            "expected the same sweep file and parameters to resume, or a new --out directory"
        )
    if (found.get("version"), found.get("code_digest")) != (wanted["version"], wanted["code_digest"]):
        raise InputError(
            f"--out {out_dir} was written by another build of sdsl-sim ({found.get('version')}, code "
            f"{str(found.get('code_digest'))[:12]}), this is {wanted['version']}, code "
            f"{wanted['code_digest'][:12]}; expected the same build to resume, or a new --out directory"
        )


def code_digest() -> str:
    """A hash of the package's code and data (hardware profiles, model catalog): what makes the rows."""
    root = Path(__file__).parent
    digest = hashlib.sha256()
    # Scenario files are left out: a point's inputs already hold everything it takes from them.
    for folder, dirs, names in os.walk(root, followlinks=True):  # hardware_profiles/ is a symlink
        dirs[:] = sorted(d for d in dirs if d not in ("__pycache__", "scenarios"))
        for name in sorted(n for n in names if n.endswith((".py", ".toml"))):
            path = Path(folder, name)
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def make_row(point_id: str, replicate: int, seed: int, inputs: dict, metrics: dict, wall_s: float) -> dict:
    """One point's row: bookkeeping columns, the flattened inputs, then the metrics (scalars; lists as JSON)."""
    row = {
        "point_id": point_id,
        "replicate": replicate,
        "seed": seed,
        "sdsl_sim_version": __version__,
        "point_wall_s": wall_s,
        **inputs,
    }
    for name, value in metrics.items():
        if name in row:
            raise RuntimeError(f"metric {name!r} collides with an input or bookkeeping column")
        if hasattr(value, "item"):  # numpy scalar
            value = value.item()
        row[name] = json.dumps(value, default=str) if isinstance(value, (list, tuple, dict)) else value
    return row


def write_part(out_dir: Path, point_id: str, row: dict) -> None:
    """Write one finished point as its own part file, atomically (temp file, then os.replace)."""
    table = pa.Table.from_pylist([row])
    final = part_path(out_dir, point_id)
    tmp = out_dir / f".{final.name}.{os.getpid()}.tmp"
    pq.write_table(table, tmp)
    os.replace(tmp, final)


def finalize(out_dir: Path) -> int:
    """Give every part the same schema so the directory reads as one dataset; return parts rewritten.

    Types are promoted permissively (int64 + double -> double, null -> anything); a column missing
    from a part is added as nulls. Each rewrite is atomic, so a kill here loses nothing either.
    """
    parts = sorted(out_dir.glob(f"{_PART_PREFIX}*{_PART_SUFFIX}"))
    schemas = {p: pq.read_schema(p).remove_metadata() for p in parts}
    if not schemas:
        return 0
    unified = pa.unify_schemas(list(schemas.values()), promote_options="permissive")
    rewritten = 0
    for path, schema in schemas.items():
        if schema.equals(unified):
            continue
        table = pq.read_table(path)
        columns = [
            table.column(f.name).cast(f.type) if f.name in schema.names else pa.nulls(len(table), f.type)
            for f in unified
        ]
        tmp = out_dir / f".{path.name}.{os.getpid()}.tmp"
        pq.write_table(pa.Table.from_arrays(columns, schema=unified), tmp)
        os.replace(tmp, path)
        rewritten += 1
    return rewritten


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
