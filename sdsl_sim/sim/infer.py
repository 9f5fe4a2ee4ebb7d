"""Implied acceptance: the per-token alpha at which the expected-value model reproduces a measured speedup.

A measured speedup S of speculative over plain decoding, at a fixed lookahead gamma (or under HF's
heuristic schedule), pins the (i.i.d.) alpha down given the engine and hardware model: the predicted
speedup `sim.run.predict` gives is increasing in alpha
(more tokens per iteration at the same step cost), so S(alpha) = S_measured has at most one root in
(0, 1), found by bisection (scipy's brentq). When S_measured lies outside (S(0+), S(1-)) no acceptance
reproduces it: the engine model, not the acceptance, is then what is wrong.
"""

import copy
import dataclasses

from scipy.optimize import brentq

from ..analytic import expected_tokens_per_iteration, heuristic_expected_tokens
from ..errors import InputError
from ..scenario import scenario_from_dict
from .acceptance import IidAcceptance
from .run import predict
from .setup import setup

ALPHA_LO, ALPHA_HI = 1e-6, 1 - 1e-6
# Keys of `infer_alpha` that are NaN (null in JSON), and when.
UNDEFINED = {key: "reproducible is false: no alpha in (0, 1) gives the measured speedup"
             for key in ("alpha", "mean_accepted_tokens", "predicted_speedup_at_alpha")}


def _setup(data: dict):
    """The scenario's Setup, built once: only the acceptance changes with alpha."""
    data = copy.deepcopy(data)
    data.setdefault("decoding", {})["alpha"] = 0.5  # a placeholder; `predicted_speedup` sets the real one
    return setup(scenario_from_dict(data, source="infer-alpha"))


def predicted_speedup(s, alpha: float) -> float:
    """Expected-value speedup (baseline TPOT / speculative TPOT) of Setup `s` at per-token `alpha`."""
    pred = predict(dataclasses.replace(s, acceptance=IidAcceptance(alpha), alpha=alpha))
    return pred["baseline_tpot_s"] / pred["tpot_s"]


def infer_alpha(data: dict, measured_speedup: float) -> dict:
    """The alpha in (0, 1) whose predicted speedup equals `measured_speedup`, for scenario `data` with an
    integer `decoding.gamma` >= 1 or "heuristic" (HF's schedule, in its stationary state). Keys: alpha
    (NaN when none reproduces it), mean_accepted_tokens (tokens per iteration, the bonus token included),
    predicted_speedup_at_alpha, reproducible, and the speedups at the ends of the range."""
    gamma = data.get("decoding", {}).get("gamma")
    if gamma != "heuristic" and (isinstance(gamma, bool) or not isinstance(gamma, int) or gamma < 1):
        raise InputError(f"infer-alpha needs an integer gamma >= 1 (the lookahead the measurement ran with) or "
                         f"'heuristic', got {gamma!r}")
    s = _setup(data)
    low, high = predicted_speedup(s, ALPHA_LO), predicted_speedup(s, ALPHA_HI)
    out = {"gamma": gamma, "measured_speedup": measured_speedup, "speedup_at_alpha_0": low,
           "speedup_at_alpha_1": high}
    if not low <= measured_speedup <= high:
        return {**out, "alpha": float("nan"), "mean_accepted_tokens": float("nan"),
                "predicted_speedup_at_alpha": float("nan"), "reproducible": False}
    alpha = brentq(lambda a: predicted_speedup(s, a) - measured_speedup, ALPHA_LO, ALPHA_HI, xtol=1e-9)
    tokens = (heuristic_expected_tokens(alpha, s.make_policy().max_gamma) if gamma == "heuristic"
              else float(expected_tokens_per_iteration(alpha, gamma)))
    return {**out, "alpha": alpha, "mean_accepted_tokens": tokens,
            "predicted_speedup_at_alpha": predicted_speedup(s, alpha), "reproducible": True}
