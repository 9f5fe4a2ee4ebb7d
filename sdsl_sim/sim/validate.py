"""The closed-form agreement grid: simulated speedup on the `ideal` GPU at batch 1 against Lambert-W.

On `ideal` a pass costs weight bytes / bandwidth, independent of tokens and context, so the closed form's
assumptions hold exactly: c = draft pass / target pass, verification costs one target pass, acceptance is
i.i.d. Each point simulates one long request with gamma = "auto" (which on `ideal` is
best_integer_gamma(alpha, c)) and its autoregressive baseline, then compares the simulated speedup with
  - `optimal_speedup(alpha, c)`, the Lambert-W speedup over real gamma (pass: within `tolerance`), and
  - `leviathan_speedup(alpha, gamma, c)` at the simulated integer gamma (pass: inside the run's 99% interval).
Output tokens per point: at least `min_output_tokens`, more where the tokens per iteration vary a lot
(high alpha, long drafts), so that the 99% interval's half-width stays near `precision`.
"""

import numpy as np

from ..analytic import best_integer_gamma, leviathan_speedup, optimal_speedup
from ..metrics import tpot_ci

ALPHAS = (0.5, 0.6, 0.7, 0.8, 0.9)
RATIOS = (10, 100, 1000)  # M / N
TARGET_PARAMS = 70e9


def _tokens_cv(alpha: float, gamma: int) -> float:
    """Coefficient of variation of accepted + 1 under i.i.d. acceptance (truncated geometric)."""
    k = np.arange(gamma + 1)
    p = np.where(k < gamma, alpha**k * (1 - alpha), alpha**gamma)
    mean = np.sum(p * (k + 1))
    return float(np.sqrt(np.sum(p * (k + 1) ** 2) - mean**2) / mean)


def output_tokens_for(alpha, ratio, min_output_tokens=100_000, precision=0.004, cap=4_000_000) -> int:
    """Tokens for a 99% half-width of about `precision` (relative), at least `min_output_tokens`."""
    from ..analytic import expected_tokens_per_iteration

    gamma = int(best_integer_gamma(alpha, 1.0 / ratio))
    iterations = (2.576 * _tokens_cv(alpha, gamma) / precision) ** 2
    tokens = iterations * float(expected_tokens_per_iteration(alpha, gamma))
    return int(min(cap, max(min_output_tokens, round(tokens, -4))))


def point(alpha: float, ratio: float, output_tokens: int, seed: int = 0, tolerance: float = 0.01) -> dict:
    from ..scenario import scenario_from_dict
    from .run import run_scenario

    scenario = scenario_from_dict({
        "model": {"target_params": TARGET_PARAMS, "draft_params": TARGET_PARAMS / ratio},
        "hardware": {"name": "ideal", "tp": 1},
        "workload": {"requests": 1, "batch": 1, "prompt_tokens": 128, "output_tokens": int(output_tokens)},
        "decoding": {"gamma": "auto", "max_gamma": 64, "alpha": float(alpha)},
    }, source="<validate>")
    out = run_scenario(scenario, seed, block_steps=1024)
    c = out.summary["cost_ratio"]
    gamma = out.summary["gamma"]
    spec, lo, hi = tpot_ci(out.spec, 0.99)
    base = tpot_ci(out.base, 0.99)[0]
    simulated = base / spec
    lambert = float(optimal_speedup(alpha, c))
    leviathan = float(leviathan_speedup(alpha, gamma, c))
    error = simulated / lambert - 1
    inside = base / hi <= leviathan <= base / lo
    return {
        "alpha": alpha, "m_over_n": ratio, "cost_ratio": c, "output_tokens": int(output_tokens),
        "gamma": gamma, "best_integer_gamma": int(best_integer_gamma(alpha, c)),
        "simulated_speedup": simulated, "simulated_speedup_ci99": [base / hi, base / lo],
        "lambert_w_speedup": lambert, "leviathan_speedup": leviathan, "rel_error_vs_lambert_w": error,
        "leviathan_inside_ci99": bool(inside), "pass": bool(abs(error) <= tolerance and inside),
        "sim_wall_s": out.summary["sim_wall_s"],
    }


def agreement_grid(alphas=ALPHAS, ratios=RATIOS, min_output_tokens=100_000, seed=0, tolerance=0.01,
                   progress=None) -> list[dict]:
    rows = []
    for alpha in alphas:
        for ratio in ratios:
            rows.append(point(alpha, ratio, output_tokens_for(alpha, ratio, min_output_tokens), seed, tolerance))
            if progress is not None:
                progress(len(rows), len(alphas) * len(ratios))
    return rows
