"""Running a scenario: the speculative run beside its autoregressive baseline, the expected-value prediction
from the same step costs, and `evaluate` (one flat row of metrics, what sweeps store).

Seeds: `SeedSequence(seed).spawn(5)` gives the arrival instants, the per-request alphas, the speculative
run's acceptance draws, the baseline's draws and the request lengths. Arrivals, alphas and lengths are
drawn once and shared, so the baseline (gamma = 0, no draft model) serves exactly the same requests.
Speedups compare the two runs: TPOT (`speedup_vs_autoregressive`), output tokens/s (`throughput_speedup`)
and mean E2E latency (`e2e_speedup`); each interval combines both runs' relative standard errors (delta
method for a ratio of independent estimates).
"""

from dataclasses import dataclass

import numpy as np

from .. import metrics
from ..analytic import heuristic_gamma_distribution
from ..costs import PassWork
from .engine import simulate
from .policies import FixedGamma, HeuristicGamma
from .setup import Setup, draw_workloads, setup


def predict(s: Setup) -> dict:
    """Expected-value prediction for a saturated replica in steady state, at the mean context (mean prompt
    + mean output / 2) and mean lengths:

        TPOT = step_s(B, gamma, L) / E[tokens](gamma) + k x prefill_s(prompt) / (output - 1)

    B is the batch limit, or fewer when the KV cache cannot hold that many requests of mean length. k is
    the number of other requests' prefills a request's decoding shares the replica with: B - 1 while
    finished requests are replaced (the closed-loop steady state), averaged over the run as
    (B - 1)(R - B) / R for R requests (0 for a single wave, whose prefills come first). prefill_s is one
    request's prefill priced alone (target and draft), an upper bound of what a chunk adds to a mixed step.
    The baseline is the same with gamma = 0, no draft, and its own KV budget. HF's heuristic draft length
    is priced in its stationary state (`_heuristic_step`), the other policies at the gamma they choose."""
    cfg = s.scenario.config["workload"]
    need = s.mean_prompt_tokens + s.mean_output_tokens
    context = s.mean_prompt_tokens + s.mean_output_tokens / 2
    prompt = PassWork.group(1, s.mean_prompt_tokens, 0.0, prefill=True)

    def saturated(budget):
        batch = min(cfg["batch"], s.requests)
        return max(1, int(budget // need)) if budget < batch * need else batch

    def interference_s(timer, batch):
        k = (batch - 1) * max(0, s.requests - batch) / s.requests
        return k * float(timer.step(0, 0, 0.0, prompt).total_s) / max(s.mean_output_tokens - 1, 1)

    batch, base_batch = saturated(s.kv_token_budget), saturated(s.base_kv_token_budget)
    limit = s.scheduler.disable_above_batch
    policy, plain = s.make_policy(), limit is not None and batch > limit
    if isinstance(policy, HeuristicGamma) and not plain:
        gamma, decode_s = _heuristic_step(s, policy.max_gamma, batch, context)
    else:
        gamma = 0 if plain else policy.choose(batch, context)
        decode_s = s.timer.decode_s(batch, gamma, context) / float(s.acceptance.expected_tokens(gamma))
    tpot_s = decode_s + interference_s(s.timer, batch)
    base_s = s.base_timer.decode_s(base_batch, 0, context) + interference_s(s.base_timer, base_batch)
    return {"gamma": gamma, "batch": batch, "base_batch": base_batch, "tpot_s": tpot_s, "baseline_tpot_s": base_s}


def _heuristic_step(s: Setup, max_gamma: int, batch: int, context: float) -> tuple:
    """(most used gamma, decode seconds per token) of HF's heuristic schedule in its stationary state
    (`analytic.schedules`): time per iteration over tokens per iteration, both averaged over pi."""
    expected = np.asarray(s.acceptance.expected_tokens(np.arange(max_gamma + 1)), dtype=float)
    pi = heuristic_gamma_distribution(np.diff(expected))
    gammas = np.arange(1, max_gamma + 1)
    step_s = np.array([s.timer.decode_s(batch, int(g), context) for g in gammas])
    return int(gammas[np.argmax(pi)]), float(pi @ step_s / (pi @ expected[1:]))


def _mode_gamma(result) -> int:
    steps = result.steps[result.steps.decoders > 0]
    if not len(steps):
        return 0
    return int(steps.groupby("gamma").decoders.sum().idxmax())


# The baseline run's values a summary carries beside the speculative run's, as baseline_<key>.
BASELINE_KEYS = ("iterations", "tpot_ms", "output_throughput", "mean_e2el_ms", "mean_ttft_ms", "request_goodput",
                 "preemptions")


def flat_row(summary: dict) -> dict:
    """A summary with every interval [lo, hi] split into _lo/_hi keys and numpy scalars made Python ones: a
    sweep row (a sweep stores the other lists, the per-position acceptance and the histogram, as JSON)."""
    out = {}
    for key, value in summary.items():
        if key.endswith("_ci95"):
            out[f"{key}_lo"], out[f"{key}_hi"] = (float(v) for v in value)
        else:
            out[key] = value.item() if hasattr(value, "item") else value
    return out


@dataclass(frozen=True)
class Outcome:
    method: str
    setup: Setup
    summary: dict  # metrics.summarize of the speculative run (lists for intervals), plus run extras
    spec: object = None  # SimResult
    base: object = None  # SimResult of the autoregressive baseline

    def row(self) -> dict:
        return flat_row(self.summary)


def _ratio(base: dict, spec: dict, key: str, invert: bool = False) -> tuple:
    """base[key] / spec[key] (or spec / base), its delta-method interval from both runs' intervals, and a
    note when that interval is undefined (else None). A run too short for its own interval leaves the
    ratio's interval undefined (NaN), not zero-width; so does a relative half-width h >= 1, where the
    linear interval ratio x (1 +- h) would reach zero or below (the delta method no longer applies)."""
    num, den = (spec, base) if invert else (base, spec)
    ratio = num[key] / den[key] if den[key] else np.nan
    for label, run in (("speculative", spec), ("baseline", base)):
        if np.isnan(run[f"{key}_ci95"][0]):
            note = run.get(f"{key}_ci95_note", "").removeprefix("undefined: ")
            return ratio, [np.nan, np.nan], f"undefined: the {label} run's {key}_ci95 is undefined ({note})"
    rel = [(s[f"{key}_ci95"][1] - s[f"{key}_ci95"][0]) / 2 / s[key] for s in (spec, base)]
    h = float(np.hypot(*rel))
    if not (np.isfinite(ratio) and h < 1):
        return ratio, [np.nan, np.nan], (f"undefined: relative half-width {h:.3g} >= 1, beyond the delta "
                                         "method's reach (the runs are too noisy)")
    half = ratio * h
    return ratio, [ratio - half, ratio + half], None


def _put_ratio(summary: dict, name: str, estimate: tuple) -> None:
    summary[name], summary[f"{name}_ci95"], note = estimate
    if note is not None:
        summary[f"{name}_ci95_note"] = note


def run_scenario(scenario, seed: int, progress=None, block_steps: int = 256, step_events: bool = False,
                 keep_emissions: bool = False) -> Outcome:
    """Simulate (or predict, for method "analytic") one scenario with one seed; the summary's keys are
    `metrics.summary_keys(run.metric_percentiles)` and the run extras below.
    step_events: one simpy timeout per step instead of per block (same results; see engine.py).
    keep_emissions: keep the per-delivery emission tables (for `--out`)."""
    s = setup(scenario)
    pred = predict(s)
    cfg = scenario.config
    percentiles = cfg["run"]["metric_percentiles"]
    common = {"method": cfg["run"]["method"], "speculation_method": cfg["decoding"]["method"],
              "alpha": s.alpha, "alpha_source": s.alpha_source, "acceptance_note": s.acceptance_note,
              "cost_ratio": s.timer.cost_ratio(pred["batch"], s.mean_prompt_tokens),
              "predicted_tpot_ms": 1e3 * pred["tpot_s"],
              "predicted_speedup": pred["baseline_tpot_s"] / pred["tpot_s"]}
    if common["method"] == "analytic":
        return Outcome("analytic", s, {**common, **_analytic_summary(s, pred, percentiles)})

    arrivals_ss, alphas_ss, spec_ss, base_ss, lengths_ss = np.random.SeedSequence(seed).spawn(5)
    spec_w, base_w = draw_workloads(s, np.random.default_rng(arrivals_ss), np.random.default_rng(lengths_ss))
    alphas = s.acceptance.request_alphas(np.random.default_rng(alphas_ss), spec_w.requests)
    shared = dict(request_alpha=alphas, scheduler=s.scheduler, block_steps=block_steps, step_events=step_events,
                  keep_emissions=keep_emissions)
    policy = s.make_policy()
    slo = cfg["slo"]
    plain = policy.max_gamma == 0  # gamma = 0: the run is its own baseline, with no draft model loaded
    spec = simulate(base_w if plain else spec_w, s.base_timer if plain else s.timer, s.acceptance, policy,
                    rng=np.random.default_rng(spec_ss), progress=progress, **shared)
    summary = {**common, **metrics.summarize(spec, slo, percentiles=percentiles)}
    summary["gamma"] = _mode_gamma(spec)
    if plain:
        base, base_summary = spec, summary
    else:
        base = simulate(base_w, s.base_timer, s.acceptance, FixedGamma(0), rng=np.random.default_rng(base_ss),
                        **shared)
        base_summary = metrics.summarize(base, slo, percentiles=percentiles)
    _put_ratio(summary, "speedup_vs_autoregressive", _ratio(base_summary, summary, "tpot_ms"))
    _put_ratio(summary, "throughput_speedup", _ratio(base_summary, summary, "output_throughput", invert=True))
    _put_ratio(summary, "e2e_speedup", _ratio(base_summary, summary, "mean_e2el_ms"))
    for key in BASELINE_KEYS:
        summary[f"baseline_{key}"] = base_summary[key]
    summary["sim_wall_s"] = spec.sim_wall_s + (base.sim_wall_s if base is not spec else 0.0)
    return Outcome("simulated", s, summary, spec, base)


ANALYTIC_CI_NOTE = "undefined: run.method = 'analytic' is an expected value, with no sampling error"


def _analytic_summary(s: Setup, pred: dict, percentiles) -> dict:
    """The simulated summary's keys (`metrics.summary_keys`), NaN where only a simulation knows."""
    nan = float("nan")
    tokens = float(s.acceptance.expected_tokens(pred["gamma"]))
    throughput, base_throughput = pred["batch"] / pred["tpot_s"], pred["base_batch"] / pred["baseline_tpot_s"]
    out = {key: [nan, nan] if key.endswith("_ci95") else nan for key in metrics.summary_keys(percentiles)}
    out.update({f"baseline_{key}": nan for key in BASELINE_KEYS})
    out.update({f"{key}_ci95_note": ANALYTIC_CI_NOTE
                for key in ("tpot_ms", "speedup_vs_autoregressive", "throughput_speedup")})
    out.update({
        "gamma": pred["gamma"], "mean_gamma": float(pred["gamma"]), "mean_batch": float(pred["batch"]),
        "tpot_ms": 1e3 * pred["tpot_s"], "output_throughput": throughput,
        "speedup_vs_autoregressive": pred["baseline_tpot_s"] / pred["tpot_s"],
        "speedup_vs_autoregressive_ci95": [nan, nan],
        "throughput_speedup": throughput / base_throughput, "throughput_speedup_ci95": [nan, nan],
        "e2e_speedup": nan, "e2e_speedup_ci95": [nan, nan],
        "mean_tokens_per_iteration": tokens, "acceptance_rate": s.alpha, "completed": s.requests,
        "total_output_tokens": s.requests * s.mean_output_tokens,
        "total_input_tokens": s.requests * s.mean_prompt_tokens, "failed": 0,
        "spec_decode_per_position_acceptance_rates": [], "accepted_length_histogram": [],
        "baseline_tpot_ms": 1e3 * pred["baseline_tpot_s"],
        "baseline_output_throughput": base_throughput, "sim_wall_s": 0.0,
    })
    return out


def evaluate(scenario, seed: int) -> dict:
    """Evaluate a scenario into one flat dict of metrics (`Outcome.row`): the summary of `run_scenario`
    (`metrics.summary_keys`, vLLM `bench serve` names where vLLM has the quantity) with every interval
    split into _ci95_lo/_hi. Analytic rows carry NaN where only a simulation knows."""
    return run_scenario(scenario, seed).row()
