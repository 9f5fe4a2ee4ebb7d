"""Parsing of human-written quantities (`70B`, `277M`, `1.5T`, `70e9`, exact integers), and the bounds
that every count and size a user gives is checked against.

Bounds. Every count and size that reaches the simulator from a user (CLI flags, scenario keys, profile
files) has a stated upper bound, checked before anything is allocated, so that a typo such as 1e9 or
1e23 is one error line rather than gigabytes of arrays. The bounds live here, one per kind; messages
name them (`... at most MAX_BATCH = 65,536`):

    MAX_TOKENS = 10,000,000     any one length: prompt, output, context, tokens of a pass, step token
                                budget, KV block size (also `sdsl_sim.workload.MAX_TOKENS`)
    MAX_BATCH = 65,536          sequences in one batch (workload.batch, --batch, disable_above_batch)
    MAX_REQUESTS = 10,000,000   requests in one run (workload.requests, --requests, concurrency)
    MAX_GAMMA = 64              draft tokens per iteration (decoding.gamma and max_gamma, --gamma, --max-gamma)
    MAX_TREE_NODES = 1,024      draft nodes of one token tree (decoding.tree, --max-nodes); its depth is at
                                most MAX_GAMMA
    MAX_TP = 1,024              GPUs one model is split over (hardware.tp and draft_tp, --tp, --draft-tp)
    MAX_SEED = 2**63 - 1        seeds (they fit an int64 column)
    MAX_PARAMS = 1e15           parameters of a model (--target-params, model.target_params, ...)
    MAX_TRAIN_TOKENS = 1e18     pre-training tokens of the SDSL laws (--train-tokens, model.train_tokens)
    MAX_WORKERS = 1,024         worker processes
    MAX_ITERATIONS = 1,000,000  iteration counts (decoding.adaptive_horizon)
    MAX_INT = 2**63 - 1         any other integer a user writes
    MAX_DIM = 16,777,216        any one dimension of a catalog model (layers, widths, heads, vocabulary)
    MIN_SCALE, MAX_SCALE        what-if factors on a GPU's peaks, in [0.001, 1000] (--bandwidth-scale, ...)

Every number must also be finite: inf and NaN are refused everywhere.

Integers are parsed exactly: `int()` first, then a decimal form only when it is exactly an integer
("1e3" is 1000, "1.5" is an error), never through a float (which would turn 9007199254740993 into
9007199254740992).
"""

import math
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

MAX_TOKENS = 10_000_000
MAX_BATCH = 65_536
MAX_REQUESTS = 10_000_000
MAX_GAMMA = 64
MAX_TREE_NODES = 1_024
MAX_TP = 1_024
MAX_SEED = 2**63 - 1
MAX_PARAMS = 1e15
MAX_TRAIN_TOKENS = 1e18
MAX_WORKERS = 1_024
MAX_ITERATIONS = 1_000_000
MAX_INT = 2**63 - 1
MIN_SCALE, MAX_SCALE = 1e-3, 1e3
MAX_DIM = 16_777_216

_SUFFIXES = {"K": 1e3, "M": 1e6, "B": 1e9, "G": 1e9, "T": 1e12}


def _show(number) -> str:
    if isinstance(number, int):
        return f"{number:,}" if abs(number) >= 10_000 else str(number)
    return f"{number:g}"


def _finite(value) -> bool:
    if isinstance(value, int):
        return True  # math.isfinite would overflow on integers beyond a float
    return value.is_finite() if isinstance(value, Decimal) else math.isfinite(value)


@dataclass(frozen=True)
class Range:
    """The values a number may take: finite, within [low, high] (an end open where `*_open`, absent where
    None), an integer where `integer`. `high_name` names the upper bound's constant in messages."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    integer: bool = False
    high_name: str | None = None

    def contains(self, value) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.integer and not isinstance(value, int):
            return False
        return self.within(value)

    def within(self, value) -> bool:
        """`value` (an int, float or Decimal) is finite and between the ends (its type is not checked)."""
        if not _finite(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        if self.high is not None and (value >= self.high if self.high_open else value > self.high):
            return False
        return True

    @property
    def expected(self) -> str:
        """What a value must be, e.g. 'an integer in [1, 65,536] (MAX_BATCH)', 'a finite number > 0'."""
        return self._expected(named=True)

    def _expected(self, named: bool) -> str:
        kind = "an integer" if self.integer else "a finite number"
        lo, hi = self.low, self.high
        if lo is not None and hi is not None:
            text = f"{kind} in {'(' if self.low_open else '['}{_show(lo)}, {_show(hi)}{')' if self.high_open else ']'}"
        elif lo is not None:
            text = f"{kind} {'>' if self.low_open else '>='} {_show(lo)}"
        elif hi is not None:
            text = f"{kind} {'<' if self.high_open else '<='} {_show(hi)}"
        else:
            text = kind
        return f"{text} ({self.high_name})" if self.high_name and named else text

    def problem(self, value) -> str:
        """Why `value` (a number) is not in the range: the clause after the value in a message."""
        if not _finite(value):
            return f"is not finite; expected {self.expected}"
        if self.high is not None and (value >= self.high if self.high_open else value > self.high):
            bound = f"{self.high_name} = {_show(self.high)}" if self.high_name else _show(self.high)
            return f"is above {bound}; expected {self._expected(named=False)}"
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return f"is {'at or ' if self.low_open else ''}below {_show(self.low)}; expected {self.expected}"
        if self.integer and not isinstance(value, int) and value != int(value):
            return f"is not an integer; expected {self.expected}"
        return f"is not {self.expected}"


def count_range(high: int, high_name: str, low: int = 1) -> Range:
    """Integers in [low, high], the bound named `high_name`."""
    return Range(low, high, integer=True, high_name=high_name)


TOKENS = count_range(MAX_TOKENS, "MAX_TOKENS")
DEFAULT_CONTEXT = 1024  # tokens in each KV cache when decoding starts, by default (the default prompt)
PERCENTILES = (50, 90, 99)  # the latency percentiles of a result by default (vLLM's --metric-percentiles)
CONTEXT = count_range(MAX_TOKENS, "MAX_TOKENS", low=0)
BATCH = count_range(MAX_BATCH, "MAX_BATCH")
REQUESTS = count_range(MAX_REQUESTS, "MAX_REQUESTS")
GAMMA = count_range(MAX_GAMMA, "MAX_GAMMA", low=0)
MAX_GAMMA_RANGE = count_range(MAX_GAMMA, "MAX_GAMMA")
TP = count_range(MAX_TP, "MAX_TP")
TREE_NODES = count_range(MAX_TREE_NODES, "MAX_TREE_NODES")
SEED = count_range(MAX_SEED, "MAX_SEED", low=0)
WORKERS = count_range(MAX_WORKERS, "MAX_WORKERS")
ITERATIONS = count_range(MAX_ITERATIONS, "MAX_ITERATIONS")
PARAMS = Range(1, MAX_PARAMS, high_name="MAX_PARAMS")
TRAIN_TOKENS = Range(1, MAX_TRAIN_TOKENS, high_name="MAX_TRAIN_TOKENS")
# Pre-training tokens assumed for draft and target when a user gives none (the paper's order of magnitude);
# here rather than in analytic.laws so that the command line builds its parser without loading scipy.
DEFAULT_TRAIN_TOKENS = 1e13
SCALE = Range(MIN_SCALE, MAX_SCALE, high_name="MAX_SCALE")
ANY_INT = Range(None, MAX_INT, integer=True, high_name="MAX_INT")


def _label(what: str, text) -> str:
    return f"{what} {text!r}" if what else repr(text)


def parse_int(text, bounds: Range, what: str = "") -> int:
    """An integer from text, exactly: `int()` first, then a decimal form only when it is exactly an
    integer ("1e3" -> 1000; "1.5", "inf", "" are errors). Raises InputError naming `what`, the text and
    `bounds.expected` (with the bound's name when it is exceeded)."""
    from .errors import InputError

    s = str(text).strip()
    if not s:
        raise InputError(f"{_label(what, text)} is empty; expected {bounds.expected}")
    try:
        value = int(s)
    except ValueError:
        try:
            exact = Decimal(s)
        except (InvalidOperation, ValueError):
            raise InputError(f"{_label(what, text)} is not an integer; expected {bounds.expected}") from None
        if not exact.is_finite():
            raise InputError(f"{_label(what, text)} is not finite; expected {bounds.expected}")
        if exact != exact.to_integral_value():
            raise InputError(f"{_label(what, text)} is not an integer; expected {bounds.expected}")
        if not bounds.within(exact):  # before int(): "1e999999999" must not become a billion-digit int
            raise InputError(f"{_label(what, text)} {bounds.problem(exact)}")
        value = int(exact)
    if not bounds.contains(value):
        raise InputError(f"{_label(what, text)} {bounds.problem(value)}")
    return value


def parse_real(text, bounds: Range, what: str = "") -> float:
    """A finite float from text within `bounds`; InputError naming `what`, the text and the range."""
    from .errors import InputError

    if not str(text).strip():
        raise InputError(f"{_label(what, text)} is empty; expected {bounds.expected}")
    try:
        value = float(str(text).strip())
    except ValueError:
        raise InputError(f"{_label(what, text)} is not a number; expected {bounds.expected}") from None
    if not bounds.contains(value):
        raise InputError(f"{_label(what, text)} {bounds.problem(value)}")
    return value


def parse_count(text, what: str = "value", bounds: Range = PARAMS) -> float:
    """Parse a count such as a parameter or token count, within `bounds` (default [1, MAX_PARAMS]).

    Accepts plain numbers (`70e9`, `7000000000`) and a one-letter decimal suffix
    K=1e3, M=1e6, B/G=1e9, T=1e12 (`70B`, `277M`, `1.5T`), case-insensitive.
    Raises InputError naming `what` when the text does not parse or is not a finite number in range.
    """
    from .errors import InputError

    s = str(text).strip().replace("_", "")
    if not s:
        raise InputError(f"{what} {text!r} is empty; expected e.g. 70e9, 70B, 277M or 1.5T")
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
    if not math.isfinite(value):
        raise InputError(f"{what} {text!r} is not finite; expected {bounds.expected}")
    if not bounds.contains(value):
        raise InputError(f"{what} {text!r} {bounds.problem(value)}")
    return value
