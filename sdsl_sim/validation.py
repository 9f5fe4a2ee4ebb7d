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

A serving row states the request stream its benchmark sent (`requests`, with `rate_per_s` for a Poisson
stream, `concurrency` for a closed loop, neither for every request queued at once: trtllm-bench's infinite
rate) and is priced by simulating that stream (`run.method = "simulated"`, seed 0) through the engine's
scheduler: its throughput is the run's `output_throughput`, its `e2e_speedup` the ratio of mean end-to-end
latencies without and with speculation. Optional keys set what the benchmark's command line set:
`max_batch_size` (vLLM's --max-num-seqs, trtllm-bench's max batch size), `max_num_tokens` (the step's token
budget), `chunked_prefill`, `kv_dtype`, `kv_free_fraction` (TensorRT-LLM's kv_cache_free_gpu_mem_fraction:
that share of the memory left after the weights holds the KV cache) and `length_range_ratio` r (SGLang's
random dataset: prompt and output lengths uniform in [max(int(r L), 1), L], `sample_random_requests` in
`python/sglang/bench_serving.py`). A serving speedup's implied acceptance is the alpha whose expected-value
TPOT speedup equals the decode speedup the measured e2e speedup leaves once the run's own mean TTFTs are
taken out (at one sequence, the low-load limit).

A stated acceptance converts to a per-token alpha at the row's gamma g (Leviathan's tokens per
iteration E(alpha, g) = (1 - alpha^(g+1)) / (1 - alpha)): a mean accepted length tau (bonus token
included) solves E = tau; vLLM's draft acceptance rate r (accepted / proposed) solves E = 1 + g r.
"""

from importlib.resources import files

import numpy as np
from scipy.optimize import brentq

from .analytic import expected_tokens_per_iteration, heuristic_expected_tokens
from .costs import PassWork
from .errors import InputError
from .hardware import kv_pool_reserve, load_gpu
from .models import dtype_bytes, load_model
from .sim.infer import infer_alpha
from .scenario import DEFAULT_MAX_GAMMA, scenario_from_dict
from .sim.run import run_scenario
from .speculation import HEADS
from .tomlfile import read_toml
from .units import Range
from .workload import parse_length

RUNTIME_OF = {"vllm": "vllm", "vllm-v0": "vllm-v0", "sglang": "sglang", "trtllm": "trtllm",
              "hf-transformers": "hf-transformers", "gpt-fast": "gpt-fast"}
METRICS = ("tpot_ms", "tokens_per_s_per_user", "throughput_tokens_per_s", "speedup_vs_autoregressive", "e2e_speedup")
SPEEDUPS = ("speedup_vs_autoregressive", "e2e_speedup")
ACCEPTANCE_KINDS = ("per_token_alpha", "mean_accepted_tokens", "draft_acceptance_rate", "")
# Lengths a row that does not state them is priced at (the page flags such rows).
ASSUMED_PROMPT_TOKENS, ASSUMED_OUTPUT_TOKENS = 128, 256
PLAIN_DRAFT = "vicuna-68m"  # a stand-in draft for plain rows: gamma 0 never runs it; its weights are ~0.1 GB
IMPLIED_RANGE = (0.4, 0.95)  # a per-token acceptance outside this is implausible for a matched draft
# Optional numeric keys of serving rows (see the module docstring), checked on load.
_COUNT = Range(1, integer=True)
SERVING_RANGES = {"requests": _COUNT, "concurrency": _COUNT, "max_batch_size": _COUNT, "max_num_tokens": _COUNT,
                  "kv_free_fraction": Range(0.0, 1.0, low_open=True), "length_range_ratio": Range(0.0, 1.0),
                  "baseline_e2e_ms": Range(0.0, low_open=True)}
SCHEDULES = ("heuristic",)  # gamma_schedule: HF assisted generation's dynamic draft length


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
        for key, allowed in SERVING_RANGES.items():
            if key in row and not allowed.contains(row[key]):
                raise InputError(f"{where}: {key} {row[key]!r}; expected {allowed.expected}")
        if not isinstance(row.get("chunked_prefill", False), bool):
            raise InputError(f"{where}: chunked_prefill {row['chunked_prefill']!r}; expected true or false")
        if row.get("gamma_schedule", SCHEDULES[0]) not in SCHEDULES:
            raise InputError(f"{where}: gamma_schedule {row['gamma_schedule']!r}; expected one of "
                             f"{', '.join(map(repr, SCHEDULES))}")
    return rows


def per_token_alpha(kind: str, value: float, gamma: int, schedule: str = "") -> float:
    """A stated acceptance as Leviathan's per-token alpha at lookahead `gamma` (see the module docstring);
    under HF's heuristic schedule a mean accepted length is its stationary tokens per iteration
    (`analytic.heuristic_expected_tokens`, capped at the scenarios' default max_gamma)."""
    if kind == "per_token_alpha":
        return float(value)
    if schedule == "heuristic":
        tau = float(value)
        if kind != "mean_accepted_tokens" or not 1.0 < tau < DEFAULT_MAX_GAMMA + 1:
            raise InputError(f"a heuristic-schedule row states its acceptance as mean_accepted_tokens in (1, "
                             f"{DEFAULT_MAX_GAMMA + 1}), got {value} ({kind})")
        return float(brentq(lambda a: heuristic_expected_tokens(a, DEFAULT_MAX_GAMMA) - tau, 1e-9, 1 - 1e-9))
    tau = float(value) if kind == "mean_accepted_tokens" else 1.0 + gamma * float(value)
    if not 1.0 < tau < gamma + 1.0:
        raise InputError(f"acceptance {value} ({kind}) at gamma {gamma} gives {tau:.3g} tokens per iteration; "
                         f"expected between 1 and {gamma + 1}")
    return float(brentq(lambda a: expected_tokens_per_iteration(a, gamma) - tau, 1e-9, 1 - 1e-9))


def _head(row: dict) -> bool:
    return row.get("method") in HEADS


def _speculative(row: dict) -> bool:
    drafts = bool(row.get("draft_catalog")) or _head(row)
    return drafts and (row.get("gamma", 0) > 0 or bool(row.get("gamma_schedule")))


def _serving(row: dict) -> bool:
    return bool(row.get("requests"))


def scenario_data(row: dict, alpha: float | None) -> dict:
    """The scenario dict that prices `row`: expected value at its static batch, or a simulated request
    stream for a serving row; its runtime profile, lengths and the benchmark's stated settings."""
    speculative, head = _speculative(row), _head(row)
    decoding = {"gamma": (row.get("gamma_schedule") or int(row["gamma"])) if speculative else 0}
    if alpha is not None:
        decoding["alpha"] = alpha
    if head:
        decoding["method"] = row["method"]
        if row.get("draft_vocab"):
            decoding["draft_vocab"] = int(row["draft_vocab"])
    model = {"target": row["target_catalog"], "weight_dtype": row.get("weight_dtype") or "bf16"}
    if row.get("kv_dtype"):
        model["kv_dtype"] = row["kv_dtype"]
    if not head:
        model["draft"] = row["draft_catalog"] if speculative else PLAIN_DRAFT
    hardware = {"name": row["gpu"], "tp": int(row["tp"]), "runtime": RUNTIME_OF[row["engine"]],
                **({} if speculative else {"draft_tp": 1})}  # the unused stand-in draft stays on one GPU
    prompt = int(row.get("prompt_tokens") or ASSUMED_PROMPT_TOKENS)
    output = int(row.get("output_tokens") or ASSUMED_OUTPUT_TOKENS)
    if not _serving(row):
        batch = max(1, int(row.get("batch") or 1))
        return {"run": {"method": "analytic"}, "model": model, "hardware": hardware,
                "workload": {"requests": batch, "batch": batch, "prompt_tokens": prompt, "output_tokens": output},
                "decoding": decoding}
    requests = int(row["requests"])
    workload = {"requests": requests, "batch": int(row.get("max_batch_size") or requests),
                "prompt_tokens": _lengths(prompt, row), "output_tokens": _lengths(output, row)}
    if row.get("rate_per_s"):
        workload.update(arrival="poisson", rate_per_s=float(row["rate_per_s"]))
    else:
        workload.update(arrival="closed", concurrency=int(row.get("concurrency") or requests))
    scheduler = {key: row[name] for key, name in (("chunked_prefill", "chunked_prefill"),
                                                   ("max_num_batched_tokens", "max_num_tokens")) if name in row}
    if "kv_free_fraction" in row:
        hardware["memory_reserve_fraction"] = _reserve(row)
    return {"run": {"method": "simulated"}, "model": model, "hardware": hardware, "workload": workload,
            "scheduler": scheduler, "decoding": decoding}


def _lengths(tokens: int, row: dict):
    """A fixed length, or SGLang's random-dataset range [max(int(r L), 1), L] when the row states r."""
    if "length_range_ratio" not in row:
        return tokens
    return {"dist": "uniform", "low": max(int(tokens * float(row["length_range_ratio"])), 1), "high": tokens}


def _reserve(row: dict) -> float:
    """The GPU's memory_reserve_fraction that leaves KV the share kv_free_fraction of what the weights
    leave free (TensorRT-LLM's basis, `hardware.kv_pool_reserve`)."""
    gpu, tp = load_gpu(row["gpu"]), int(row["tp"])
    weights = load_model(row["target_catalog"]).params * dtype_bytes(row.get("weight_dtype") or "bf16")
    return kv_pool_reserve(float(row["kv_free_fraction"]), "free", gpu.memory_bytes, weights / tp)


def _metric(summary: dict, metric: str, speculative: bool, serving: bool) -> float:
    if serving:
        return summary["output_throughput" if metric == "throughput_tokens_per_s" else metric]
    if metric == "speedup_vs_autoregressive":
        return summary[metric]
    tpot = summary["tpot_ms" if speculative else "baseline_tpot_ms"]  # a plain row is the run's plain arm
    if metric == "throughput_tokens_per_s":
        return _running_batch(summary) * 1e3 / tpot
    return {"tpot_ms": tpot, "tokens_per_s_per_user": 1e3 / tpot}[metric]


def _running_batch(summary: dict) -> float:
    """The sequences a plain static batch runs at once: the stated batch, or fewer when the KV pool the
    model gives the engine cannot hold that many (`sim.run.predict`); its throughput x TPOT."""
    return summary["baseline_output_throughput"] * summary["baseline_tpot_ms"] / 1e3


def _session_throughput(outcome) -> float:
    """Output tokens/s of one static batch timed whole: its prompts prefilled in one pass (priced by the same
    step model as the decode steps), then output - 1 steps at the predicted TPOT."""
    wl, summary = outcome.setup.scenario.config["workload"], outcome.summary
    batch, prompt, output = round(_running_batch(summary)), wl["prompt_tokens"], wl["output_tokens"]
    tpot_s = summary["baseline_tpot_ms"] / 1e3
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
    if row["metric"] in SPEEDUPS and not _speculative(row):
        return "a speedup row needs a catalog draft (or a head) and a stated gamma (or gamma_schedule)"
    if _serving(row):
        if row["metric"] not in ("throughput_tokens_per_s", "e2e_speedup"):
            return f"a serving row's {row['metric']} is not a quantity of the simulated stream"
        return None
    if row["metric"] == "throughput_tokens_per_s" and not row.get("batch"):
        return "an aggregate throughput needs a stated batch (or the request stream that reached it)"
    if row.get("rate_per_s") or row["metric"] == "e2e_speedup":
        return "a request-rate or end-to-end row needs the number of requests its benchmark sent"
    return None


def predict_row(row: dict) -> dict:
    """The row with its prediction: predicted, error (predicted / measured - 1), alpha and its origin,
    implied_alpha for speculative speedup rows, assumed_lengths, running_batch for a plain static batch
    (fewer than its batch when the model's KV pool holds fewer), and
    mean_prompt_tokens for a serving row, predicted_baseline_e2e_ms and _ttft_ms beside a stated
    baseline_e2e_ms."""
    out = dict(row)
    reason = skip_reason(row)
    if reason is not None:
        return {**out, "skipped": reason}
    gamma = int(row.get("gamma") or 0)
    speculative = _speculative(row)
    alpha, origin = None, "plain"
    if speculative:
        if row.get("acceptance_kind"):
            alpha = per_token_alpha(row["acceptance_kind"], row["stated_acceptance"], gamma,
                                    row.get("gamma_schedule", ""))
            origin = "stated"
        else:
            origin = "sdsl-law"
    data = scenario_data(row, alpha)
    outcome = run_scenario(scenario_from_dict(data, source=f"validation row {row['id']}"), 0)
    summary = outcome.summary
    predicted = _metric(summary, row["metric"], speculative, _serving(row))
    if row.get("includes_prefill"):
        predicted = _session_throughput(outcome)
    if not (speculative or _serving(row)):
        out["running_batch"] = round(_running_batch(summary))
    out.update(predicted=predicted, error=predicted / row["value"] - 1,
               alpha=summary["alpha"] if speculative else float("nan"), alpha_origin=origin,
               assumed_lengths=not (row.get("prompt_tokens") and row.get("output_tokens")), skipped="")
    if _serving(row):
        out["mean_prompt_tokens"] = _mean_tokens(data, "prompt_tokens")
    if row.get("baseline_e2e_ms"):
        out["predicted_baseline_e2e_ms"] = summary["baseline_mean_e2el_ms"]
        out["predicted_baseline_ttft_ms"] = summary["baseline_mean_ttft_ms"]
    if speculative and row["metric"] in SPEEDUPS:
        if row["metric"] == "e2e_speedup":
            implied = _implied_from_e2e(row, data, summary)
        else:
            implied = infer_alpha(data, float(row["value"]))
        out["implied_alpha"] = implied["alpha"]
        out["implied_alpha_plausible"] = bool(IMPLIED_RANGE[0] <= implied["alpha"] <= IMPLIED_RANGE[1])
    return out


def _implied_from_e2e(row: dict, data: dict, summary: dict) -> dict:
    """infer_alpha on the decode speedup a measured e2e speedup S implies, given the run's own mean TTFT
    with (t_s) and without (t_b) speculation and its plain mean e2e latency E_b: (E_b - t_b) / (E_b / S - t_s),
    priced for one sequence at the stream's mean lengths. No alpha when S leaves no decode time."""
    base_e2e, base_ttft = summary["baseline_mean_e2el_ms"], summary["baseline_mean_ttft_ms"]
    decode_left = base_e2e / float(row["value"]) - summary["mean_ttft_ms"]
    if decode_left <= 0:
        return {"alpha": float("nan")}
    mean = {key: round(_mean_tokens(data, key)) for key in ("prompt_tokens", "output_tokens")}
    single = {**data, "run": {"method": "analytic"}, "scheduler": {},
              "workload": {"requests": 1, "batch": 1, **mean}}
    return infer_alpha(single, (base_e2e - base_ttft) / decode_left)


def _mean_tokens(data: dict, key: str) -> float:
    return parse_length(data["workload"][key], f"workload.{key}").mean_tokens
