"""`PassTimer`: the one seam through which the simulator learns how long a pass takes.

The engine asks for whole steps: a speculative iteration at batch B and lookahead gamma costs
    gamma * (draft(B, 1 token, L) + host(B)) + target(B, gamma + 1 tokens, L) + host(B)
and a prefill of n new requests costs target(n, prompt, 0) + draft(n, prompt, 0) (+ host per pass).
L is the batch's mean context (tokens in the KV cache); KV reads are linear in context, so the mean is
exact for a batch whose members differ in length.

Context grows every step and one cost evaluation takes tens of microseconds, so the timer tabulates each
(batch, gamma) once, lazily, with ONE vectorised cost call over a grid of contexts; the hot path is an
array index. The grid step (`quantum`) keeps tables at most `table_points` long: the error is at most
half a quantum of context, i.e. < 0.03% of the longest context.
"""

import math
from functools import lru_cache

import numpy as np


def _zero_host(batch):
    return 0.0


class PassTimer:
    """Pass durations (seconds) from cost callables `f(batch, tokens, context) -> seconds` (numpy-broadcast).

    target_s / draft_s: the pass-latency model of the target and the draft (`draft_s` may be None when only
    plain decoding is simulated); host_s(batch): host-side cost added to every engine pass;
    max_context: the longest context a run can reach (prompt + output).
    """

    def __init__(self, target_s, draft_s=None, host_s=None, *, max_context: int, table_points: int = 2048):
        self._target = target_s
        self._draft = draft_s
        self._host = host_s or _zero_host
        self.quantum = max(1, math.ceil(max_context / (table_points - 1)))
        self.contexts = np.arange(0, max_context + 2 * self.quantum, self.quantum, dtype=float)
        self._tables = {}
        self.prefill_s = lru_cache(maxsize=4096)(self._prefill_s)

    @classmethod
    def from_cost_model(cls, target, draft, gpu, *, tp=1, draft_tp=1, runtime=None,
                        weight_dtype="bf16", kv_dtype="bf16", max_context: int):
        """A timer over the roofline model of `sdsl_sim.costs` (target on tp GPUs, draft on draft_tp).

        runtime: a `hardware.Runtime` or its name (None: the GPU's default); it sets kernel-launch behaviour
        inside each pass and the host cost `step_overhead_s(runtime, batch)` added to every pass.
        """
        from ..costs import pass_latency_s
        from ..hardware import load_runtime, step_overhead_s

        if runtime is None or isinstance(runtime, str):
            runtime = load_runtime(runtime or gpu.default_runtime)
        opts = dict(weight_dtype=weight_dtype, kv_dtype=kv_dtype, runtime=runtime)

        def target_s(batch, tokens, context):
            return pass_latency_s(target, gpu, batch=batch, tokens=tokens, context=context, tp=tp, **opts)

        def draft_s(batch, tokens, context):
            return pass_latency_s(draft, gpu, batch=batch, tokens=tokens, context=context,
                                  tp=draft_tp, **opts)

        def host_s(batch):
            return float(step_overhead_s(runtime, batch))

        return cls(target_s, draft_s if draft is not None else None, host_s, max_context=max_context)

    def index(self, context):
        """Table index of a context (scalar or array), rounded to the nearest grid point."""
        return (np.asarray(context) / self.quantum + 0.5).astype(np.int64)

    def step_table(self, batch: int, gamma: int):
        """(step_s, draft_s) over `self.contexts` for one speculative iteration; cached per (batch, gamma)."""
        key = (batch, gamma)
        table = self._tables.get(key)
        if table is None:
            host = self._host(batch)
            verify = np.broadcast_to(self._target(batch, gamma + 1, self.contexts), self.contexts.shape) + host
            if gamma:
                one = np.broadcast_to(self._draft(batch, 1, self.contexts), self.contexts.shape)
                draft = gamma * (one + host)
            else:
                draft = np.zeros_like(self.contexts)
            table = self._tables[key] = (verify + draft, draft)
        return table

    def step_s(self, batch: int, gamma: int, context: float) -> float:
        return float(self.step_table(batch, gamma)[0][self.index(context)])

    def step_costs(self, batch: int, context: float, max_gamma: int) -> np.ndarray:
        """Step seconds for gamma = 0..max_gamma at one (batch, context)."""
        gammas = np.arange(max_gamma + 1)
        host = self._host(batch)
        verify = np.broadcast_to(self._target(batch, gammas + 1, float(context)), gammas.shape) + host
        if self._draft is None:
            return np.where(gammas == 0, verify, np.inf)
        one = float(np.asarray(self._draft(batch, 1, float(context)))) + host
        return verify + gammas * one

    def tpot_by_gamma(self, batch: int, context: float, expected_tokens) -> np.ndarray:
        """Expected time per output token (s) for gamma = 0..len(expected_tokens) - 1: each gamma's step
        time over its expected tokens per iteration. The one place a lookahead is chosen from costs."""
        expected_tokens = np.asarray(expected_tokens, dtype=float)
        return self.step_costs(batch, context, expected_tokens.size - 1) / expected_tokens

    def cost_ratio(self, batch: int = 1, context: float = 0.0) -> float:
        """c = draft pass / target single-token pass, host cost included (Leviathan's c)."""
        host = self._host(batch)
        draft = float(np.asarray(self._draft(batch, 1, float(context)))) + host
        return draft / (float(np.asarray(self._target(batch, 1, float(context)))) + host)

    def _prefill_s(self, batch: int, prompt_tokens: int, with_draft: bool) -> float:
        host = self._host(batch)
        total = float(np.asarray(self._target(batch, prompt_tokens, 0.0))) + host
        if with_draft:
            total += float(np.asarray(self._draft(batch, prompt_tokens, 0.0))) + host
        return total
