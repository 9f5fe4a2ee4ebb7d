"""Frozen record rows of one simulation run, and the columnar logs the engine fills.

`RequestRecord` (one row per request) and `StepRecord` (one row per engine step: a decode step, i.e. one
speculative iteration of gamma draft passes plus one verification pass; a prefill step; or a mixed step
of both) name the columns and their units. The engine never builds per-token or per-step Python objects
on its hot path: it writes whole blocks of steps into preallocated numpy columns (`Columns`), which become
DataFrames once, at the end of the run.
Inter-token latencies are kept as weighted gaps (`ItlLog`: a gap and how many deliveries had it), since
every decoder of a step receives its tokens at the step's end; the per-delivery emission table
(`EMISSION_COLUMNS`) is kept only when asked for, as it grows with every token.
"""

from dataclasses import dataclass, fields

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class RequestRecord:
    """One request. Times are instants in simulated seconds since the run started."""

    request_id: int
    arrived_at_s: float
    admitted_at_s: float  # its first prefill chunk was scheduled (queueing delay = admitted - arrived)
    first_token_at_s: float  # its prefill ended (the last prefill chunk emits the first token)
    finished_at_s: float  # its last token was emitted
    prompt_tokens: int
    output_tokens: int
    preemptions: int  # times its KV cache was freed and its tokens recomputed on readmission
    alpha: float  # the request's own acceptance probability (NaN for a position profile)


@dataclass(frozen=True)
class StepRecord:
    """One engine step. `kind` is "decode", "prefill" or "mixed"; durations in seconds, host cost included."""

    kind: str
    started_at_s: float
    ended_at_s: float
    decoders: int  # sequences verified in the step (each emits accepted + 1 tokens)
    prefills: int  # prefill chunks in the step (one per request)
    decoding: int  # sequences past their first token and not finished (their TPOT clock runs): decoders,
    #                those stalled by a prefill step and those preempted
    gamma: int  # draft tokens proposed per decoder (0: plain autoregressive step)
    draft_s: float  # the draft passes
    verify_s: float  # the target pass (decoders x (gamma + 1) tokens, plus the chunks)
    prefill_s: float  # the whole duration of a prefill step (no decoders); 0 otherwise
    tokens: int  # tokens emitted to decoders
    prefill_tokens: int  # prompt (or recomputed) tokens processed in chunks
    first_tokens: int  # requests whose prefill completed, emitting their first token
    resumed: int  # preempted requests whose recomputation completed, emitting one more token
    accepted: int  # draft tokens accepted, summed over the decoders
    judged: int  # draft tokens the target ruled on: accepted + one per rejection
    drafts: int  # decoders that proposed (all of them, but for n-gram lookup without a match; vLLM's num_drafts)
    drafted: int  # draft tokens proposed, summed over the decoders: gamma each for a chain, the tree's nodes
    #               of depth <= gamma for a tree (vLLM's num_draft_tokens)
    kv_tokens: int  # KV cache slots held during the step (paged: blocks x block size; reserve: reserved)


REQUEST_COLUMNS = tuple(f.name for f in fields(RequestRecord))
STEP_COLUMNS = tuple(f.name for f in fields(StepRecord))
EMISSION_COLUMNS = ("request_id", "at_s", "tokens")
STEP_KINDS = ("decode", "prefill", "mixed")


class Columns:
    """Named numpy columns grown by doubling; `append(k, **values)` writes k rows (scalars broadcast)."""

    def __init__(self, dtypes: dict, capacity: int = 1024):
        self._data = {name: np.empty(capacity, dtype) for name, dtype in dtypes.items()}
        self.n = 0

    def append(self, k: int, **values) -> None:
        n = self.n
        if n + k > len(next(iter(self._data.values()))):
            size = max(2 * (n + k), 1024)
            for name, column in self._data.items():
                grown = np.empty(size, column.dtype)
                grown[:n] = column[:n]
                self._data[name] = grown
        for name, value in values.items():
            self._data[name][n:n + k] = value
        self.n = n + k

    def column(self, name: str) -> np.ndarray:
        return self._data[name][: self.n]

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame({name: column[: self.n] for name, column in self._data.items()})


_STEP_DTYPES = {name: (np.float64 if name.endswith("_s") else np.int64) for name in STEP_COLUMNS}
_STEP_DTYPES["kind"] = np.int8


class StepLog(Columns):
    """Steps; `kind` is written as a code into STEP_KINDS and becomes a categorical column."""

    def __init__(self):
        super().__init__(_STEP_DTYPES)

    def to_frame(self) -> pd.DataFrame:
        df = super().to_frame()
        df["kind"] = pd.Categorical.from_codes(df["kind"].to_numpy(np.int8), STEP_KINDS)
        return df


class ItlLog(Columns):
    """Inter-token gaps (s) with the number of deliveries that had each gap."""

    def __init__(self):
        super().__init__({"gap_s": np.float64, "count": np.int64}, capacity=4096)


class EmissionLog(Columns):
    def __init__(self):
        super().__init__({"request_id": np.int64, "at_s": np.float64, "tokens": np.int64}, capacity=4096)


@dataclass(frozen=True)
class SimResult:
    """Everything one run produced: tables (pandas) plus the accepted-length histogram.

    `requests` has REQUEST_COLUMNS, `steps` STEP_COLUMNS, `itl` (gap_s, count), and `emissions`
    EMISSION_COLUMNS when the run was asked to keep them (else None).
    `accepted_hist[k]` counts sequence-iterations in which exactly k draft tokens were accepted (for a tree,
    the accepted path reached depth k; plain and unproposed iterations count at 0).
    `kv_token_budget`: the KV slots the run could hold (inf without a memory limit).
    """

    requests: pd.DataFrame
    steps: pd.DataFrame
    itl: pd.DataFrame
    emissions: pd.DataFrame | None
    accepted_hist: np.ndarray
    kv_token_budget: float
    sim_wall_s: float
