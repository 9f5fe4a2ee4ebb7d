"""The resumable on-disk result set of one sweep: a directory that is one parquet dataset.

Layout of DIR:
  `_sweep.json`              the manifest: which sweep (a fingerprint of its definition) and which build
                             (version and a digest of the package's code and data); created exclusively
  `_sweep.lock`              held (flock) by the one process writing DIR, with its pid; a dead holder's
                             lock is free (the kernel releases it), so a killed sweep's DIR is taken over
  `part-<point_id>.parquet`  one file per finished chunk of points (one row per point), named by the
                             chunk's first point, tagged with the manifest's fingerprint
  `_quarantine/`             parts found unreadable or foreign on open, moved aside (their points re-run)
pyarrow (and so `pandas.read_parquet(DIR)`) ignores names starting with `_` or `.`, so the manifest, the
lock, the quarantine and half-written temp files (`.part-*.<pid>.tmp`) never reach readers.

Trust nothing on disk: `open_store` reads every part in full (parquet page checksums verified) and keeps
only parts that read, hold rows, carry this manifest's fingerprint, the bookkeeping columns, no point
another part holds, and columns whose types unify with the others'. The rest go to `_quarantine/`.

A part appears only through `os.replace` of a complete temp file, so a killed run leaves whole parts or
none. Every part has the same schema, the sweep's schema so far: when a chunk brings a new column or a
wider type (int64 -> double, null -> anything), the parts already written are rewritten to the wider
schema first (each rewrite atomic), then the chunk is written. So `pd.read_parquet(DIR)` loads a partial
DIR at any moment (a kill mid-widening leaves narrower parts that still load, and the next open
widens them).
"""

import errno
import hashlib
import json
import os
import secrets
import socket
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from . import __version__
from .errors import InputError

MANIFEST = "_sweep.json"
LOCK = "_sweep.lock"
QUARANTINE = "_quarantine"
FINGERPRINT_KEY = b"sdsl_sim.sweep"
_PART_PREFIX = "part-"
_PART_SUFFIX = ".parquet"
# Bookkeeping columns every part must hold, with their types.
_REQUIRED = {"point_id": pa.string(), "replicate": pa.int64(), "seed": pa.int64()}
_HELD_LOCK_FDS: set[int] = set()  # lock descriptors of this process: forked workers close their copies


def part_path(out_dir: Path, point_id: str) -> Path:
    return out_dir / f"{_PART_PREFIX}{point_id}{_PART_SUFFIX}"


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    except OSError:
        return False
    return True


class Store:
    """An open sweep directory: the points on disk (`done`), and `write(rows)` for each finished chunk.

    Holds the directory's lock until `close()` (or the end of a `with` block).
    """

    def __init__(self, out_dir: Path, manifest: dict, lock: "_Lock"):
        self.out_dir, self.manifest, self._lock = out_dir, manifest, lock
        self.fingerprint = manifest["fingerprint"]
        self.done: set[str] = set()
        self.quarantined: list[tuple[str, str]] = []  # (part name, why), this session
        self.removed_temp_files = 0
        self.schema: pa.Schema | None = None
        self._parts: dict[Path, None] = {}  # the good parts, in order

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        self._lock.release()

    # ------------------------------------------------------------ open: verify what is on disk

    def _remove_dead_temp_files(self) -> None:
        """Remove the `.<name>.<pid>.tmp` files of writers that are no longer alive (a kill mid-write)."""
        for tmp in self.out_dir.glob(".*.tmp"):
            if not (tmp.name.startswith(f".{_PART_PREFIX}") or tmp.name.startswith(f".{MANIFEST}")):
                continue
            pid = tmp.name[: -len(".tmp")].rsplit(".", 1)[-1].split("-")[0]  # .NAME.PID[-TOKEN].tmp
            if pid.isdigit() and not _pid_alive(int(pid)):
                try:
                    tmp.unlink(missing_ok=True)
                    self.removed_temp_files += 1
                except OSError as exc:
                    raise InputError(f"--out {self.out_dir}: cannot remove {tmp.name} ({_why(exc)})") from None

    def _check_part(self, path: Path) -> tuple[str | None, pa.Table | None]:
        """(None, table) for a good part, else (why it is bad, None)."""
        try:
            if path.stat().st_size == 0:
                return "empty file", None
            table = pq.read_table(path, page_checksum_verification=True)
        except (pa.ArrowException, OSError, ValueError) as exc:
            return f"unreadable: {type(exc).__name__}", None
        if table.num_rows == 0:
            return "no rows", None
        metadata = table.schema.metadata or {}
        if metadata.get(FINGERPRINT_KEY) != self.fingerprint.encode():
            return "from another sweep", None
        for name, kind in _REQUIRED.items():
            if table.schema.get_field_index(name) < 0 or table.schema.field(name).type != kind:
                return "wrong schema", None
        return None, table

    def _load_parts(self, progress: bool) -> None:
        from tqdm import tqdm

        parts = sorted(self.out_dir.glob(f"{_PART_PREFIX}*{_PART_SUFFIX}"))
        bad, good = [], {}  # good: path -> (point ids, schema)
        seen: set[str] = set()
        for path in tqdm(parts, desc="checking parts", unit="part", leave=False, file=sys.stderr,
                         disable=None if progress and len(parts) > 100 else True):
            why, table = self._check_part(path)
            if why is None:
                ids = table.column("point_id").to_pylist()
                if None in ids or len(set(ids)) != len(ids) or not seen.isdisjoint(ids):
                    why = "repeats points"
            if why is not None:
                bad.append((path, why))
                continue
            seen.update(ids)
            good[path] = (ids, table.schema.remove_metadata())
        # The sweep's schema: the parts' schemas unified, the most common first, so that the odd part
        # whose column types clash with the rest is the one moved aside.
        by_schema: dict = {}
        for path, (_, schema) in good.items():
            by_schema.setdefault(schema, []).append(path)
        for schema, paths in sorted(by_schema.items(), key=lambda item: -len(item[1])):
            try:
                self.schema = schema if self.schema is None else _unify(self.schema, schema)
            except (pa.ArrowTypeError, pa.ArrowInvalid):
                bad += [(path, "wrong schema") for path in paths]
                for path in paths:
                    del good[path]
        bad.sort()
        self._move_aside(bad)
        for path, (ids, schema) in good.items():
            self.done.update(ids)
            self._parts[path] = None
        for path, (_, schema) in good.items():  # narrower parts of a run killed mid-widening
            if not schema.equals(self.schema):
                self._rewrite(path, self.schema)

    def _move_aside(self, bad: list[tuple[Path, str]]) -> None:
        if not bad:
            return
        folder = self.out_dir / QUARANTINE
        try:
            folder.mkdir(exist_ok=True)
            for path, why in bad:
                target, n = folder / path.name, 0
                while target.exists():
                    n += 1
                    target = folder / f"{path.name}.{n}"
                os.replace(path, target)
                self._parts.pop(path, None)
                self.quarantined.append((path.name, why))
        except OSError as exc:
            raise InputError(f"--out {self.out_dir}: cannot move a bad part into {QUARANTINE}/ ({_why(exc)})") from None

    def quarantine_points(self, point_ids: set[str], why: str) -> int:
        """Move aside every part holding one of `point_ids`; its points leave `done`. Return parts moved."""
        bad = []
        for path in list(self._parts):
            ids = pq.read_table(path, columns=["point_id"]).column("point_id").to_pylist()
            if not point_ids.isdisjoint(ids):
                bad.append((path, why))
                self.done.difference_update(ids)
        self._move_aside(bad)
        return len(bad)

    # ------------------------------------------------------------ writing

    def write(self, rows: list[dict]) -> Path:
        """Write one finished chunk (rows of `make_row`) as one part, in the sweep's schema; return its path."""
        names = dict.fromkeys(name for row in rows for name in row)  # from_pylist would take the first row's
        table = pa.table({name: [row.get(name) for row in rows] for name in names})
        schema = table.schema
        if self.schema is None:
            self.schema = schema
        else:
            try:
                wider = _unify(self.schema, schema)
            except (pa.ArrowTypeError, pa.ArrowInvalid) as exc:
                raise RuntimeError(f"a column changes type between points: {exc}") from None
            if not wider.equals(self.schema):
                for path in sorted(self._parts):  # the first file, whose schema readers take, first
                    self._rewrite(path, wider)
                self.schema = wider
        final, n = part_path(self.out_dir, rows[0]["point_id"]), 0
        while final in self._parts or final.exists():
            n += 1
            final = part_path(self.out_dir, f"{rows[0]['point_id']}-{n}")
        self._write_table(_conform(table, self.schema), final)
        self._parts[final] = None
        self.done.update(row["point_id"] for row in rows)
        return final

    def _rewrite(self, path: Path, schema: pa.Schema) -> None:
        self._write_table(_conform(pq.read_table(path), schema), path)

    def _write_table(self, table: pa.Table, final: Path) -> None:
        """Write `table` to `final` atomically: a temp file named by this pid, then os.replace."""
        tmp = self.out_dir / f".{final.name}.{os.getpid()}.tmp"
        table = table.replace_schema_metadata({FINGERPRINT_KEY: self.fingerprint.encode()})
        try:
            pq.write_table(table, tmp, write_page_checksum=True)
            os.replace(tmp, final)
        except OSError as exc:
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass
            raise InputError(f"--out {self.out_dir}: cannot write {final.name} ({_why(exc)})") from None


def _unify(a: pa.Schema, b: pa.Schema) -> pa.Schema:
    return pa.unify_schemas([a, b], promote_options="permissive")


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """`table` with `schema`'s columns, in its order and types; a missing column is all nulls."""
    names = set(table.schema.names)
    columns = [table.column(f.name).cast(f.type) if f.name in names else pa.nulls(len(table), f.type)
               for f in schema]
    return pa.Table.from_arrays(columns, schema=schema.remove_metadata())


# ---------------------------------------------------------------- opening: lock and manifest


def open_store(out_dir, manifest: dict, progress: bool = False) -> Store:
    """Open `out_dir` for the sweep described by `manifest`: lock it, check or create the manifest,
    verify the parts on disk (bad ones to `_quarantine/`), remove dead writers' temp files.

    A new or empty directory gets the manifest. An existing one must hold the same sweep (equal
    `fingerprint` and build), else InputError: rows of two sweeps are never mixed. A directory another
    live process holds is an InputError too. Use the returned Store as a context manager.
    """
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"--out {out_dir}: cannot create the directory ({_why(exc)})") from None
    if not (out_dir / MANIFEST).exists():
        _check_empty(out_dir)  # before writing a lock into someone else's folder
    lock = _Lock.acquire(out_dir)
    try:
        _check_or_create_manifest(out_dir, manifest)
        st = Store(out_dir, manifest, lock)
        st._remove_dead_temp_files()
        st._load_parts(progress)
        return st
    except BaseException:
        lock.release()
        raise


def _check_empty(out_dir: Path) -> None:
    try:
        foreign = [p for p in out_dir.iterdir() if not p.name.startswith(".") and p.name not in (LOCK, MANIFEST)]
    except OSError as exc:
        raise InputError(f"--out {out_dir}: cannot list the directory ({_why(exc)})") from None
    if foreign:
        raise InputError(
            f"--out {out_dir}: directory is not empty and holds no {MANIFEST}; "
            "expected a new directory or one written by `sdsl-sim sweep`"
        )


def _check_or_create_manifest(out_dir: Path, manifest: dict) -> None:
    path = out_dir / MANIFEST
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        _check_empty(out_dir)
        if _create_exclusively(path, json.dumps(manifest, indent=2, sort_keys=True).encode()):
            return
        data = path.read_bytes()  # another process created it first: it must be the same sweep
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({_why(exc)})") from None
    try:
        found = json.loads(data)
        if not isinstance(found, dict):
            raise ValueError("not a JSON object")
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise InputError(
            f"{path}: not a sweep manifest ({exc}); expected the JSON file `sdsl-sim sweep` writes: "
            "move it away, or use a new --out directory"
        ) from None
    _check_same_sweep(out_dir, found, manifest)


def _create_exclusively(path: Path, data: bytes) -> bool:
    """Create `path` holding `data`, whole, unless it exists (then False). No gap between a check and
    a rename: a complete temp file is hard-linked into place (link fails if the name exists), or where
    the file system has no hard links, the file is opened with mode "x"."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        tmp.write_bytes(data)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK, errno.ENOSYS):
                raise
            try:
                with open(path, "xb") as f:
                    f.write(data)
            except FileExistsError:
                return False
        return True
    except OSError as exc:
        raise InputError(f"{path}: cannot be written ({_why(exc)})") from None
    finally:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass


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


class _Lock:
    """`DIR/_sweep.lock`: an exclusive flock for the run, the holder's pid and host written inside.

    The kernel drops a flock when its holder dies, so a killed sweep's lock is free at once. Where the
    file system cannot flock, the pid inside decides: a lock whose pid is not alive on this host is
    taken over. The file stays (emptied) when released.
    """

    def __init__(self, path: Path, fd: int):
        self.path, self.fd = path, fd

    @classmethod
    def acquire(cls, out_dir: Path) -> "_Lock":
        path = out_dir / LOCK
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise InputError(f"--out {out_dir}: cannot write there ({_why(exc)})") from None
        try:
            holder = cls._holder(fd)
            taken, real = cls._flock(fd)
            # Without a real flock, a live pid on this host in the file still holds the directory.
            if not taken or (not real and holder is not None and holder[0] != os.getpid()
                             and holder[1] == socket.gethostname() and _pid_alive(holder[0])):
                who = f"pid {holder[0]} on {holder[1]}" if holder else "another process"
                raise InputError(
                    f"--out {out_dir} is in use by another sweep ({who} holds {LOCK}); expected one sweep "
                    "per directory: wait for it to end, or use another --out"
                )
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()} {socket.gethostname()}\n".encode(), 0)
        except InputError:
            os.close(fd)
            raise
        except OSError as exc:
            os.close(fd)
            raise InputError(f"--out {out_dir}: cannot write {LOCK} ({_why(exc)})") from None
        _HELD_LOCK_FDS.add(fd)
        return cls(path, fd)

    @staticmethod
    def _flock(fd: int) -> tuple[bool, bool]:
        """(taken, real): (False, True) if another process holds the flock; (True, False) where there
        is no flock (not POSIX, or a file system without it: ENOLCK, EOPNOTSUPP)."""
        try:
            import fcntl
        except ImportError:
            return True, False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False, True
        except OSError:
            return True, False
        return True, True

    @staticmethod
    def _holder(fd: int) -> tuple[int, str] | None:
        try:
            pid, host = os.pread(fd, 256, 0).decode().split()
            return int(pid), host
        except (OSError, ValueError):
            return None

    def release(self) -> None:
        if self.fd is None:
            return
        fd, self.fd = self.fd, None
        _HELD_LOCK_FDS.discard(fd)
        try:
            os.ftruncate(fd, 0)
        except OSError:
            pass
        os.close(fd)  # drops the flock


def close_inherited_locks() -> None:
    """In a forked worker: close this process's copies of the parent's lock descriptors (without
    unlocking), so the flock ends with the parent, not with its slowest worker."""
    for fd in list(_HELD_LOCK_FDS):
        try:
            os.close(fd)
        except OSError:
            pass
    _HELD_LOCK_FDS.clear()


# ---------------------------------------------------------------- rows and the build digest


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
