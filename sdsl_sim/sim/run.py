"""A scenario made runnable: models, GPU, pass timer, workload, acceptance and gamma policy; the speculative
run beside its autoregressive baseline; and the expected-value prediction from the same pass costs.

Seeds: `SeedSequence(seed).spawn(4)` gives the arrival instants, the per-request alphas, the speculative
run's acceptance draws and the baseline's draws. Arrivals and request alphas are drawn once and shared, so
the baseline (gamma = 0, no draft model) serves exactly the same workload.
Speedup = baseline TPOT / speculative TPOT (run-level, token-weighted TPOT; see metrics.py); its interval
combines both runs' relative standard errors (delta method for a ratio of independent estimates).
"""

from dataclasses import dataclass
from functools import partial

import numpy as np

from .. import metrics
from ..analytic import alpha_from_sizes
from ..errors import InputError
from ..scenario import resolve
from .acceptance import BetaAcceptance, IidAcceptance, ProfileAcceptance
from .engine import Workload, simulate
from .policies import AdaptiveGamma, AutoGamma, FixedGamma
from .timing import PassTimer

@dataclass(frozen=True)
class Build:
    """Everything a run needs, derived once from a scenario."""

    target: object
    draft: object
    gpu: object
    timer: PassTimer
    workload: Workload
    acceptance: object
    alpha: float
    alpha_source: str  # "given", "sdsl-law" or "profile"
    make_policy: object  # () -> a fresh gamma policy (policies keep state within one run)
    max_gamma: int


def _kv_token_budget(models, gpu, tp, limit, dtypes) -> float:
    """Largest whole KV token count (beyond the weights) that fits, up to `limit`; inf on a weights-only
    GPU. That one request fits was checked by `scenario.resolve`."""
    from ..costs import kv_token_capacity

    if gpu.pass_model == "weights-only":
        return float("inf")
    capacity = kv_token_capacity(models, gpu, tp=tp, **dtypes)
    return float(limit if capacity >= limit else int(capacity))


def build(scenario) -> Build:
    cfg = scenario.config
    m, hw, wl, dec = cfg["model"], cfg["hardware"], cfg["workload"], cfg["decoding"]
    parts = resolve(scenario)
    target, draft, gpu, runtime = parts.target, parts.draft, parts.gpu, parts.runtime
    max_gamma = dec["gamma"] if isinstance(dec["gamma"], int) else dec["max_gamma"]
    need = wl["prompt_tokens"] + wl["output_tokens"]
    dtypes = dict(weight_dtype=m["weight_dtype"], kv_dtype=m["kv_dtype"])
    budget = _kv_token_budget([target, draft], gpu, hw["tp"], need * wl["batch"], dtypes)
    timer = PassTimer.from_cost_model(target, draft, gpu, tp=hw["tp"], draft_tp=hw["draft_tp"],
                                      runtime=runtime, max_context=need + max_gamma + 1, **dtypes)
    workload = Workload(requests=wl["requests"], max_batch=wl["batch"], prompt_tokens=wl["prompt_tokens"],
                        output_tokens=wl["output_tokens"], arrival=wl["arrival"], rate_per_s=float(wl["rate_per_s"]),
                        concurrency=wl["concurrency"] or wl["batch"], kv_token_budget=budget)
    if dec["acceptance"] == "profile":
        acceptance = ProfileAcceptance(tuple(dec["prefix_probs"]))
        alpha, source = acceptance.mean_alpha, "profile"
    else:
        if dec["alpha"] is None:
            alpha, source = float(alpha_from_sizes(draft.params, target.params, m["train_tokens"])), "sdsl-law"
        else:
            alpha, source = float(dec["alpha"]), "given"
        acceptance = (BetaAcceptance(alpha, float(dec["alpha_concentration"])) if dec["acceptance"] == "beta"
                      else IidAcceptance(alpha))
    gamma = dec["gamma"]
    if gamma == "auto":
        make_policy = partial(AutoGamma, timer, acceptance, max_gamma)
    elif gamma == "adaptive":
        make_policy = partial(AdaptiveGamma, timer, alpha, max_gamma, float(dec["adaptive_weight"]),
                              dec["adaptive_horizon"])
    else:
        make_policy = partial(FixedGamma, gamma)
    return Build(target, draft, gpu, timer, workload, acceptance, alpha, source, make_policy, max_gamma)


def predict(b: Build) -> dict:
    """Expected-value prediction for a full static batch at the mean context (prompt + output / 2):
    TPOT = step_s(B, gamma, L) / E[tokens](gamma), baseline TPOT = step_s(B, 0, L)."""
    w = b.workload
    batch = min(w.max_running, w.requests)
    context = w.prompt_tokens + w.output_tokens / 2
    policy = b.make_policy()
    gamma = policy.choose(batch, context)
    tpot_s = b.timer.step_s(batch, gamma, context) / float(b.acceptance.expected_tokens(gamma))
    base_s = b.timer.step_s(batch, 0, context)
    return {"gamma": gamma, "batch": batch, "tpot_s": tpot_s, "baseline_tpot_s": base_s}


def _mode_gamma(result) -> int:
    decode = result.steps[result.steps.kind == "decode"]
    if not len(decode):
        return 0
    weights = decode.groupby("gamma").batch.sum()
    return int(weights.idxmax())


@dataclass(frozen=True)
class Outcome:
    method: str
    build: Build
    summary: dict  # metrics.summarize of the speculative run (lists for intervals), plus run extras
    spec: object = None  # SimResult
    base: object = None  # SimResult of the autoregressive baseline

    def row(self) -> dict:
        """The summary flattened to scalars: [lo, hi] -> _lo/_hi keys; the histogram left out."""
        out = {}
        for key, value in self.summary.items():
            if key == "accepted_length_histogram":
                continue
            if isinstance(value, (list, tuple)):
                out[f"{key}_lo"], out[f"{key}_hi"] = (float(v) for v in value)
            else:
                out[key] = value.item() if hasattr(value, "item") else value
        return out


def _speedup(spec: dict, base: dict) -> tuple:
    ratio = base["tpot_ms"] / spec["tpot_ms"]
    # A run too short for its own interval leaves the ratio's interval undefined (NaN), not zero-width.
    rel = [(s["tpot_ms_ci95"][1] - s["tpot_ms_ci95"][0]) / 2 / s["tpot_ms"] for s in (spec, base)]
    half = ratio * float(np.hypot(*rel))
    return ratio, [ratio - half, ratio + half]


def run_scenario(scenario, seed: int, progress=None, block_steps: int = 256, step_events: bool = False) -> Outcome:
    """Simulate (or predict, for method "analytic") one scenario with one seed.
    step_events: one simpy timeout per iteration instead of per block (same results; see engine.py)."""
    b = build(scenario)
    pred = predict(b)
    common = {"method": scenario.config["run"]["method"], "alpha": b.alpha, "alpha_source": b.alpha_source,
              "cost_ratio": b.timer.cost_ratio(pred["batch"], b.workload.prompt_tokens),
              "predicted_tpot_ms": 1e3 * pred["tpot_s"],
              "predicted_speedup": pred["baseline_tpot_s"] / pred["tpot_s"]}
    if common["method"] == "analytic":
        return Outcome("analytic", b, {**common, **_analytic_summary(b, pred)})

    arrivals_ss, alphas_ss, spec_ss, base_ss = np.random.SeedSequence(seed).spawn(4)
    w = b.workload
    arrivals = w.arrival_times(np.random.default_rng(arrivals_ss))
    alphas = b.acceptance.request_alphas(np.random.default_rng(alphas_ss), w.requests)
    shared = dict(arrival_at_s=arrivals, request_alpha=alphas, block_steps=block_steps, step_events=step_events)
    policy = b.make_policy()
    spec = simulate(w, b.timer, b.acceptance, policy, rng=np.random.default_rng(spec_ss),
                    progress=progress, **shared)
    summary = {**common, **metrics.summarize(spec)}
    summary["gamma"] = _mode_gamma(spec)
    if policy.max_gamma == 0:
        base, base_summary = spec, summary
    else:
        base = simulate(w, b.timer, b.acceptance, FixedGamma(0), rng=np.random.default_rng(base_ss), **shared)
        base_summary = metrics.summarize(base)
    summary["speedup_vs_autoregressive"], summary["speedup_vs_autoregressive_ci95"] = _speedup(summary, base_summary)
    summary["baseline_iterations"] = base_summary["iterations"]
    summary["baseline_tpot_ms"] = base_summary["tpot_ms"]
    summary["baseline_throughput_tokens_per_s"] = base_summary["throughput_tokens_per_s"]
    summary["sim_wall_s"] = spec.sim_wall_s + (base.sim_wall_s if base is not spec else 0.0)
    return Outcome("simulated", b, summary, spec, base)


def _analytic_summary(b: Build, pred: dict) -> dict:
    nan = float("nan")
    tokens = float(b.acceptance.expected_tokens(pred["gamma"]))
    return {
        "gamma": pred["gamma"], "mean_gamma": float(pred["gamma"]), "mean_batch": float(pred["batch"]),
        "tpot_ms": 1e3 * pred["tpot_s"], "tpot_ms_ci95": [nan, nan],
        "throughput_tokens_per_s": pred["batch"] / pred["tpot_s"],
        "speedup_vs_autoregressive": pred["baseline_tpot_s"] / pred["tpot_s"],
        "speedup_vs_autoregressive_ci95": [nan, nan],
        "mean_tokens_per_iteration": tokens, "acceptance_rate": b.alpha,
        "output_tokens": b.workload.requests * b.workload.output_tokens,
        "iterations": nan, "baseline_iterations": nan,
        "baseline_tpot_ms": 1e3 * pred["baseline_tpot_s"],
        "baseline_throughput_tokens_per_s": pred["batch"] / pred["baseline_tpot_s"], "sim_wall_s": 0.0,
    }
