"""gamma policies: how many tokens to draft in the next speculative iteration.

A policy is asked `choose(batch, context)` at the start of each block of steps (the engine re-asks at
least every `horizon` steps and whenever the running batch changes) and told what the target accepted
through `observe(accepted, judged)`.

- `FixedGamma(g)`: always g (g = 0 is plain autoregressive decoding, the baseline of every speedup).
- `AutoGamma`: the analytic optimum for the current pass costs: the integer gamma maximising
  E[tokens](gamma) / step_s(gamma), with E[tokens] from the acceptance process (Leviathan eq. 1 for i.i.d.)
  and step_s(gamma) = gamma (draft + host) + verify(gamma + 1 tokens) + host from the cost model at the
  current batch and context. Where the verification cost does not depend on gamma (the `ideal` profile)
  this is Leviathan's S(gamma) and equals `best_integer_gamma(alpha, c)`; on a real GPU it also sees the
  verification pass turning compute-bound as batch x (gamma + 1) grows.
- `AdaptiveGamma`: the same optimisation with alpha replaced by an exponentially weighted moving average of
  the observed per-token acceptance (accepted / judged per block), started at a prior. It keeps gamma >= 1
  so it never stops observing.
- `HeuristicGamma`: HF transformers' assisted generation with `num_assistant_tokens_schedule =
  "heuristic"` (the default through transformers 4.4x): start at `num_assistant_tokens` = 5; after an
  iteration whose drafts were all accepted, +2, else -1, never below 1 (`AssistedCandidateGenerator.
  update_candidate_strategy` in `transformers/generation/candidate_generator.py`). Capped at max_gamma
  here. HF runs one sequence; for a batch, "all accepted" means every sequence's drafts were.
"""

import numpy as np

from ..analytic import expected_tokens_per_iteration

_CONTEXT_BUCKETS = 64  # auto decisions are cached per (batch, context bucket)


class FixedGamma:
    horizon = 1 << 30

    def __init__(self, gamma: int):
        self.gamma = self.max_gamma = int(gamma)

    def choose(self, batch: int, context: float) -> int:
        return self.gamma

    def observe(self, accepted: int, judged: int) -> None:
        pass


class AutoGamma:
    horizon = 256  # re-decide as the context grows

    def __init__(self, timer, acceptance, max_gamma: int = 16):
        self.timer, self.max_gamma = timer, int(max_gamma)
        self._expected = np.asarray(acceptance.expected_tokens(np.arange(self.max_gamma + 1)), dtype=float)
        self._bucket = max(1.0, timer.contexts[-1] / _CONTEXT_BUCKETS)
        self._cache = {}

    def choose(self, batch: int, context: float) -> int:
        key = (batch, int(context / self._bucket))
        gamma = self._cache.get(key)
        if gamma is None:
            tpot = self.timer.tpot_by_gamma(batch, (key[1] + 0.5) * self._bucket, self._expected)
            gamma = self._cache[key] = int(np.argmin(tpot))
        return gamma

    def observe(self, accepted: int, judged: int) -> None:
        pass


class AdaptiveGamma:
    def __init__(self, timer, prior_alpha: float, max_gamma: int = 16, weight: float = 0.1, horizon: int = 16):
        self.timer, self.max_gamma, self.weight, self.horizon = timer, int(max_gamma), weight, int(horizon)
        self.alpha = float(prior_alpha)
        self._gammas = np.arange(self.max_gamma + 1)

    def choose(self, batch: int, context: float) -> int:
        tpot = self.timer.tpot_by_gamma(batch, context, expected_tokens_per_iteration(self.alpha, self._gammas))
        return 1 + int(np.argmin(tpot[1:]))  # gamma >= 1: with no drafts there is nothing to observe

    def observe(self, accepted: int, judged: int) -> None:
        if judged:
            observed = min(max(accepted / judged, 1e-3), 1 - 1e-3)
            self.alpha += self.weight * (observed - self.alpha)


class HeuristicGamma:
    horizon = 1  # the rule reacts to every iteration
    INITIAL = 5  # GenerationConfig.num_assistant_tokens default (transformers 4.x)

    def __init__(self, max_gamma: int = 16):
        self.max_gamma = int(max_gamma)
        self.gamma = min(self.INITIAL, self.max_gamma)

    def choose(self, batch: int, context: float) -> int:
        return self.gamma

    def observe(self, accepted: int, judged: int) -> None:
        # judged = accepted + one rejection per sequence that stopped short: equal only when all were accepted.
        if judged:
            self.gamma = min(self.gamma + 2, self.max_gamma) if accepted == judged else max(1, self.gamma - 1)
