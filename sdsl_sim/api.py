"""The Python API: what the command line does, as typed functions returning typed results.

Keyword names follow the CLI flags (`--output-tokens` is `output_tokens=`), and so do the defaults; a
model is a catalog name, `synthetic-<size>`, a Hugging Face config.json or model .toml path, or a number
of parameters (a synthetic model). Bad input raises `sdsl_sim.InputError` with the CLI's one-line message.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import InputError
from .scenario import Scenario, load_scenario, scenario_from_dict
from .units import DEFAULT_CONTEXT, DEFAULT_TRAIN_TOKENS, PERCENTILES

if TYPE_CHECKING:  # pandas loads only for to_frame: `sdsl-sim latency` starts without it
    import pandas as pd

Model = str | float  # a catalog name, synthetic-<size>, a model file path, or a parameter count


@dataclass(frozen=True)
class RunResult:
    """One run of a scenario: its headline numbers as attributes, every metric in `metrics` (the schema of
    `sdsl-sim run --json`, vLLM `bench serve`'s keys where vLLM has the quantity; see the README)."""

    scenario: Scenario = field(repr=False)
    seed: int
    tp: int  # the target's GPUs the run used (the fewest that hold it when the scenario named none)
    gamma: int  # the draft length most iterations used
    alpha: float
    tpot_ms: float
    speedup_vs_autoregressive: float
    output_throughput: float  # output tokens/s
    mean_ttft_ms: float
    acceptance_rate: float
    metrics: dict[str, Any] = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        """What `sdsl-sim run --json` prints: the scenario's source, the seed and every metric."""
        return {"scenario": self.scenario.source, "seed": self.seed, **self.metrics}

    def to_frame(self) -> pd.DataFrame:
        """One row, as a sweep stores it: each [lo, hi] interval as _lo and _hi columns."""
        import pandas as pd

        from .sim.run import flat_row

        return pd.DataFrame([flat_row(self.to_dict())])


@dataclass(frozen=True)
class PassLatency:
    """One forward pass on one GPU profile (`sdsl-sim latency`)."""

    model: str
    params_b: float
    hardware: str
    batch: int
    tokens: int
    context: int
    tp: int
    dtype: str
    kv_dtype: str
    runtime: str
    gemm_compute: str  # the tensor-core rate of the weight GEMMs ("bf16" for weight-only quantisation)
    latency_ms: float
    step_ms: float  # the pass plus the runtime's host work of one decode step
    bound: str
    breakdown_ms: dict[str, float]
    bound_ms: dict[str, float]
    expert_weight_bytes: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_frame(self) -> pd.DataFrame:
        """One row; the breakdowns as breakdown_ms.<part> and bound_ms.<part> columns."""
        import pandas as pd

        return pd.json_normalize(self.to_dict())


@dataclass(frozen=True)
class DraftSize:
    """The TPOT-optimal draft size on a GPU beside the analytic N* (`sdsl-sim nstar`)."""

    target: str
    target_params: float
    hardware: str
    n_star_analytic: float
    n_star_hardware: float
    n_star_hardware_range: tuple[float, float]  # sizes within 1% of the best TPOT
    metrics: dict[str, Any] = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.metrics)

    def to_frame(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame([self.metrics])


def _model_keys(role: str, model: Model) -> dict:
    if isinstance(model, bool) or not isinstance(model, (str, int, float)):
        raise InputError(f"{role} = {model!r}; expected a model name or path, or a parameter count")
    return {f"{role}_params": model} if isinstance(model, (int, float)) else {role: model}


def pair_scenario(target: Model, draft: Model, hardware: str, *, tp: int = 1, draft_tp: int | None = None,
                  runtime: str | None = None, dtype: str = "bf16", kv_dtype: str = "bf16",
                  alpha: float | None = None, gamma: int | str = "auto", max_gamma: int = 16, batch: int = 1,
                  context: int = DEFAULT_CONTEXT, output_tokens: int = 1024, requests: int | None = None,
                  train_tokens: float = DEFAULT_TRAIN_TOKENS,
                  metric_percentiles: tuple[float, ...] = PERCENTILES) -> dict:
    """The scenario tables of `simulate` (for `scenario_from_dict`): one target/draft pair on `hardware`, a
    static batch of `requests` (default: one batch) with `context` prompt tokens and `output_tokens` each."""
    model = {"train_tokens": train_tokens, "weight_dtype": dtype, "kv_dtype": kv_dtype,
             **_model_keys("target", target), **_model_keys("draft", draft)}
    hw = {"name": hardware, "tp": tp, **({} if draft_tp is None else {"draft_tp": draft_tp}),
          **({} if runtime is None else {"runtime": runtime})}
    decoding = {"gamma": gamma, "max_gamma": max_gamma, **({} if alpha is None else {"alpha": alpha})}
    return {
        "run": {"metric_percentiles": list(metric_percentiles)},
        "model": model, "hardware": hw,
        "workload": {"arrival": "static", "requests": batch if requests is None else requests, "batch": batch,
                     "prompt_tokens": context, "output_tokens": output_tokens},
        "decoding": decoding,
    }


def simulate(target: Model, draft: Model, hardware: str, *, tp: int = 1, draft_tp: int | None = None,
             runtime: str | None = None, dtype: str = "bf16", kv_dtype: str = "bf16", alpha: float | None = None,
             gamma: int | str = "auto", max_gamma: int = 16, batch: int = 1, context: int = DEFAULT_CONTEXT,
             output_tokens: int = 1024, requests: int | None = None, train_tokens: float = DEFAULT_TRAIN_TOKENS,
             metric_percentiles: tuple[float, ...] = PERCENTILES, seed: int = 0) -> RunResult:
    """Simulate speculative decoding of one pair against plain decoding of the same requests
    (`sdsl-sim simulate`). alpha: per-token acceptance (default: the SDSL law from the two sizes and
    `train_tokens`); gamma: an integer or "auto", "adaptive", "heuristic"."""
    tables = pair_scenario(
        target, draft, hardware, tp=tp, draft_tp=draft_tp, runtime=runtime, dtype=dtype, kv_dtype=kv_dtype,
        alpha=alpha, gamma=gamma, max_gamma=max_gamma, batch=batch, context=context, output_tokens=output_tokens,
        requests=requests, train_tokens=train_tokens, metric_percentiles=metric_percentiles)
    return run_scenario(scenario_from_dict(tables, source="simulate"), seed=seed)


def run_scenario(scenario: Scenario | dict | str | Path = "default", seed: int | None = None,
                 progress=None) -> RunResult:
    """Run a scenario (a Scenario, a dict of its tables, or a TOML path or embedded name; `sdsl-sim run`)
    with `seed` (default: its run.seed). progress: a callable (done, total) the run reports to."""
    from .sim.run import run_scenario as run

    if isinstance(scenario, dict):
        scenario = scenario_from_dict(scenario)
    elif isinstance(scenario, (str, Path)):
        scenario = load_scenario(str(scenario))
    seed = scenario.config["run"]["seed"] if seed is None else seed
    s = run(scenario, seed, progress=progress).summary
    return RunResult(scenario, seed, scenario.config["hardware"]["tp"], int(s["gamma"]), float(s["alpha"]),
                     float(s["tpot_ms"]), float(s["speedup_vs_autoregressive"]), float(s["output_throughput"]),
                     float(s["mean_ttft_ms"]), float(s["acceptance_rate"]), s)


def pass_latency(model: Model, hardware: str, *, batch: int = 1, tokens: int = 1, context: int = DEFAULT_CONTEXT, tp: int = 1,
                 dtype: str = "bf16", kv_dtype: str = "bf16", runtime: str | None = None,
                 bandwidth_scale: float = 1.0, flops_scale: float = 1.0, memory_scale: float = 1.0,
                 link_scale: float = 1.0) -> PassLatency:
    """GPU time of one forward pass: `batch` sequences each adding `tokens` new tokens on top of `context`
    cached ones (`sdsl-sim latency`; a prefill is tokens = prompt, context = 0)."""
    from .costs import Deployment, PassWork, check_memory, expert_weight_bytes, gemm_compute_rate, pass_cost
    from .hardware import load_gpu, load_runtime, scale_gpu, step_overhead_s

    m = _load_model(model)
    gpu = scale_gpu(load_gpu(hardware), bandwidth=bandwidth_scale, flops=flops_scale, memory=memory_scale,
                    link=link_scale)
    engine = load_runtime(gpu.default_runtime if runtime is None else runtime)
    check_memory([m], gpu, batch=batch, context=context + tokens, tp=tp, weight_dtype=dtype, kv_dtype=kv_dtype,
                 runtime=engine)
    cost = pass_cost(m, gpu, batch=batch, tokens=tokens, context=context, tp=tp, weight_dtype=dtype,
                     kv_dtype=kv_dtype, runtime=engine)
    deployment = Deployment.of(m, gpu, tp=tp, weight_dtype=dtype, kv_dtype=kv_dtype, runtime=engine)
    return PassLatency(
        m.name, m.params / 1e9, gpu.name, batch, tokens, context, tp, dtype, kv_dtype, engine.name,
        gemm_compute_rate(gpu, dtype), cost.latency_s * 1e3,
        (cost.latency_s + float(step_overhead_s(engine, batch))) * 1e3, cost.bound,
        {k: v * 1e3 for k, v in cost.breakdown_s.items()}, {k: v * 1e3 for k, v in cost.bound_s.items()},
        float(expert_weight_bytes(deployment, PassWork.group(batch, tokens, context))))


def hardware_n_star(target: Model, hardware: str, *, tp: int = 1, draft_tp: int = 1, batch: int = 1,
                    context: int = DEFAULT_CONTEXT, train_tokens: float = DEFAULT_TRAIN_TOKENS, runtime: str | None = None,
                    dtype: str = "bf16", kv_dtype: str = "bf16", bandwidth_scale: float = 1.0,
                    flops_scale: float = 1.0) -> DraftSize:
    """The draft size that minimises TPOT on `hardware` (synthetic drafts, alpha from the SDSL law) beside
    the analytic N* (`sdsl-sim nstar`)."""
    from .draft_size import hardware_n_star as scan
    from .hardware import load_gpu, load_runtime, scale_gpu

    m = _load_model(target)
    gpu = scale_gpu(load_gpu(hardware), bandwidth=bandwidth_scale, flops=flops_scale)
    engine = load_runtime(gpu.default_runtime if runtime is None else runtime)
    result = scan(m, gpu, train_tokens=train_tokens, tp=tp, draft_tp=draft_tp, batch=batch, context=context,
                  runtime=engine, weight_dtype=dtype, kv_dtype=kv_dtype)
    metrics = {"target": m.name, "target_params": m.params, "hardware": gpu.name, "tp": tp, "draft_tp": draft_tp,
               "batch": batch, "context": context, "train_tokens": train_tokens, "dtype": dtype,
               "kv_dtype": kv_dtype, **result.summary()}
    return DraftSize(m.name, m.params, gpu.name, result.n_star_analytic, result.n_star_hardware,
                     result.n_star_hardware_range, metrics)


def _load_model(model: Model):
    from .models import load_model, synthetic_model
    from .units import PARAMS, parse_count

    keys = _model_keys("model", model)
    if "model_params" in keys:
        return synthetic_model(parse_count(model, "model", PARAMS))
    return load_model(model)
