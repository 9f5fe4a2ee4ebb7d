"""The cost of one engine step: the only place the speculative step formula is written.

A step serves `decode` running sequences at mean context L with lookahead gamma, and optionally prefill
chunks of waiting requests (a `costs.PassWork` of groups (1 sequence, chunk tokens, tokens already cached)):

    draft  = the drafter's work at lookahead gamma (`speculation.Shape`): a sequential drafter (draft
             model, EAGLE, MTP) runs one pass per tree level over the decoders (1 token each for a chain,
             the nodes of the level above for a tree), each + host; Medusa's heads one pass; n-gram
             lookup a host scan of the decoders' contexts. The first draft pass of a sequential drafter
             also carries the chunks (it keeps its own KV cache of every prompt); with no draft pass to
             ride on (gamma = 0 or no decoders), one draft pass over the chunks alone
    target = one pass over the decoders (the last accepted token and the drafted nodes each: gamma + 1
             for a chain) together with the chunks (weights read once), + host
    step   = draft + target

Plain decoding (nothing drafting, or gamma = 0 with no chunks) runs the target pass alone. A prefill step
of an engine without chunked prefill is the same formula with no decoders. L is the decoders' mean
context: every cost term is linear in the summed context, so the mean is exact for a batch whose members
differ in length. Host cost per pass is `hardware.step_overhead_s(runtime, sequences in the pass)`; a step
whose decoders draft (gamma > 0) adds the runtime's per-iteration host work,
`hardware.speculation_overhead_s(runtime, decoders, gamma, draft passes)`, to its draft time.

Everything that needs a step's cost calls `StepPricer.cost`: the simulator (`sim.timing.StepTimer`
tabulates it), the gamma policies and the expected-value predictions (`tpot_by_gamma`).
"""

from dataclasses import dataclass

import numpy as np

from .costs import Deployment, PassWork, pass_time_s
from .hardware import speculation_overhead_s, step_overhead_s
from .speculation import SEQUENTIAL, Shape


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
    seconds (numpy-broadcast; `draft_pass_s` None when only plain decoding runs, or for n-gram drafting),
    `host_s(sequences)` is the runtime's host cost of one pass, `iteration_s(decoders, gamma, draft_passes)` its
    host cost of one speculative iteration beyond the passes and `lookup_s(decoders, context)` the host
    cost of an n-gram drafter's scan. `shape` (a `speculation.Shape`) sets the tokens per sequence of each
    pass. `StepPricer.of` builds it from deployments; tests pass stand-in callables."""

    def __init__(self, target_pass_s, draft_pass_s=None, host_s=None, iteration_s=None, shape: Shape = Shape(),
                 lookup_s=None):
        self._target = target_pass_s
        self._draft = draft_pass_s
        self._host = host_s or (lambda sequences: 0.0)
        self._iteration = iteration_s or (lambda decode, gamma, passes: 0.0)
        self.shape = shape
        self._lookup = lookup_s or (lambda decode, context: 0.0)
        self._riding = shape.method in SEQUENTIAL  # the drafter keeps a KV cache of every prompt

    @classmethod
    def of(cls, target: Deployment, draft: Deployment | None = None, shape: Shape = Shape()) -> "StepPricer":
        runtime = target.runtime

        def host_s(sequences):
            return step_overhead_s(runtime, sequences)

        def iteration_s(decode, gamma, passes):
            return speculation_overhead_s(runtime, decode, gamma, passes)

        def lookup_s(decode, context):
            return runtime.ngram_s_per_context_token * decode * context

        draft_pass_s = None if draft is None else (lambda work: pass_time_s(draft, work))
        return cls(lambda work: pass_time_s(target, work), draft_pass_s, host_s, iteration_s, shape, lookup_s)

    @property
    def has_draft(self) -> bool:
        """Whether anything drafts (a draft model or head, or n-gram lookup)."""
        return self._draft is not None or self.shape.method == "ngram"

    def host_s(self, sequences):
        return self._host(sequences)

    def cost(self, decode: int, gamma, context, chunks: PassWork | None = None) -> StepCost:
        """One step of `decode` sequences at mean `context` with lookahead `gamma` (broadcast over gamma
        and context), plus the prefill `chunks` if any. gamma > 0 with nothing to draft costs inf."""
        gamma = np.asarray(gamma) if isinstance(gamma, (list, tuple)) else gamma
        vector = np.ndim(gamma) > 0
        chunk_seqs = 0 if chunks is None else chunks.sequences
        if decode:
            verify = PassWork.group(decode, self.shape.verify_tokens(gamma) if self.has_draft else gamma + 1,
                                    context)
            work = verify if chunks is None else verify + chunks
        else:
            work = chunks
        target_s = self._target(work) + self._host(decode + chunk_seqs)
        if not self.has_draft:
            return StepCost(np.where(gamma > 0, np.inf, 0.0) if vector else (np.inf if gamma else 0.0), target_s)
        draft_s = 0.0
        if decode:
            draft_s = self._drafting_s(decode, gamma, context) + self._iteration(decode, gamma, self.shape.draft_passes(gamma))
            if self._riding and chunks is not None:
                # The first draft pass carries the chunks; with gamma = 0 they get a pass of their own.
                one = PassWork.group(decode, 1, context)
                ride = alone = None
                if np.any(np.asarray(gamma) > 0):
                    ride = self._draft(one + chunks) + self._host(decode + chunk_seqs) \
                        - self._draft(one) - self._host(decode)
                if np.any(np.asarray(gamma) == 0):
                    alone = self._draft(chunks) + self._host(chunk_seqs)
                draft_s = draft_s + (np.where(gamma > 0, ride, alone) if vector else (ride if gamma else alone))
        elif self._riding and chunks is not None:
            draft_s = self._draft(chunks) + self._host(chunk_seqs)
        return StepCost(draft_s, target_s)

    def _drafting_s(self, decode, gamma, context):
        """The draft passes (each + host) or the n-gram scan of one iteration at lookahead gamma."""
        method = self.shape.method
        if method == "ngram":
            scan = self._lookup(decode, context)
            return np.where(np.asarray(gamma) > 0, scan, 0.0) if np.ndim(gamma) else (scan if gamma else 0.0)
        if method not in SEQUENTIAL or self.shape.tree is None:
            one = self._draft(PassWork.group(decode, 1, context)) + self._host(decode)
            return self.shape.draft_passes(gamma) * one
        top = int(np.max(gamma))
        levels = [self._draft(PassWork.group(decode, w, context)) + self._host(decode)
                  for w in self.shape.draft_inputs(top)]
        cumulative = np.cumsum(np.stack(np.broadcast_arrays(0.0, *levels)), axis=0)
        return cumulative[gamma]

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
        drafted = self._drafting_s(batch, 1, float(context))
        return float(drafted / (self._target(one) + host))
