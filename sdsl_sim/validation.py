"""Public engine measurements (sdsl_sim/data/validation_measurements.toml) beside the simulator's
prediction for each: the data of the validation page (`report/validation.py`).

Each row names an engine, a GPU, a tensor-parallel degree, a target (and a draft for speculative rows),
lengths, a batch, a lookahead, and one measured metric. Its prediction is the expected-value model
(`sim.run.run_scenario` with run.method = "analytic") on the matching runtime profile (`RUNTIME_OF`), at the
row's stated per-token acceptance; a row that states none gets the SDSL law's alpha, and its implied
acceptance (`sim.infer.infer_alpha`) is reported beside it. No value of any profile is set from these rows.

A head row (EAGLE, Medusa, MTP: `method` names it, with no separate draft checkpoint) is priced with the
head built from its target (`speculation.head_model`, at the draft vocabulary its checkpoint states) when it
states its acceptance (the SDSL law sizes draft models only) and drafts a chain; a dynamic tree, whose
shape no source states, is not priced.

A throughput row marked `includes_prefill` timed one whole generate() of its static batch (TensorRT-LLM's
gptSessionBenchmark: the context phase of every prompt in one pass, then output - 1 generation steps):
its prediction is batch x output tokens over that prefill plus the decode steps, not the decode rate alone.

A stated acceptance converts to a per-token alpha at the row's gamma g (Leviathan's tokens per
iteration E(alpha, g) = (1 - alpha^(g+1)) / (1 - alpha)): a mean accepted length tau (bonus token
included) solves E = tau; vLLM's draft acceptance rate r (accepted / proposed) solves E = 1 + g r.
"""

from importlib.resources import files

import numpy as np
from scipy.optimize import brentq

from .analytic import expected_tokens_per_iteration
from .costs import PassWork
from .errors import InputError
from .sim.infer import infer_alpha
from .scenario import scenario_from_dict
from .sim.run import run_scenario
from .speculation import HEADS
from .tomlfile import read_toml

RUNTIME_OF = {"vllm": "vllm", "vllm-v0": "vllm-v0", "sglang": "sglang", "trtllm": "trtllm",
              "hf-transformers": "hf-transformers", "gpt-fast": "gpt-fast"}
METRICS = ("tpot_ms", "tokens_per_s_per_user", "throughput_tokens_per_s", "speedup_vs_autoregressive")
ACCEPTANCE_KINDS = ("per_token_alpha", "mean_accepted_tokens", "draft_acceptance_rate", "")
# Lengths a row that does not state them is priced at (the page flags such rows).
ASSUMED_PROMPT_TOKENS, ASSUMED_OUTPUT_TOKENS = 128, 256
PLAIN_DRAFT = "vicuna-68m"  # a stand-in draft for plain rows: gamma 0 never runs it; its weights are ~0.1 GB
IMPLIED_RANGE = (0.4, 0.95)  # a per-token acceptance outside this is implausible for a matched draft


def load_measurements(path=None) -> list[dict]:
    """The rows of the measurements file, each checked: InputError naming the row and key otherwise."""
    path = path or files("sdsl_sim") / "data" / "validation_measurements.toml"
    rows = read_toml(path).get("row", [])
    for row in rows:
        where = f"{path}: row {row.get('id', '?')!r}"
        for key in ("id", "source", "engine", "gpu", "tp", "target", "metric", "value"):
            if key not in row:
                raise InputError(f"{where}: key {key!r} missing")
        if row["metric"] not in METRICS:
            raise InputError(f"{where}: metric {row['metric']!r}; expected one of {', '.join(METRICS)}")
        if not (isinstance(row["value"], (int, float)) and np.isfinite(row["value"]) and row["value"] > 0):
            raise InputError(f"{where}: value {row['value']!r}; expected a positive finite number")
        if row.get("acceptance_kind", "") not in ACCEPTANCE_KINDS:
            raise InputError(f"{where}: acceptance_kind {row['acceptance_kind']!r}; expected one of "
                             f"{', '.join(map(repr, ACCEPTANCE_KINDS))}")
    return rows


def per_token_alpha(kind: str, value: float, gamma: int) -> float:
    """A stated acceptance as Leviathan's per-token alpha at lookahead `gamma` (see the module docstring)."""
    if kind == "per_token_alpha":
        return float(value)
    tau = float(value) if kind == "mean_accepted_tokens" else 1.0 + gamma * float(value)
    if not 1.0 < tau < gamma + 1.0:
        raise InputError(f"acceptance {value} ({kind}) at gamma {gamma} gives {tau:.3g} tokens per iteration; "
                         f"expected between 1 and {gamma + 1}")
    return float(brentq(lambda a: expected_tokens_per_iteration(a, gamma) - tau, 1e-9, 1 - 1e-9))


def _head(row: dict) -> bool:
    return row.get("method") in HEADS


def _speculative(row: dict) -> bool:
    return (bool(row.get("draft_catalog")) or _head(row)) and row.get("gamma", 0) > 0


def scenario_data(row: dict, alpha: float | None) -> dict:
    """The scenario dict that prices `row` (expected value, its runtime profile, its lengths)."""
    speculative, head = _speculative(row), _head(row)
    decoding = {"gamma": int(row["gamma"]) if speculative else 0}
    if alpha is not None:
        decoding["alpha"] = alpha
    if head:
        decoding["method"] = row["method"]
        if row.get("draft_vocab"):
            decoding["draft_vocab"] = int(row["draft_vocab"])
    model = {"target": row["target_catalog"], "weight_dtype": row.get("weight_dtype") or "bf16"}
    if not head:
        model["draft"] = row["draft_catalog"] if speculative else PLAIN_DRAFT
    batch = max(1, int(row.get("batch") or 1))
    return {
        "run": {"method": "analytic"},
        "model": model,
        "hardware": {"name": row["gpu"], "tp": int(row["tp"]), "runtime": RUNTIME_OF[row["engine"]],
                     **({} if speculative else {"draft_tp": 1})},  # the unused stand-in draft stays on one GPU
        "workload": {"requests": batch, "batch": batch,
                     "prompt_tokens": int(row.get("prompt_tokens") or ASSUMED_PROMPT_TOKENS),
                     "output_tokens": int(row.get("output_tokens") or ASSUMED_OUTPUT_TOKENS)},
        "decoding": decoding,
    }


def _metric(summary: dict, metric: str, batch: int) -> float:
    tpot = summary["tpot_ms"]
    return {"tpot_ms": tpot, "tokens_per_s_per_user": 1e3 / tpot, "throughput_tokens_per_s": batch * 1e3 / tpot,
            "speedup_vs_autoregressive": summary["speedup_vs_autoregressive"]}[metric]


def _session_throughput(outcome) -> float:
    """Output tokens/s of one static batch timed whole: its prompts prefilled in one pass (priced by the same
    step model as the decode steps), then output - 1 steps at the predicted TPOT."""
    wl = outcome.setup.scenario.config["workload"]
    batch, prompt, output = wl["batch"], wl["prompt_tokens"], wl["output_tokens"]
    tpot_s = outcome.summary["tpot_ms"] / 1e3
    timer = outcome.setup.base_timer  # a plain row: the target alone
    prefill_s = float(timer.step(0, 0, 0.0, PassWork.group(batch, prompt, 0.0, prefill=True)).total_s)
    return batch * output / (prefill_s + (output - 1) * tpot_s)


def skip_reason(row: dict) -> str | None:
    """Why a row cannot be priced (None when it can)."""
    if row["engine"] not in RUNTIME_OF:
        return f"engine {row['engine']!r} has no runtime profile"
    if not row.get("target_catalog"):
        return f"target {row['target']!r} is not in the model catalog"
    if _head(row):
        if not (row.get("gamma", 0) > 0 and row.get("acceptance_kind")):
            return f"a {row['method']} head row needs a stated gamma and acceptance (the SDSL law sizes draft models only)"
        if row.get("tree_tokens"):
            return f"a dynamic {row['method']} tree ({row['tree_tokens']} draft tokens per step) states no shape to price"
    elif row.get("draft") and not row.get("draft_catalog"):
        return f"draft {row['draft']!r} is not in the model catalog (or not a separate model)"
    if row["metric"] == "speedup_vs_autoregressive" and not _speculative(row):
        return "a speedup row needs a catalog draft (or a head) and a stated gamma"
    if row["metric"] == "throughput_tokens_per_s" and not row.get("batch"):
        return "an aggregate throughput needs a stated batch"
    if row.get("rate_per_s"):
        return "a request-rate row (serving) is not priced by the static-batch model yet"
    return None


def predict_row(row: dict) -> dict:
    """The row with its prediction: predicted, error (predicted / measured - 1), alpha and its origin,
    implied_alpha for speculative rows without a stated acceptance, and assumed_lengths."""
    out = dict(row)
    reason = skip_reason(row)
    if reason is not None:
        return {**out, "skipped": reason}
    gamma = int(row.get("gamma") or 0)
    speculative = _speculative(row)
    alpha, origin = None, "plain"
    if speculative:
        if row.get("acceptance_kind"):
            alpha, origin = per_token_alpha(row["acceptance_kind"], row["stated_acceptance"], gamma), "stated"
        else:
            origin = "sdsl-law"
    data = scenario_data(row, alpha)
    outcome = run_scenario(scenario_from_dict(data, source=f"validation row {row['id']}"), 0)
    summary = outcome.summary
    predicted = _metric(summary, row["metric"], data["workload"]["batch"])
    if row.get("includes_prefill"):
        predicted = _session_throughput(outcome)
    out.update(predicted=predicted, error=predicted / row["value"] - 1,
               alpha=summary["alpha"] if speculative else float("nan"), alpha_origin=origin,
               assumed_lengths=not (row.get("prompt_tokens") and row.get("output_tokens")), skipped="")
    if speculative and row["metric"] == "speedup_vs_autoregressive":
        implied = infer_alpha(data, float(row["value"]))
        out["implied_alpha"] = implied["alpha"]
        out["implied_alpha_plausible"] = bool(IMPLIED_RANGE[0] <= implied["alpha"] <= IMPLIED_RANGE[1])
    return out
