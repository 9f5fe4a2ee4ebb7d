"""Parsing of human-written quantities (`70B`, `277M`, `1.5T`, `70e9`)."""

import math

_SUFFIXES = {"K": 1e3, "M": 1e6, "B": 1e9, "G": 1e9, "T": 1e12}


def parse_count(text: str, what: str = "value") -> float:
    """Parse a positive count such as a parameter or token count.

    Accepts plain numbers (`70e9`, `7000000000`) and a one-letter decimal suffix
    K=1e3, M=1e6, B/G=1e9, T=1e12 (`70B`, `277M`, `1.5T`), case-insensitive.
    Raises InputError naming `what` when the text does not parse or is not a positive finite number.
    """
    from .errors import InputError

    s = str(text).strip().replace("_", "")
    scale = 1.0
    if s and s[-1].upper() in _SUFFIXES:
        scale = _SUFFIXES[s[-1].upper()]
        s = s[:-1]
    try:
        value = float(s) * scale
    except ValueError:
        raise InputError(
            f"{what} {text!r} is not a number; expected e.g. 70e9, 70B, 277M or 1.5T"
        ) from None
    if not math.isfinite(value) or value <= 0:
        raise InputError(f"{what} {text!r} must be a positive finite number")
    return value
