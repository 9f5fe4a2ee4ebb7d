"""`StepTimer`: step durations for the engine, from `step.StepPricer`, tabulated where it pays.

Decode steps dominate a run and their context grows every step, while one cost evaluation takes tens of
microseconds; so the timer tabulates each (batch, gamma) once, lazily, with ONE vectorised pricer call
over a grid of contexts, and the engine's hot path is an array index. The grid step (`quantum`) keeps
tables at most `table_points` long: the error is at most half a quantum of context, i.e. < 0.03% of the
longest context. Steps that carry prefill chunks are rarer and varied; they are priced directly.
"""

import math

import numpy as np

from ..step import StepCost, StepPricer


class StepTimer:
    """Step durations (seconds) of one deployment pair; `max_context` is the longest context a run can
    reach (the longest request plus the largest lookahead)."""

    def __init__(self, pricer: StepPricer, *, max_context: int, table_points: int = 2048):
        self.pricer = pricer
        self.quantum = max(1, math.ceil(max_context / (table_points - 1)))
        self.contexts = np.arange(0, max_context + 2 * self.quantum, self.quantum, dtype=float)
        self._tables = {}

    @property
    def has_draft(self) -> bool:
        return self.pricer.has_draft

    def slots(self, gamma: int) -> int:
        """Tokens (and KV slots) per sequence of a verification at lookahead gamma (`speculation.Shape`)."""
        return self.pricer.shape.slots(gamma)

    def index(self, context):
        """Table index of a context (scalar or array), rounded to the nearest grid point."""
        return (np.asarray(context) / self.quantum + 0.5).astype(np.int64)

    def decode_table(self, batch: int, gamma: int):
        """(step_s, draft_s) over `self.contexts` for a decode step; cached per (batch, gamma)."""
        key = (batch, gamma)
        table = self._tables.get(key)
        if table is None:
            cost = self.pricer.cost(batch, gamma, self.contexts)
            shape = self.contexts.shape
            draft = np.broadcast_to(np.asarray(cost.draft_s, dtype=float), shape)
            total = np.broadcast_to(np.asarray(cost.target_s, dtype=float), shape) + draft
            table = self._tables[key] = (total, draft)
        return table

    def decode_s(self, batch: int, gamma: int, context: float) -> float:
        return float(self.decode_table(batch, gamma)[0][self.index(context)])

    def step(self, decode: int, gamma: int, context: float, chunks=None) -> StepCost:
        """One step priced directly (scalar): decoders plus prefill chunks (see `step.StepPricer.cost`)."""
        return self.pricer.cost(decode, gamma, float(context), chunks)

    def tpot_by_gamma(self, batch: int, context: float, expected_tokens) -> np.ndarray:
        return self.pricer.tpot_by_gamma(batch, context, expected_tokens)

    def cost_ratio(self, batch: int = 1, context: float = 0.0) -> float:
        return self.pricer.cost_ratio(batch, context)
