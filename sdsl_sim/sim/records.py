"""Frozen record rows of one simulation run, and the columnar logs the engine fills.

`RequestRecord` (one row per request) and `StepRecord` (one row per engine step: a prefill pass, or one
speculative iteration of gamma draft passes plus one verification pass) name the columns and their units.
The engine never builds per-token or per-step Python objects on its hot path: it appends whole blocks of
steps as numpy arrays to `StepLog` / `EmissionLog`, which become DataFrames once, at the end of the run.
An emission is one delivery of tokens to one request at one instant (a step emits accepted + 1 tokens per
sequence at the step's end), which is all inter-token latencies need.
"""

from dataclasses import dataclass, fields

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class RequestRecord:
    """One request. Times are instants in simulated seconds since the run started."""

    request_id: int
    arrived_at_s: float
    admitted_at_s: float  # its prefill began
    first_token_at_s: float  # its prefill ended (the prefill emits the first token)
    finished_at_s: float  # its last token was emitted
    prompt_tokens: int
    output_tokens: int
    alpha: float  # the request's own acceptance probability (NaN for a position profile)


@dataclass(frozen=True)
class StepRecord:
    """One engine step. `kind` is "prefill" or "decode"; durations in seconds, host overhead included."""

    kind: str
    started_at_s: float
    ended_at_s: float
    batch: int  # sequences in the step's passes
    decoding: int  # sequences past their first token that waited for this step (their TPOT clock runs)
    gamma: int  # draft tokens proposed per sequence (0: plain autoregressive step)
    draft_s: float  # gamma draft passes
    verify_s: float  # the target pass (batch x (gamma + 1) tokens)
    prefill_s: float  # target (and draft) prefill of newly admitted requests
    tokens: int  # tokens emitted, summed over the batch
    accepted: int  # draft tokens accepted, summed over the batch
    judged: int  # draft tokens the target ruled on: accepted + one per rejection


REQUEST_COLUMNS = tuple(f.name for f in fields(RequestRecord))
STEP_COLUMNS = tuple(f.name for f in fields(StepRecord))
EMISSION_COLUMNS = ("request_id", "at_s", "tokens")


class _BlockLog:
    """Columns collected as a list of equal-length numpy blocks, concatenated once by `to_frame`."""

    columns: tuple = ()

    def __init__(self):
        self._blocks = {name: [] for name in self.columns}

    def append(self, **block) -> None:
        n = len(block[self.columns[0]])
        for name in self.columns:
            value = block[name]
            self._blocks[name].append(np.full(n, value) if np.ndim(value) == 0 else value)

    def to_frame(self) -> pd.DataFrame:
        data = {
            name: (np.concatenate(parts) if parts else np.empty(0))
            for name, parts in self._blocks.items()
        }
        return pd.DataFrame(data, columns=list(self.columns))


STEP_KINDS = ("decode", "prefill")


class StepLog(_BlockLog):
    """Steps; `kind` is appended as a code into STEP_KINDS and becomes a categorical column."""

    columns = STEP_COLUMNS

    def to_frame(self) -> pd.DataFrame:
        df = super().to_frame()
        df["kind"] = pd.Categorical.from_codes(df["kind"].to_numpy(np.int8), STEP_KINDS)
        return df


class EmissionLog(_BlockLog):
    columns = EMISSION_COLUMNS


@dataclass(frozen=True)
class SimResult:
    """Everything one run produced: tables (pandas) plus the accepted-length histogram.

    `requests` has REQUEST_COLUMNS, `steps` STEP_COLUMNS, `emissions` EMISSION_COLUMNS.
    `accepted_hist[k]` counts sequence-iterations in which exactly k draft tokens were accepted.
    """

    requests: pd.DataFrame
    steps: pd.DataFrame
    emissions: pd.DataFrame
    accepted_hist: np.ndarray
    sim_wall_s: float
