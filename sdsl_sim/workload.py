"""Per-request workloads: length distributions for `workload.prompt_tokens` / `workload.output_tokens`,
and request traces for `workload.trace`.

Length distributions
--------------------
`workload.prompt_tokens` and `workload.output_tokens` take an integer (every request the same) or a
TOML table; `parse_length` turns either into a `LengthDist`:

    prompt_tokens = 1024                                            # fixed
    prompt_tokens = {dist = "uniform", low = 128, high = 2048}      # integers, both ends inclusive
    prompt_tokens = {dist = "lognormal", median = 39.37, sigma = 2.2752, max = 2048}
    prompt_tokens = {dist = "empirical", values = [64, 128, 128, 4096]}   # uniform over the list

The lognormal is a *truncated, rounded* lognormal: draw Y = exp(N(ln median, sigma)), round to the
nearest integer, clip below at 1, and redraw every value above `max` (rejection, not clipping, so no
probability mass piles up at `max`). `max` is required and must be >= `median`, so at least about half
of the draws are accepted each round. Because of the rounding, the clip and the truncation, `median`
is the median of the underlying lognormal, not exactly of the draws; `LengthDist.mean_tokens` is the
exact mean of what `draw` produces. Every length is at most MAX_TOKENS.

Traces
------
`load_trace` reads a CSV or JSONL file of requests in arrival order, with either the native columns
`arrival_s, prompt_tokens, output_tokens` or those of the Azure LLM inference traces
(`TIMESTAMP, ContextTokens, GeneratedTokens`; https://github.com/Azure/AzurePublicDataset, files
`AzureLLMInferenceTrace_{code,conv}.csv`, released with Patel et al., "Splitwise: Efficient Generative
LLM Inference Using Phase Splitting", ISCA 2024). Azure `TIMESTAMP`s are date-time strings such as
`2023-11-16 18:15:46.6805900`; they become seconds since the first row.

ShareGPT-like lengths
---------------------
`SHAREGPT_LIKE` holds lognormal tables (TOML-ready) for a chat workload like the ShareGPT data set as
used by vLLM's evaluation. What each number rests on:

Source. Kwon et al., "Efficient Memory Management for Large Language Model Serving with
PagedAttention", SOSP 2023 (https://arxiv.org/abs/2309.06180). Figure 11(a) ("Input and output length
distributions of the (a) ShareGPT and (b) Alpaca datasets") gives in its legend a mean input length of
161.31 tokens and a mean output length of 337.99 tokens. Section 6.1 says ShareGPT has 8.4x longer
prompts and 5.8x longer outputs than Alpaca (whose means are 19.31 and 58.45). These figures were not
read from the PDF itself. They come from a public transcription of the paper's figures, and were
checked independently against the authors' artifact repository (https://github.com/sosp-ae-39/sosp-ae-astra,
file `datasets/sharegpt_opt_text_completion_length.pkl`). The artifact's `datasets/README.md` says the
file holds the first round of each ShareGPT conversation (March 2023), tokenized with the OPT
tokenizer, as lengths only: 84,226 (input, output) pairs. Keeping the 79,731 pairs with
input + output <= 2048 (OPT's context length; `max_seq_len = 2048` in the artifact's
`astra/benchmark/trace.py`) reproduces both means exactly, 161.31 and 337.99. So the paper's means
describe that filtered set.

Medians. The paper prints no median or percentile. These were computed for this module from the same
artifact file and filtered set: input median 35, p90 507, p99 1464; output median 271, p90 754, p99 1280 tokens.

Fitted lognormal parameters (prompt / output):
  - `max` = 2048 / 2048: the OPT context length above (sourced). The source caps the *sum*
    input + output at 2048; here each length is capped on its own, because the two are drawn
    independently (assumed).
  - `median`, `sigma`: chosen so that the draws have the published mean (161.31 / 337.99) and the
    computed median (35 / 271). They are derived, not published. `median` is the parameter of the
    underlying lognormal; truncation at `max` pulls the median of the draws below it. The
    results are `median` = 39.37 / 271.32 and `sigma` = 2.2752 / 0.6764. With them the draws have
    mean 161.32 / 337.99, median 35 / 271, p90 474 / 642 and p99 1633 / 1266 (the data: p90
    507 / 754, p99 1464 / 1280). `tests/test_workload.py` checks the means and medians.
  - A single lognormal cannot match the mean, the median and the spread at the same time. The output
    fit is narrower than the data (sigma 0.68 against a log-space standard deviation of 1.14, with
    many very short answers). The prompt fit is wider (2.28 against 1.52), close to the data at p90
    but with a heavier tail at p99. Treat these as a ShareGPT-*like* stand-in, not a replay. For
    the real joint distribution, replay the lengths as a `workload.trace`.
"""

from __future__ import annotations  # pandas is imported where a trace is read, not by every command

import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .errors import InputError
# The stated bounds live in units.py, one per kind; these names are kept here for the workload's readers.
from .units import MAX_REQUESTS, MAX_TOKENS  # any one length: far above any context window in use today

if TYPE_CHECKING:
    import pandas as pd

MAX_TRACE_REQUESTS = MAX_REQUESTS  # rows a trace may hold; keeps a mistaken file from exhausting memory

KINDS = ("fixed", "uniform", "lognormal", "empirical")
_DIST_KEYS = {  # the keys each table form takes, besides `dist`
    "uniform": ("low", "high"),
    "lognormal": ("median", "sigma", "max"),
    "empirical": ("values",),
}
_TABLE_FORMS = ('{dist = "uniform", low = L, high = H}, {dist = "lognormal", median = M, sigma = S, '
                'max = X} or {dist = "empirical", values = [...]}')

TRACE_COLUMNS = ("arrival_s", "prompt_tokens", "output_tokens")
AZURE_TRACE_COLUMNS = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")
TRACE_SUFFIXES = (".csv", ".jsonl")

SHAREGPT_LIKE = {
    "prompt_tokens": {"dist": "lognormal", "median": 39.37, "sigma": 2.2752, "max": 2048},
    "output_tokens": {"dist": "lognormal", "median": 271.32, "sigma": 0.6764, "max": 2048},
}


# ---------------------------------------------------------------------------------------------------
# Length distributions


@dataclass(frozen=True)
class LengthDist:
    """A distribution of per-request token counts. Build it with `parse_length`, which validates; the
    fields used depend on `kind`: fixed `value`; uniform `low`, `high`; lognormal `median`, `sigma`,
    `upper` (the TOML key `max`); empirical `values`."""

    kind: str
    value: int | None = None
    low: int | None = None
    high: int | None = None
    median: float | None = None
    sigma: float | None = None
    upper: int | None = None
    values: tuple[int, ...] = ()

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"LengthDist kind {self.kind!r}; expected one of {', '.join(KINDS)}")

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """`n` independent lengths as int64, each in [1, max_tokens]."""
        if self.kind == "fixed":
            return np.full(n, self.value, dtype=np.int64)
        if self.kind == "uniform":
            return rng.integers(self.low, self.high, size=n, endpoint=True, dtype=np.int64)
        if self.kind == "empirical":
            return rng.choice(np.asarray(self.values, dtype=np.int64), size=n)
        return _draw_lognormal(rng, n, math.log(self.median), self.sigma, self.upper)

    @property
    def max_tokens(self) -> int:
        """The largest length `draw` can produce."""
        return {"fixed": self.value, "uniform": self.high, "lognormal": self.upper,
                "empirical": max(self.values) if self.values else None}[self.kind]

    @cached_property
    def mean_tokens(self) -> float:
        """The exact mean of what `draw` produces (for the lognormal: of the rounded, clipped,
        truncated distribution, summed from its pmf)."""
        if self.kind == "fixed":
            return float(self.value)
        if self.kind == "uniform":
            return (self.low + self.high) / 2
        if self.kind == "empirical":
            return float(np.mean(self.values))
        return _lognormal_mean_tokens(math.log(self.median), self.sigma, self.upper)

    def as_toml(self) -> int | dict:
        """The scenario value this distribution was parsed from (an int, or a table)."""
        if self.kind == "fixed":
            return self.value
        if self.kind == "uniform":
            return {"dist": "uniform", "low": self.low, "high": self.high}
        if self.kind == "empirical":
            return {"dist": "empirical", "values": list(self.values)}
        return {"dist": "lognormal", "median": self.median, "sigma": self.sigma, "max": self.upper}


def parse_length(value, where: str) -> LengthDist:
    """The LengthDist that a scenario value (an int or a TOML table, see the module docstring) names.

    `where` labels the value in messages, e.g. "scenarios/x.toml: key 'workload.prompt_tokens'".
    Raises InputError, one line naming `where`, the value and what was expected."""
    if isinstance(value, dict):
        return _parse_table(value, where)
    return LengthDist("fixed", value=_token_count(value, where, f"an integer >= 1 or a table {_TABLE_FORMS}"))


def _parse_table(table: dict, where: str) -> LengthDist:
    dist = table.get("dist")
    if "dist" not in table:
        raise InputError(f"{where} = {table!r}; missing key 'dist'; expected {_TABLE_FORMS}")
    if not isinstance(dist, str) or dist not in _DIST_KEYS:
        raise InputError(f"{where}: dist = {dist!r} unknown; expected one of "
                         f"{', '.join(map(repr, _DIST_KEYS))}")
    keys = _DIST_KEYS[dist]
    unknown = [k for k in table if k != "dist" and k not in keys]
    if unknown:
        raise InputError(f"{where} = {table!r}; key {unknown[0]!r} unknown for dist = {dist!r}; "
                         f"expected {', '.join(keys)}")
    missing = [k for k in keys if k not in table]
    if missing:
        raise InputError(f"{where} = {table!r}; missing key {missing[0]!r} for dist = {dist!r}; "
                         f"expected {', '.join(keys)}")
    return {"uniform": _parse_uniform, "lognormal": _parse_lognormal, "empirical": _parse_empirical}[dist](
        table, where)


def _parse_uniform(table, where) -> LengthDist:
    low = _token_count(table["low"], f"{where}: low", "an integer >= 1")
    high = _token_count(table["high"], f"{where}: high", "an integer >= 1")
    if low > high:
        raise InputError(f"{where}: low = {low} > high = {high}; expected low <= high")
    return LengthDist("uniform", low=low, high=high)


def _parse_lognormal(table, where) -> LengthDist:
    median = _real(table["median"], f"{where}: median", "a number >= 1 (tokens)", lambda v: v >= 1)
    sigma = _real(table["sigma"], f"{where}: sigma", "a number > 0", lambda v: v > 0)
    upper = _token_count(table["max"], f"{where}: max", "an integer >= 1")
    if upper < median:
        raise InputError(f"{where}: max = {upper} < median = {median}; expected max >= median "
                         f"(draws above max are redrawn, and most of them would be)")
    return LengthDist("lognormal", median=float(median), sigma=float(sigma), upper=upper)


def _parse_empirical(table, where) -> LengthDist:
    values = table["values"]
    if not isinstance(values, (list, tuple)) or not values:
        raise InputError(f"{where}: values = {values!r}; expected a non-empty list of integers >= 1")
    return LengthDist("empirical", values=tuple(
        _token_count(v, f"{where}: values[{i}]", "an integer >= 1") for i, v in enumerate(values)))


def _token_count(value, where: str, expected: str) -> int:
    """`value` as a token count in [1, MAX_TOKENS]; bools and floats (even 5.0) are refused, since TOML
    keeps the two apart and a float length is more likely a mistake than a choice."""
    if isinstance(value, bool) or not isinstance(value, int):
        kind = "a float" if isinstance(value, float) else "a string" if isinstance(value, str) \
            else "a bool" if isinstance(value, bool) else type(value).__name__
        raise InputError(f"{where} = {value!r} is {kind}; expected {expected}")
    if value < 1:
        raise InputError(f"{where} = {value!r}; expected {expected}")
    if value > MAX_TOKENS:
        raise InputError(f"{where} = {value!r}; expected at most MAX_TOKENS = {MAX_TOKENS:,} tokens")
    return value


def _real(value, where: str, expected: str, ok) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{where} = {value!r}; expected {expected}")
    if not math.isfinite(value) or not ok(value):
        raise InputError(f"{where} = {value!r}; expected {expected}")
    if value > MAX_TOKENS:
        raise InputError(f"{where} = {value!r}; expected at most MAX_TOKENS = {MAX_TOKENS:,}")
    return float(value)


def _draw_lognormal(rng, n: int, mu: float, sigma: float, upper: int) -> np.ndarray:
    """Truncated by rejection: whatever rounds above `upper` is drawn again, so the shape below
    `upper` is the lognormal's own (clipping would pile the excess onto `upper`)."""
    out = np.empty(n, dtype=np.int64)
    filled = 0
    # Capping the exponent first keeps exp() finite; every capped value lies above `upper` anyway.
    log_cap = math.log(upper + 1.0) + 1.0
    while filled < n:
        y = np.rint(np.exp(np.minimum(rng.normal(mu, sigma, size=n - filled), log_cap)))
        kept = y[y <= upper]
        out[filled:filled + kept.size] = kept
        filled += kept.size
    np.maximum(out, 1, out=out)
    return out


def _lognormal_sf(x, mu: float, sigma: float):
    """P(Y >= x) for Y = exp(N(mu, sigma)); the survival form stays accurate far in the tail."""
    from scipy.special import ndtr

    return ndtr(-(np.log(x) - mu) / sigma)


def _lognormal_cdf_tokens(k, mu: float, sigma: float, upper: int):
    """P(X <= k) for X as `_draw_lognormal` draws it (k an integer in [1, upper]): round(Y) <= k
    means Y < k + 1/2, conditioned on the same event for `upper`."""
    s_top = _lognormal_sf(upper + 0.5, mu, sigma)
    return (1.0 - _lognormal_sf(np.asarray(k, dtype=float) + 0.5, mu, sigma)) / (1.0 - s_top)


def _lognormal_mean_tokens(mu: float, sigma: float, upper: int, chunk: int = 1 << 20) -> float:
    """E[X] = sum over k = 0..upper-1 of P(X > k), where
    P(X > k) = (S(k + 1/2) - S(upper + 1/2)) / (1 - S(upper + 1/2)) for k >= 1 and S the lognormal
    survival function. It is summed in chunks, and the sum stops once the terms left cannot change it
    in double precision (they only decrease)."""
    s_top = _lognormal_sf(upper + 0.5, mu, sigma)
    accept = 1.0 - s_top
    total = 1.0  # P(X > 0): every draw is at least 1
    for start in range(1, upper, chunk):
        k = np.arange(start, min(start + chunk, upper), dtype=float)
        terms = (_lognormal_sf(k + 0.5, mu, sigma) - s_top) / accept
        total += float(terms.sum())
        if terms[-1] * (upper - k[-1]) < 1e-17 * total:
            break
    return total


# ---------------------------------------------------------------------------------------------------
# Traces


@dataclass(frozen=True, eq=False)
class Trace:
    """Requests in arrival order. `arrival_s` is float64 and non-decreasing. Native traces keep their
    times as given (the first may be > 0); Azure traces count from their first row. The token columns
    are int64 >= 1. The arrays are read-only."""

    arrival_s: np.ndarray
    prompt_tokens: np.ndarray
    output_tokens: np.ndarray
    source: str

    def __post_init__(self):
        # Own read-only copies: a caller's arrays stay writable, and nothing can edit a loaded trace.
        for name, dtype in (("arrival_s", np.float64), ("prompt_tokens", np.int64), ("output_tokens", np.int64)):
            array = np.array(getattr(self, name), dtype=dtype)
            array.setflags(write=False)
            object.__setattr__(self, name, array)
        n = len(self.arrival_s)
        if self.arrival_s.ndim != 1 or self.prompt_tokens.shape != (n,) or self.output_tokens.shape != (n,):
            raise ValueError("Trace columns must be 1-d arrays of one length")

    def __len__(self) -> int:
        return len(self.arrival_s)


def resolve_trace_path(value, scenario_path, where: str) -> Path:
    """The file that `workload.trace = value` names: a relative path counts from the scenario file's
    folder (`scenario_path` None: from the working directory)."""
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{where} = {value!r}; expected a path to a .csv or .jsonl trace")
    path = Path(value).expanduser()
    if not path.is_absolute() and scenario_path is not None:
        path = Path(scenario_path).parent / path
    return path


def load_trace(path: str | Path, where: str) -> Trace:
    """Read and check a CSV or JSONL trace. Raises InputError, one line naming `where`, the file and
    what is wrong."""
    path = Path(path)
    label = f"{where}: trace {str(path)!r}"
    frame = _read_frame(path, label)
    if len(frame.columns) == 0:
        raise InputError(f"{label}: empty trace; expected a header row and at least one request")
    if len(frame) > MAX_TRACE_REQUESTS:
        raise InputError(f"{label}: more than MAX_TRACE_REQUESTS = {MAX_TRACE_REQUESTS:,} requests")
    columns = _pick_columns(frame, label)
    if len(frame) == 0:
        raise InputError(f"{label}: empty trace; expected at least one request")
    if columns == AZURE_TRACE_COLUMNS:
        arrival_s = _azure_arrivals(frame["TIMESTAMP"], label)
    else:
        arrival_s = _native_arrivals(frame["arrival_s"], label)
    return Trace(arrival_s=arrival_s,
                 prompt_tokens=_token_column(frame[columns[1]], f"{label}: column {columns[1]!r}"),
                 output_tokens=_token_column(frame[columns[2]], f"{label}: column {columns[2]!r}"),
                 source=str(path))


def _read_frame(path: Path, label: str) -> pd.DataFrame:
    import pandas as pd

    suffix = path.suffix.lower()
    if suffix not in TRACE_SUFFIXES:
        raise InputError(f"{label}: suffix {path.suffix!r} not supported; expected one of "
                         f"{', '.join(TRACE_SUFFIXES)}")
    if not path.exists():
        raise InputError(f"{label}: no such file")
    if not path.is_file():
        raise InputError(f"{label}: not a regular file")
    # One more row than allowed is enough to tell that a trace is too long, without reading all of it.
    nrows = MAX_TRACE_REQUESTS + 1
    try:
        if suffix == ".csv":
            # Arrival times must come back exactly as written. pandas 3 parses floats exactly by
            # default (and deprecates the option); before it, only "round_trip" does.
            extra = {} if _pandas_major(pd) >= 3 else {"float_precision": "round_trip"}
            return pd.read_csv(path, nrows=nrows, **extra)
        # dtype=False keeps values as JSON has them. Before pandas 3 an explicit convert_dates=False
        # is also needed, or a column named TIMESTAMP is turned into dates by pandas' own guess.
        extra = {} if _pandas_major(pd) >= 3 else {"convert_dates": False}
        return pd.read_json(path, lines=True, nrows=nrows, dtype=False, precise_float=True, **extra)
    except pd.errors.EmptyDataError:
        raise InputError(f"{label}: empty trace; expected a header row and at least one request") from None
    except OSError as exc:
        raise InputError(f"{label}: cannot be read ({exc.strerror or exc})") from None
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        kind = "CSV" if suffix == ".csv" else "JSON lines"
        raise InputError(f"{label}: not parseable as {kind} ({_one_line(exc)})") from None


def _pandas_major(pd) -> int:
    return int(pd.__version__.split(".")[0])


def _pick_columns(frame: pd.DataFrame, label: str) -> tuple:
    present = set(map(str, frame.columns))
    for columns in (TRACE_COLUMNS, AZURE_TRACE_COLUMNS):
        if present.issuperset(columns):
            return columns
    # Report against whichever set the file looks closer to, so the message names the real omission.
    closer = max((TRACE_COLUMNS, AZURE_TRACE_COLUMNS), key=lambda cols: len(present.intersection(cols)))
    missing = [c for c in closer if c not in present]
    raise InputError(f"{label}: missing column {', '.join(map(repr, missing))}; expected columns "
                     f"({', '.join(TRACE_COLUMNS)}) or the Azure LLM inference trace's "
                     f"({', '.join(AZURE_TRACE_COLUMNS)}); found ({', '.join(map(str, frame.columns))})")


def _row(index: int) -> str:
    return f"row {index + 1} (counting requests from 1, header excluded)"


def _show(value) -> str:
    """repr of a cell without numpy's type wrapper (np.float64(5.5) reads as 5.5)."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _numeric(column: pd.Series, label: str) -> np.ndarray:
    """The column as float64. It refuses any cell that is not a number, and NaN (an empty cell)."""
    import pandas as pd

    if pd.api.types.is_bool_dtype(column):
        raise InputError(f"{label}: {_show(column.iloc[0])} in {_row(0)} is not a number")
    values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    bad = np.flatnonzero(np.isnan(values))
    if bad.size:
        i = int(bad[0])
        cell = column.iloc[i]
        what = "is empty (NaN)" if pd.isna(cell) else "is not a number"
        raise InputError(f"{label}: {_show(cell)} in {_row(i)} {what}")
    if column.dtype == object:
        # A JSON true/false in a mixed column coerces to 1/0; refuse it like a bool column.
        flags = np.flatnonzero([isinstance(v, (bool, np.bool_)) for v in column])
        if flags.size:
            i = int(flags[0])
            raise InputError(f"{label}: {_show(column.iloc[i])} in {_row(i)} is not a number")
    return values


def _token_column(column: pd.Series, label: str) -> np.ndarray:
    """Token counts: integers (a float column holding exact integers, as pandas reads 5.0, counts)
    in [1, MAX_TOKENS]."""
    values = _numeric(column, label)
    checks = (
        (~np.isfinite(values), "is not finite"),
        (values != np.floor(values), "is not an integer"),
        (values < 1, "is below 1; expected a token count >= 1"),
        (values > MAX_TOKENS, f"is above MAX_TOKENS = {MAX_TOKENS:,}"),
    )
    for bad, what in checks:
        rows = np.flatnonzero(bad)
        if rows.size:
            i = int(rows[0])
            raise InputError(f"{label}: {_show(column.iloc[i])} in {_row(i)} {what}")
    return values.astype(np.int64)


def _native_arrivals(column: pd.Series, label: str) -> np.ndarray:
    label = f"{label}: column 'arrival_s'"
    values = _numeric(column, label)
    rows = np.flatnonzero(~np.isfinite(values))
    if rows.size:
        raise InputError(f"{label}: {_show(values[rows[0]])} in {_row(int(rows[0]))} is not finite")
    rows = np.flatnonzero(values < 0)
    if rows.size:
        i = int(rows[0])
        raise InputError(f"{label}: {_show(values[i])} in {_row(i)} is negative; expected seconds >= 0")
    _check_order(values, label)
    return values


def _azure_arrivals(column: pd.Series, label: str) -> np.ndarray:
    import pandas as pd

    label = f"{label}: column 'TIMESTAMP'"
    for i, cell in enumerate(column):
        if not isinstance(cell, str):
            raise InputError(f"{label}: {_show(cell)} in {_row(i)} is not a date-time string; expected e.g. "
                             f"'2023-11-16 18:15:46.6805900'")
    try:
        stamps = pd.to_datetime(column, format="ISO8601")
    except (ValueError, TypeError):
        # Find the cell at fault so the message can point to it; parse one by one only on failure.
        for i, cell in enumerate(column):
            try:
                pd.to_datetime(cell, format="ISO8601")
            except (ValueError, TypeError):
                raise InputError(f"{label}: {cell!r} in {_row(i)} is not a date-time; expected e.g. "
                                 f"'2023-11-16 18:15:46.6805900'") from None
        raise InputError(f"{label}: date-times could not be parsed together (mixed time zones?)") from None
    # Subtract first, then convert: float seconds since the epoch would lose the sub-microsecond digits.
    values = (stamps - stamps.iloc[0]).dt.total_seconds().to_numpy(dtype=float)
    _check_order(values, label)
    return values


def _check_order(values: np.ndarray, label: str):
    """A trace must come in arrival order. Sorting it here would hide a broken file."""
    rows = np.flatnonzero(np.diff(values) < 0)
    if rows.size:
        i = int(rows[0]) + 1
        raise InputError(f"{label}: arrival {_show(values[i])} in {_row(i)} is earlier than {_show(values[i - 1])} "
                         f"in the row before; expected requests in arrival order (non-decreasing)")


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())
