"""The cost of one engine step: the only place the speculative step formula is written.

A step serves `decode` running sequences at mean context L with lookahead gamma, and optionally prefill
chunks of waiting requests (a `costs.PassWork` of groups (1 sequence, chunk tokens, tokens already cached)):

    draft  = gamma draft passes over the decoders (1 new token each), each + host;
             the first of them also carries the chunks (the draft keeps its own KV cache of every prompt);
             with no draft pass to ride on (gamma = 0 or no decoders), one draft pass over the chunks alone
    target = one pass over the decoders (gamma + 1 tokens each: the last accepted token and the gamma
             drafts) together with the chunks (weights read once), + host
    step   = draft + target

Plain decoding (no draft model, or gamma = 0 with no chunks) runs the target pass alone. A prefill step
of an engine without chunked prefill is the same formula with no decoders. L is the decoders' mean
context: every cost term is linear in the summed context, so the mean is exact for a batch whose members
differ in length. Host cost per pass is `hardware.step_overhead_s(runtime, sequences in the pass)`; a step
whose decoders draft (gamma > 0) adds the runtime's per-iteration host work,
`hardware.speculation_overhead_s(runtime, decoders, gamma)`, to its draft time.

Everything that needs a step's cost calls `StepPricer.cost`: the simulator (`sim.timing.StepTimer`
tabulates it), the gamma policies and the expected-value predictions (`tpot_by_gamma`).
"""

from dataclasses import dataclass

import numpy as np

from .costs import Deployment, PassWork, pass_time_s
from .hardware import speculation_overhead_s, step_overhead_s


@dataclass(frozen=True)
class StepCost:
    """Seconds of one step (numpy-broadcast over the inputs of `StepPricer.cost`), host cost included."""

    draft_s: object  # all draft passes
    target_s: object  # the target pass: verification of the decoders and the prefill chunks

    @property
    def total_s(self):
        return self.draft_s + self.target_s


class StepPricer:
    """Prices steps from pass costs: `target_pass_s(work)` and `draft_pass_s(work)` map a `PassWork` to
    seconds (numpy-broadcast; `draft_pass_s` None when only plain decoding runs), `host_s(sequences)`
    is the runtime's host cost of one pass and `iteration_s(decoders, gamma)` its host cost of one
    speculative iteration beyond the passes. `StepPricer.of` builds it from deployments; tests pass
    stand-in callables."""

    def __init__(self, target_pass_s, draft_pass_s=None, host_s=None, iteration_s=None):
        self._target = target_pass_s
        self._draft = draft_pass_s
        self._host = host_s or (lambda sequences: 0.0)
        self._iteration = iteration_s or (lambda decode, gamma: 0.0)

    @classmethod
    def of(cls, target: Deployment, draft: Deployment | None = None) -> "StepPricer":
        def host_s(sequences):
            return step_overhead_s(target.runtime, sequences)

        def iteration_s(decode, gamma):
            return speculation_overhead_s(target.runtime, decode, gamma)

        draft_pass_s = None if draft is None else (lambda work: pass_time_s(draft, work))
        return cls(lambda work: pass_time_s(target, work), draft_pass_s, host_s, iteration_s)

    @property
    def has_draft(self) -> bool:
        return self._draft is not None

    def host_s(self, sequences):
        return self._host(sequences)

    def cost(self, decode: int, gamma, context, chunks: PassWork | None = None) -> StepCost:
        """One step of `decode` sequences at mean `context` with lookahead `gamma` (broadcast over gamma
        and context), plus the prefill `chunks` if any. gamma > 0 without a draft model costs inf."""
        gamma = np.asarray(gamma) if isinstance(gamma, (list, tuple)) else gamma
        chunk_seqs = 0 if chunks is None else chunks.sequences
        if decode:
            verify = PassWork.group(decode, gamma + 1, context)
            work = verify if chunks is None else verify + chunks
        else:
            work = chunks
        target_s = self._target(work) + self._host(decode + chunk_seqs)
        if self._draft is None:
            return StepCost(np.where(np.asarray(gamma) > 0, np.inf, 0.0) if np.ndim(gamma) else
                            (np.inf if gamma else 0.0), target_s)
        draft_s = 0.0
        if decode:
            one = PassWork.group(decode, 1, context)
            draft_s = gamma * (self._draft(one) + self._host(decode)) + self._iteration(decode, gamma)
            if chunks is not None:
                # The first draft pass carries the chunks; with gamma = 0 they get a pass of their own.
                ride = alone = None
                if np.any(np.asarray(gamma) > 0):
                    ride = self._draft(one + chunks) + self._host(decode + chunk_seqs) \
                        - self._draft(one) - self._host(decode)
                if np.any(np.asarray(gamma) == 0):
                    alone = self._draft(chunks) + self._host(chunk_seqs)
                draft_s = draft_s + (np.where(np.asarray(gamma) > 0, ride, alone) if np.ndim(gamma)
                                     else (ride if gamma else alone))
        elif chunks is not None:
            draft_s = self._draft(chunks) + self._host(chunk_seqs)
        return StepCost(draft_s, target_s)

    def tpot_by_gamma(self, batch: int, context: float, expected_tokens) -> np.ndarray:
        """Expected time per output token (s) for gamma = 0..len(expected_tokens) - 1 at one batch and
        context: each gamma's step time over its expected tokens per iteration. The one place a
        lookahead is chosen from costs (policies, predictions, the hardware-aware N*)."""
        expected_tokens = np.asarray(expected_tokens, dtype=float)
        gammas = np.arange(expected_tokens.size)
        return np.asarray(self.cost(batch, gammas, float(context)).total_s, dtype=float) / expected_tokens

    def cost_ratio(self, batch: int = 1, context: float = 0.0) -> float:
        """c = draft pass / target single-token pass, host cost included (Leviathan's c)."""
        one = PassWork.group(batch, 1, float(context))
        host = self._host(batch)
        return float((self._draft(one) + host) / (self._target(one) + host))
