"""A validated scenario made runnable: models, GPU and runtime loaded; deployments, step timers, KV budgets,
length distributions or trace, scheduler, acceptance process and gamma policy, each derived once.

`resolve` loads what a scenario names and checks that its longest request fits in memory, so that a bad
name, dtype or tp is reported before anything runs (sweeps call it for every point up front); `setup`
builds everything a run needs from it. `draw_workloads` draws one run's requests from its seed.
"""

import dataclasses
import math
from dataclasses import dataclass
from functools import partial

import numpy as np

from ..analytic import alpha_from_expected_tokens, alpha_from_sizes, marginal_acceptance, tree_accept_from_length
from ..costs import Deployment, check_memory, check_tp, fewest_tp, kv_token_capacity
from ..errors import InputError
from ..hardware import load_gpu, load_runtime, scale_gpu
from ..models import dtype_bytes, load_model, synthetic_model
from ..speculation import HEADS, Shape, head_model
from ..step import StepPricer
from ..workload import load_trace, parse_length
from .acceptance import BetaAcceptance, IidAcceptance, NgramAcceptance, ProfileAcceptance, TreeAcceptance
from .arrivals import poisson_instants
from .engine import Scheduler, Workload
from .policies import AdaptiveGamma, AutoGamma, FixedGamma, HeuristicGamma
from .timing import StepTimer


@dataclass(frozen=True)
class Resolved:
    """What a scenario names, loaded: models.Model target and draft (the draft checkpoint, or the head a
    head method builds from the target; None when not asked for or for n-gram lookup), the hardware.GPU
    with the what-if scales and memory reserve applied, the hardware.Runtime, the trace (workload.Trace or
    None), the longest request in tokens (prompt + output), the [scheduler] table with the runtime's
    defaults filled in, the draft's tensor parallelism and the speculation.Shape of an iteration."""

    target: object
    draft: object
    gpu: object
    runtime: object
    trace: object
    longest_tokens: int
    scheduler: dict
    draft_tp: int
    shape: Shape


def max_gamma_of(decoding: dict) -> int:
    return decoding["gamma"] if isinstance(decoding["gamma"], int) else decoding["max_gamma"]


def _lengths(scenario):
    wl, source = scenario.config["workload"], scenario.source
    return tuple(parse_length(wl[key], f"{source}: key 'workload.{key}'") for key in ("prompt_tokens", "output_tokens"))


def resolve(scenario, draft: bool = True) -> Resolved:
    cfg, source = scenario.config, scenario.source

    def load(key, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except InputError as exc:
            raise InputError(f"{source}: key '{key}': {exc}") from None

    m, hw, wl, dec = cfg["model"], cfg["hardware"], cfg["workload"], cfg["decoding"]
    method = dec["method"]
    shape = Shape(method, None if dec["tree"] is None else tuple(dec["tree"]), dec["trigger_rate"] or 1.0)
    models = {}
    for role in ("target", "draft") if draft and method == "draft-model" else ("target",):
        params = m[f"{role}_params"]
        models[role] = (load(f"model.{role}_params", synthetic_model, params) if params is not None
                        else load(f"model.{role}", load_model, m[role]))
    if draft and method in HEADS:
        models["draft"] = head_model(method, models["target"], heads=max_gamma_of(dec),
                                     draft_vocab=dec["draft_vocab"] or 0)
    if draft and method == "draft-model" and models["draft"].params >= models["target"].params:
        raise InputError(f"{source}: draft {models['draft'].name} ({models['draft'].params:.3g} params) must be "
                         f"smaller than target {models['target'].name} ({models['target'].params:.3g} params)")
    for key in ("weight_dtype", "kv_dtype"):
        load(f"model.{key}", dtype_bytes, m[key], key.replace("_", " "))
    gpu = scale_gpu(load("hardware.name", load_gpu, hw["name"]), bandwidth=hw["bandwidth_scale"],
                    flops=hw["flops_scale"], memory=hw["memory_scale"], link=hw["link_scale"])
    if hw["memory_reserve_fraction"] is not None:
        gpu = dataclasses.replace(gpu, memory_reserve_fraction=float(hw["memory_reserve_fraction"]))
    runtime = load("hardware.runtime", load_runtime,
                   gpu.default_runtime if hw["runtime"] is None else hw["runtime"])
    if hw["memory_reserve_fraction"] is not None:  # the scenario's reserve overrides the engine's KV pool size
        runtime = dataclasses.replace(runtime, kv_memory_fractions=None)
    sched = scheduler_of(cfg, runtime, source)
    trace = None
    if wl["trace"] is not None:
        trace = load_trace(wl["trace"], f"{source}: key 'workload.trace'")
        if wl["requests"] is not None and wl["requests"] > len(trace):
            raise InputError(f"{source}: key 'workload.requests' = {wl['requests']}; the trace holds "
                             f"{len(trace)} requests; expected at most that many")
        longest = int(np.max(trace.prompt_tokens + trace.output_tokens))
    else:
        prompt, output = _lengths(scenario)
        longest = prompt.max_tokens + output.max_tokens
    # One request at its longest, with the largest lookahead, in whole KV blocks when paged.
    context = longest + (shape.slots(max_gamma_of(dec)) if draft else 1)
    if sched["kv_allocation"] == "paged":
        context = math.ceil(context / sched["block_size"]) * sched["block_size"]
    dtypes = {"weight_dtype": m["weight_dtype"], "kv_dtype": m["kv_dtype"]}
    if hw["tp"] is None:  # the fewest GPUs that hold the weights and a full batch at its longest
        hw["tp"] = load("hardware.tp", fewest_tp, list(models.values()), gpu, batch=wl["batch"], context=context,
                        runtime=runtime, **dtypes)
    draft_tp = draft_tp_of(hw, runtime, method)
    if draft and "draft" in models:
        load("hardware.draft_tp", check_tp, models["draft"], draft_tp)
    load("hardware.tp", check_memory, list(models.values()), gpu, batch=1, context=context, tp=hw["tp"],
         runtime=runtime, **dtypes)
    return Resolved(models["target"], models.get("draft"), gpu, runtime, trace, longest, sched, draft_tp, shape)


def scheduler_of(cfg: dict, runtime, source: str) -> dict:
    """The scenario's [scheduler] table with each unset key taken from the runtime profile, checked."""
    sched = {key: getattr(runtime, key) if value is None else value for key, value in cfg["scheduler"].items()}
    batch = cfg["workload"]["batch"]
    if sched["chunked_prefill"] and sched["max_num_batched_tokens"] < batch:
        given = cfg["scheduler"]["max_num_batched_tokens"] is not None
        where = "key 'scheduler.max_num_batched_tokens'" if given else f"runtime {runtime.name!r}'s max_num_batched_tokens"
        raise InputError(f"{source}: {where} = {sched['max_num_batched_tokens']}; expected at least workload.batch = "
                         f"{batch} (every running sequence needs a token of the step's budget, as vLLM requires)")
    return sched


def draft_tp_of(hw: dict, runtime, method: str = "draft-model") -> int:
    """The draft's tensor parallelism: the scenario's `hardware.draft_tp`, else the runtime's policy
    (vLLM V0 ran the draft at the target's tp; later engines give it its own, 1 by default). A head
    (EAGLE, Medusa, MTP) runs inside the target's model runner, at the target's tp."""
    if method in HEADS:
        return hw["tp"]
    if hw["draft_tp"] is not None:
        return hw["draft_tp"]
    return hw["tp"] if runtime.draft_tp == "target" else 1


@dataclass(frozen=True)
class Setup:
    """Everything a run needs, derived once from a scenario. The baseline (plain decoding) has its own
    timer and KV budget: it loads no draft model, so its KV cache may hold more."""

    scenario: object
    resolved: Resolved
    target: Deployment
    draft: Deployment
    timer: StepTimer
    base_timer: StepTimer
    kv_token_budget: float
    base_kv_token_budget: float
    scheduler: Scheduler
    acceptance: object
    alpha: float
    alpha_source: str  # "given", "sdsl-law", "profile", "tree_accept" or "acceptance_length"
    acceptance_note: str  # how the acceptance inputs became the process (empty when used as given)
    make_policy: object  # () -> a fresh gamma policy (policies keep state within one run)
    max_gamma: int
    requests: int
    mean_prompt_tokens: float
    mean_output_tokens: float


def _acceptance(cfg, target, draft) -> tuple:
    """(process, alpha, alpha source, conversion note) from the [decoding] table (checked by scenario.py)."""
    m, dec = cfg["model"], cfg["decoding"]
    length, note = dec["acceptance_length"], ""
    if dec["tree"] is not None:
        tree = tuple(dec["tree"])
        if length is None:
            marginal, source = marginal_acceptance(dec["tree_accept"], dec["tree_accept_kind"]), "tree_accept"
        else:
            conditional = tree_accept_from_length(tree, float(length))
            marginal, source = marginal_acceptance(conditional), "acceptance_length"
            note = (f"acceptance_length {length:g} -> tree_accept q(d, r) = a / r at every depth, a = "
                    f"{conditional[0][0]:.6g} (Sequoia's power-law sibling profile scaled to give it)")
        acceptance = TreeAcceptance(tree, tuple(marginal))
        return acceptance, acceptance.mean_alpha, source, note
    if dec["acceptance"] == "profile":
        acceptance, alpha, source = ProfileAcceptance(tuple(dec["prefix_probs"])), None, "profile"
    else:
        if length is not None:
            alpha, source = alpha_from_expected_tokens(float(length), dec["gamma"]), "acceptance_length"
            note = (f"acceptance_length {length:g} at gamma {dec['gamma']} -> alpha {alpha:.6g} "
                    "(Leviathan eq. 1: (1 - alpha^(gamma + 1)) / (1 - alpha) = L)")
        elif dec["alpha"] is None:
            alpha, source = float(alpha_from_sizes(draft.params, target.params, m["train_tokens"])), "sdsl-law"
        else:
            alpha, source = float(dec["alpha"]), "given"
        acceptance = (BetaAcceptance(alpha, float(dec["alpha_concentration"])) if dec["acceptance"] == "beta"
                      else IidAcceptance(alpha))
    if dec["method"] == "ngram":
        acceptance = NgramAcceptance(acceptance, dec["trigger_rate"] or 1.0)
    return acceptance, acceptance.mean_alpha if alpha is None else alpha, source, note


def setup(scenario) -> Setup:
    cfg = scenario.config
    m, hw, wl, dec = cfg["model"], cfg["hardware"], cfg["workload"], cfg["decoding"]
    parts = resolve(scenario)
    sched = parts.scheduler
    dtypes = dict(weight_dtype=m["weight_dtype"], kv_dtype=m["kv_dtype"])
    target = Deployment.of(parts.target, parts.gpu, tp=hw["tp"], runtime=parts.runtime, **dtypes)
    draft = None
    if parts.draft is not None:  # a head runs in the target's runner: its graphs, not the draft's setting
        runtime = parts.runtime.for_draft() if dec["method"] == "draft-model" else parts.runtime
        draft = Deployment.of(parts.draft, parts.gpu, tp=parts.draft_tp, runtime=runtime, **dtypes)
    max_gamma = max_gamma_of(dec)
    max_context = parts.longest_tokens + parts.shape.slots(max_gamma)
    timer = StepTimer(StepPricer.of(target, draft, parts.shape), max_context=max_context)
    base_timer = StepTimer(StepPricer.of(target), max_context=max_context)
    drafters = [] if parts.draft is None else [parts.draft]
    capacity = kv_token_capacity([parts.target, *drafters], parts.gpu, tp=hw["tp"], runtime=parts.runtime, **dtypes)
    base_capacity = kv_token_capacity([parts.target], parts.gpu, tp=hw["tp"], runtime=parts.runtime, **dtypes)
    scheduler = Scheduler(chunked_prefill=sched["chunked_prefill"],
                          max_num_batched_tokens=sched["max_num_batched_tokens"],
                          kv_allocation=sched["kv_allocation"], block_size=sched["block_size"],
                          disable_above_batch=dec["disable_above_batch"])
    acceptance, alpha, source, note = _acceptance(cfg, parts.target, parts.draft)
    if dec["gamma"] == "auto":
        make_policy = partial(AutoGamma, timer, acceptance, max_gamma)
    elif dec["gamma"] == "heuristic":
        make_policy = partial(HeuristicGamma, max_gamma)
    elif dec["gamma"] == "adaptive":
        make_policy = partial(AdaptiveGamma, timer, alpha, max_gamma, float(dec["adaptive_weight"]),
                              dec["adaptive_horizon"])
    else:
        make_policy = partial(FixedGamma, dec["gamma"])
    if parts.trace is not None:
        requests = wl["requests"] or len(parts.trace)
        mean_prompt = float(parts.trace.prompt_tokens[:requests].mean())
        mean_output = float(parts.trace.output_tokens[:requests].mean())
    else:
        requests = wl["requests"]
        mean_prompt, mean_output = (dist.mean_tokens for dist in _lengths(scenario))
    return Setup(scenario, parts, target, draft, timer, base_timer, float(capacity), float(base_capacity),
                 scheduler, acceptance, alpha, source, note, make_policy, max_gamma, requests, mean_prompt, mean_output)


def draw_workloads(s: Setup, arrivals_rng, lengths_rng) -> tuple:
    """(speculative, baseline) Workloads of one run: the same requests, lengths and instants, each with
    its own KV budget. Poisson instants come from `arrivals_rng`, lengths from `lengths_rng` (prompts
    first, then outputs); a trace gives both."""
    wl = s.scenario.config["workload"]
    n, trace = s.requests, s.resolved.trace
    arrival_s = None
    if trace is not None:
        prompt, output = trace.prompt_tokens[:n], trace.output_tokens[:n]
        arrival_s = trace.arrival_s[:n]
    else:
        prompt_dist, output_dist = _lengths(s.scenario)
        prompt, output = prompt_dist.draw(lengths_rng, n), output_dist.draw(lengths_rng, n)
        if wl["arrival"] == "poisson":
            arrival_s = poisson_instants(arrivals_rng, float(wl["rate_per_s"]), n)
    common = dict(max_batch=wl["batch"], prompt_tokens=prompt, output_tokens=output, arrival=wl["arrival"],
                  arrival_s=arrival_s, concurrency=wl["concurrency"] or wl["batch"])
    return (Workload(kv_token_budget=s.kv_token_budget, **common),
            Workload(kv_token_budget=s.base_kv_token_budget, **common))
