"""Hardware-aware optimal draft size: the draft that minimises TPOT on a GPU, beside the analytic N*.

The analytic N* (analytic.n_star) maximises tokens per FLOP with pass time proportional to
parameters. Here the same composition of laws (alpha from the perplexities of N and M trained on D
tokens) meets the roofline pass costs instead: for each synthetic draft size N,

    TPOT(N) = min over integer gamma of  step_s(B, gamma, L; N) / E[tokens](alpha(N), gamma)

with step_s the decode step of `step.StepPricer` (gamma draft passes + host, one verification pass of
gamma + 1 tokens + host) and E[tokens] from Leviathan eq. 1. This is the expected-value path: for a static batch with i.i.d.
acceptance the simulator's TPOT equals it within 1% (tests/test_sim_engine.py), and it needs no
randomness, so a scan over dozens of draft sizes costs milliseconds.
Drafts run unsharded by default (draft_tp = 1, like vLLM's speculative_draft_tensor_parallel_size):
a 100M-parameter model split over GPUs would pay more in all-reduces than it saves in reads.
"""

from dataclasses import dataclass

import numpy as np

from .analytic import (
    DEFAULT_TRAIN_TOKENS,
    alpha_from_perplexity,
    alpha_from_sizes,
    expected_tokens_per_iteration,
    n_star,
    perplexity,
)
from .costs import Deployment, check_memory
from .errors import InputError
from .models import Model, synthetic_model
from .step import StepPricer

MIN_DRAFT_PARAMS = 20e6  # below this the synthetic shape rule has fewer than one useful layer
MIN_ALPHA = 0.05  # the alpha law's fit range starts far above this; smaller drafts are not candidates
NEAR_OPTIMAL = 0.01  # drafts within 1% of the best TPOT: the optimum is flat, report its extent


@dataclass(frozen=True)
class DraftPoint:
    """Expected decode performance of one draft size with the target, at one batch and context."""

    draft_params: float
    alpha: float
    gamma: int
    tpot_s: float
    baseline_tpot_s: float

    @property
    def speedup(self) -> float:
        return self.baseline_tpot_s / self.tpot_s


@dataclass(frozen=True)
class HardwareNStar:
    n_star_analytic: float
    n_star_hardware: float
    n_star_hardware_range: tuple  # (smallest, largest) scanned size within NEAR_OPTIMAL of the best TPOT
    at_analytic: DraftPoint
    at_hardware: DraftPoint
    curve: tuple  # DraftPoint per scanned size, ascending

    def summary(self) -> dict:
        """The flat metrics of `sdsl-sim nstar` and of `evaluate = "nstar"` sweep rows."""
        out = {
            "method": "expected-value",
            "n_star_analytic": self.n_star_analytic,
            "n_star_hardware": self.n_star_hardware,
            "n_star_hardware_lo": self.n_star_hardware_range[0],
            "n_star_hardware_hi": self.n_star_hardware_range[1],
            "baseline_tpot_ms": 1e3 * self.at_hardware.baseline_tpot_s,
        }
        for label, point in (("analytic", self.at_analytic), ("hardware", self.at_hardware)):
            out[f"tpot_ms_at_{label}"] = 1e3 * point.tpot_s
            out[f"gamma_at_{label}"] = point.gamma
            out[f"alpha_at_{label}"] = point.alpha
            out[f"speedup_at_{label}"] = point.speedup
        return out


def draft_point(target: Model, draft: Model, gpu, *, train_tokens: float, tp: int = 1, draft_tp: int = 1,
                batch: int = 1, context: float = 1024, runtime=None, max_gamma: int = 32,
                weight_dtype: str = "bf16", kv_dtype: str = "bf16") -> DraftPoint:
    """TPOT of the best integer gamma (0 = plain decoding) for one draft, alpha from the SDSL law."""
    alpha = float(alpha_from_sizes(draft.params, target.params, train_tokens))
    dtypes = dict(weight_dtype=weight_dtype, kv_dtype=kv_dtype)
    served = Deployment.of(target, gpu, tp=tp, runtime=runtime, **dtypes)
    pricer = StepPricer.of(served, Deployment.of(draft, gpu, tp=draft_tp, runtime=served.runtime.for_draft(), **dtypes))
    tpot_s = pricer.tpot_by_gamma(batch, context, expected_tokens_per_iteration(alpha, np.arange(max_gamma + 1)))
    gamma = int(np.argmin(tpot_s))
    return DraftPoint(float(draft.params), alpha, gamma, float(tpot_s[gamma]), float(tpot_s[0]))


def _smallest_valid_draft(target_params: float, train_tokens: float) -> float:
    """The smallest N (>= MIN_DRAFT_PARAMS) whose law-given alpha reaches MIN_ALPHA, by bisection in log N."""
    def alpha(n):
        return alpha_from_perplexity(perplexity(n, train_tokens), perplexity(target_params, train_tokens))

    lo, hi = np.log(MIN_DRAFT_PARAMS), np.log(target_params / 2)
    if alpha(np.exp(lo)) >= MIN_ALPHA:
        return float(np.exp(lo))
    if alpha(np.exp(hi)) < MIN_ALPHA:
        raise InputError(f"the alpha law gives alpha < {MIN_ALPHA} for every draft of target {target_params:.3g}")
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if alpha(np.exp(mid)) < MIN_ALPHA else (lo, mid)
    return float(np.exp(hi))


def hardware_n_star(target: Model, gpu, *, train_tokens: float = DEFAULT_TRAIN_TOKENS, tp: int = 1, draft_tp: int = 1,
                    batch: int = 1, context: float = 1024, runtime=None, max_gamma: int = 32,
                    weight_dtype: str = "bf16", kv_dtype: str = "bf16",
                    points: int = 33, refine: int = 17) -> HardwareNStar:
    """Scan synthetic draft sizes from the smallest the law admits to M / 4 on a log grid, then
    rescan finely between the best point's neighbours; return the TPOT-minimising size, the range of
    sizes within NEAR_OPTIMAL of its TPOT (to the scan's resolution), and the analytic N* evaluated on
    the same hardware.

    TPOT(N) is a sawtooth, not a smooth curve: a synthetic draft's layer count is an integer, and one
    more layer adds its kernel floors at once, so the argmin sits just below a layer step. The range
    is the robust answer; the argmin is the precise one for this shape rule."""
    dtypes = dict(weight_dtype=weight_dtype, kv_dtype=kv_dtype)
    check_memory([target], gpu, batch=batch, context=context, tp=tp, runtime=runtime, **dtypes)
    opts = dict(train_tokens=train_tokens, tp=tp, draft_tp=draft_tp, batch=batch, context=context,
                runtime=runtime, max_gamma=max_gamma, **dtypes)

    def scan(sizes):
        return [draft_point(target, synthetic_model(n), gpu, **opts) for n in sizes]

    coarse = np.geomspace(_smallest_valid_draft(target.params, train_tokens), target.params / 4, points)
    curve = scan(coarse)
    i = int(np.argmin([p.tpot_s for p in curve]))
    fine = np.geomspace(coarse[max(i - 1, 0)], coarse[min(i + 1, points - 1)], refine)
    curve = sorted(curve + scan(fine), key=lambda p: p.draft_params)
    best = min(curve, key=lambda p: p.tpot_s)
    near = [p.draft_params for p in curve if p.tpot_s <= (1 + NEAR_OPTIMAL) * best.tpot_s]
    analytic = n_star(target.params, train_tokens).n_star_params
    at_analytic = draft_point(target, synthetic_model(analytic), gpu, **opts)
    check_memory([target, synthetic_model(best.draft_params)], gpu, batch=batch, context=context, tp=tp,
                 runtime=runtime, **dtypes)
    return HardwareNStar(analytic, best.draft_params, (min(near), max(near)), at_analytic, best, tuple(curve))
