"""Reading a user's TOML file: every way it can fail becomes one InputError that names the file."""

import tomllib
from pathlib import Path

from .errors import InputError


def read_toml(path, label: str | None = None) -> dict:
    """The parsed table of the TOML file at `path`; `label` names it in messages (default: the path)."""
    label = label or str(path)
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{label}: not valid TOML ({exc})") from None
    except OSError as exc:
        raise InputError(f"{label}: cannot be read ({exc.strerror})") from None
